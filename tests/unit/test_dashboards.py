"""Lint of grafana/dashboards/*.json: the conventions of good exporter dashboards.

The rules of Grafana's dashboard-linter (template-datasource, template-job, template-instance,
template-label-promql, template-on-time-change-reload, panel-datasource, panel-title-description,
panel-units, panel-no-targets, target-promql, target-rate-interval, target-job, target-instance,
target-counter-agg, uneditable-dashboard), and this project's own: fixed uid, no `__inputs`,
every selector filtered by the dashboard's variables, and only metrics the exporter documents or
series the recording rules produce. tests/integration/test_dashboards_promql.py has promtool
parse and evaluate the queries, tests/integration/test_pipeline.py runs them against a real
Prometheus.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from support import ROOT
from support.monitoring import (
    dashboard_variables,
    dashboards,
    iter_panels,
    panel_queries,
    recording_rules,
    variable_query,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED = {
    "credits-overview.json": {"datasource", "job", "instance", "provider", "account", "pool"},
    "credits-exporter-health.json": {"datasource", "job", "instance", "provider", "account"},
}
# Every series has a job and an instance: "All" is ".+" (dashboard-linter's template-job and
# template-instance rules). The others are ".*": account-level series have no pool label.
TARGET_VARIABLES = {"job", "instance"}
# Grafana unit ids these dashboards may use (all valid for dashboard-linter's panel-units-rule).
GRAFANA_UNITS = {"none", "short", "percentunit", "s", "d", "dateTimeAsIso", "opm", "bytes"}
# Functions whose range should follow the scrape interval ($__rate_interval).
RATE_FUNCTIONS = ("rate", "irate", "increase")
# Series Prometheus itself adds for every target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Exporter-wide series (no provider or account label) and the per-pool ones.
EXPORTER_WIDE = {
    "credits_exporter_build_info",
    "credits_exporter_config_last_reload_successful",
    "credits_exporter_config_last_reload_success_timestamp_seconds",
}
POOL_SERIES = {
    "credits_remaining",
    "credits_used",
    "credits_limit",
    "credits_low_threshold",
    "credits_consumed_total",
    "credits_consumption",
    "credits_runway_seconds",
}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "offset", "bool", "atan2"}


def dashboard_ids() -> list[str]:
    return sorted(dashboards())


@pytest.fixture(params=dashboard_ids())
def dashboard(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name = request.param
    return name, dashboards()[name]


def test_expected_dashboards_exist() -> None:
    assert set(dashboards()) == set(EXPECTED)


def test_identity(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, dash = dashboard
    assert dash["uid"] == name.removesuffix(".json"), "fixed uid, the file's name"
    assert "__inputs" not in dash and "__requires" not in dash, "not an export for sharing"
    assert dash.get("id") is None, "provisioned dashboards carry no database id"
    assert dash["title"].startswith("Credits / ")
    assert "credits-exporter" in dash["tags"]
    assert isinstance(dash["schemaVersion"], int)
    assert dash["time"]["to"] == "now"


def test_template_variables(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, dash = dashboard
    found = dashboard_variables(dash)
    assert set(found) == EXPECTED[name]
    ds = found["datasource"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    for var_name, var in found.items():
        if var_name == "datasource":
            continue
        assert var["type"] == "query"
        assert var["datasource"] == DATASOURCE, var_name
        assert re.fullmatch(r"label_values\(.+, \w+\)", variable_query(var)), var_name
        # "All" must also match series without the label (account-level metrics have no pool).
        all_value = ".+" if var_name in TARGET_VARIABLES else ".*"
        assert var["includeAll"] and var["multi"] and var["allValue"] == all_value, var_name
        # A variable only refers to variables defined before it.
        earlier = list(found)[: list(found).index(var_name)]
        for ref in re.findall(r"\$(\w+)", variable_query(var)):
            assert ref in earlier, f"{var_name} uses ${ref} before it is defined"


def test_every_panel_uses_the_datasource_variable(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, dash = dashboard
    for panel in iter_panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel.get("targets"), f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, panel["title"]


def test_every_panel_has_a_unit(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, dash = dashboard
    for panel in iter_panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        assert isinstance(unit, str) and unit, f"{panel['title']}: no unit"


def test_panel_layout(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, dash = dashboard
    panels = list(iter_panels(dash["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel.get("title") and (panel["type"] == "row" or panel.get("description"))
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def rate_ranges(expr: str) -> list[str]:
    """The range of every rate()/irate()/increase() call in ``expr``."""
    ranges = []
    for match in re.finditer(rf"\b({'|'.join(RATE_FUNCTIONS)})\s*\(", expr):
        depth, i = 1, match.end()
        while depth and i < len(expr):
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        inner = expr[match.end() : i - 1]
        found = re.findall(r"\[([^\]]+)\]\s*$", inner)
        assert found, f"{match.group(1)}() without a range selector: {expr}"
        ranges.append(found[0])
    return ranges


def test_rate_functions_use_rate_interval(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, dash = dashboard
    for title, target in panel_queries(dash):
        for found in rate_ranges(target["expr"]):
            assert found == "$__rate_interval", f"{title}: [{found}] in {target['expr']}"


def test_rate_range_finder() -> None:
    """The check above finds what it should (so it can fail)."""
    assert rate_ranges('sum(rate(x{a=~"$a"}[5m])) / increase(y[$__rate_interval])') == [
        "5m",
        "$__rate_interval",
    ]


def _skip_string(expr: str, i: int) -> int:
    """Index after the string literal starting at ``expr[i]``."""
    quote, i = expr[i], i + 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" else 1
    return i + 1


def _skip_until(expr: str, i: int, close: str) -> int:
    """Index after the ``close`` that ends the bracket opened at ``expr[i]``."""
    depth, opening = 0, expr[i]
    while i < len(expr):
        if expr[i] in "\"'":
            i = _skip_string(expr, i)
            continue
        depth += {opening: 1, close: -1}.get(expr[i], 0)
        i += 1
        if depth == 0:
            break
    return i


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, label matchers) of every series selector in a PromQL ``expr``."""
    out = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'":
            i = _skip_string(expr, i)
        elif char == "[":
            i = _skip_until(expr, i, "]")
        elif char == "{":
            end = _skip_until(expr, i, "}")
            out.append(("", expr[i:end]))
            i = end
        elif char.isdigit() or (char == "." and expr[i + 1 : i + 2].isdigit()):
            i += len(re.match(r"[\d.]+(?:e[+-]?\d+)?[a-zA-Z]*", expr[i:]).group())  # type: ignore[union-attr]
        elif char.isalpha() or char in "_:":
            word = re.match(r"[a-zA-Z_:][\w:]*", expr[i:]).group()  # type: ignore[union-attr]
            i += len(word)
            while i < len(expr) and expr[i].isspace():
                i += 1
            following = expr[i : i + 1]
            if word in GROUPING:
                if following == "(":
                    i = _skip_until(expr, i, ")")
            elif word in KEYWORDS or following == "(" or re.match(r"(?:by|without)\s*\(", expr[i:]):
                continue  # an operator keyword, or a function / aggregation name
            elif following == "{":
                end = _skip_until(expr, i, "}")
                out.append((word, expr[i:end]))
                i = end
            else:
                out.append((word, ""))
        else:
            i += 1
    return out


def test_selector_finder() -> None:
    expr = (
        'count(credits_remaining{job=~"$job"} < credits_low_threshold{job=~"$job"}) or vector(0)'
        ' + on (job, instance) group_right 0 * up{job=~"$job"}'
        ' + sum by (provider) (rate(credits_polls_total{job=~"$job"}[$__rate_interval]))'
    )
    assert [name for name, _ in selectors(expr)] == [
        "credits_remaining",
        "credits_low_threshold",
        "up",
        "credits_polls_total",
    ]


def documented_metrics() -> set[str]:
    text = (ROOT / "docs" / "metrics.md").read_text()
    return set(re.findall(r"^\| `(credits_\w+)` \|", text, flags=re.MULTILINE))


def test_queries_filter_by_variables_and_use_known_series(
    dashboard: tuple[str, dict[str, Any]],
) -> None:
    name, dash = dashboard
    known = documented_metrics() | set(recording_rules()) | SCRAPE_SERIES
    account_variables = EXPECTED[name] & {"provider", "account"}
    for title, target in panel_queries(dash):
        found = selectors(target["expr"])
        assert found, f"{title}: no series in {target['expr']}"
        for metric, matchers in found:
            assert metric in known, f"{title}: unknown series {metric}"
            assert 'job=~"$job"' in matchers, f"{title}: {metric} not filtered by $job"
            assert 'instance=~"$instance"' in matchers, f"{title}: {metric} lacks $instance"
            required = set()
            if metric.startswith(("credits_", "provider_")) and metric not in EXPORTER_WIDE:
                required |= account_variables
            if metric in POOL_SERIES or metric.startswith("provider_account_pool:"):
                required |= EXPECTED[name] & {"pool"}
            for var in sorted(required):
                assert f'{var}=~"${var}"' in matchers, f"{title}: {metric} lacks ${var}"


def test_overview_table_has_the_columns() -> None:
    dash = dashboards()["credits-overview.json"]
    tables = [p for p in iter_panels(dash["panels"]) if p["type"] == "table"]
    assert len(tables) == 1
    organize = next(t for t in tables[0]["transformations"] if t["id"] == "organize")
    columns = set(organize["options"]["renameByName"].values())
    assert columns >= {
        "Remaining",
        "Used",
        "Limit",
        "Used of limit",
        "Runway",
        "Days to expiry",
        "Cycle end",
    }
    assert len(tables[0]["targets"]) == len(organize["options"]["renameByName"])


# --------------------------------------------------------------------------- dashboard-linter


def test_uneditable(dashboard: tuple[str, dict[str, Any]]) -> None:
    """uneditable-dashboard: provisioned dashboards are changed in the files, not in Grafana."""
    _, dash = dashboard
    assert dash["editable"] is False


def test_linter_template_rules(dashboard: tuple[str, dict[str, Any]]) -> None:
    """template-datasource, template-job, template-instance, template-label-promql and
    template-on-time-change-reload."""
    _, dash = dashboard
    found = dashboard_variables(dash)
    datasources = [v for v in found.values() if v["type"] == "datasource"]
    assert [(v["name"], v["label"]) for v in datasources] == [("datasource", "Data source")]
    for name in sorted(TARGET_VARIABLES):
        var = found[name]
        assert var["label"] == name.title() and var["type"] == "query", name
        assert var["datasource"]["uid"] in ("$datasource", "${datasource}"), name
        assert var["multi"] and var["allValue"] == ".+", name
    for name, var in found.items():
        if var["type"] == "query":
            assert var["refresh"] == 2, f"{name}: refresh on time range change"
            assert re.fullmatch(
                r"(label_names|label_values|metrics|query_result)\(.+\)", variable_query(var)
            ), name


def test_linter_panel_rules(dashboard: tuple[str, dict[str, Any]]) -> None:
    """panel-title-description, panel-units (a unit Grafana knows) and panel-no-targets."""
    _, dash = dashboard
    for panel in iter_panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["fieldConfig"]["defaults"]["unit"] in GRAFANA_UNITS, panel["title"]
        assert panel["targets"], panel["title"]


def counter_reads(expr: str) -> list[str]:
    """Every `*_total` series read in ``expr`` that is not the range of a rate(), irate() or
    increase() call (dashboard-linter's target-counter-agg-rule)."""
    wrapped = re.sub(
        r"\b(?:rate|irate|increase)\(\s*\w+_total(?:\{[^}]*\})?\[[^\]]+\]\s*\)", "", expr
    )
    return re.findall(r"\b\w+_total\b", wrapped)


def test_counter_reads_finder() -> None:
    assert counter_reads('sum(rate(a_total{x="1"}[5m])) + b_total + increase(c_total[1h])') == [
        "b_total"
    ]


def test_linter_counters_are_rated(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, dash = dashboard
    for title, target in panel_queries(dash):
        assert counter_reads(target["expr"]) == [], f"{title}: {target['expr']}"
