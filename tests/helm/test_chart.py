"""The Helm chart, rendered by the real Helm engine (helm-python-sdk embeds Helm's Go SDK) and
checked against the Kubernetes schemas (kubernetes-validate), the exporter's own check-config,
and the canonical rule and dashboard files it must reuse."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from support import ROOT
from support.leaks import find_secrets
from support.monitoring import DASHBOARD_DIR

pytestmark = pytest.mark.integration

CHART_DIR = ROOT / "helm" / "credits-exporter"
CI_FILES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
#: The rule files as the chart ships them: the alerts, then the recording rules.
RULE_FILES = [ROOT / "prometheus" / "alerts.yaml", ROOT / "prometheus" / "rules.yaml"]
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a pinned recent one.
KUBE_VERSIONS = ("1.25", "1.33")
RELEASE, NAMESPACE = "credits", "monitoring"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

ACCOUNTS: list[dict[str, Any]] = [
    {"name": "growth", "provider": "theirstack", "low_credit_threshold": {"api": 1000, "ui": 50}},
    {"name": "engineering", "provider": "windsurf", "interval": "30m"},
    {"name": "sales", "provider": "fullenrich", "labels": {"team": "sales"}},
]
API_KEYS = {
    "growth": "ts-live-3f9a8c7e1d2b4a60",
    "engineering": "ws-svc-91b2c3d4e5f60718",
    "sales": "fe-key-0a1b2c3d4e5f6a7b",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def ci_values() -> list[Any]:
    return [pytest.param(load_yaml(p) or {}, id=p.name) for p in CI_FILES]


def all_values() -> list[Any]:
    return [pytest.param({}, id="defaults"), *ci_values()]


def render(chart: Any, values: dict[str, Any] | None = None) -> dict[str, str]:
    rendered: dict[str, str] = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return rendered


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def with_keys(**extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"config": {"accounts": copy.deepcopy(ACCOUNTS)}}
    values["apiKeys"] = dict(API_KEYS)
    values.update(extra)
    return values


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = workload(docs)["spec"]["template"]["spec"]
    return spec


def workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The one Deployment, or with shards > 1 the one StatefulSet (never both)."""
    found = of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet")
    assert len(found) == 1, [d["kind"] for d in found]
    return found[0]


def main_service(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Service scrapes go through (not the StatefulSet's headless one)."""
    found = [d for d in of_kind(docs, "Service") if d["spec"].get("clusterIP") != "None"]
    assert len(found) == 1
    return found[0]


def exporter_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    configmap = next(d for d in of_kind(docs, "ConfigMap") if "config.yaml" in d["data"])
    config: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return config


# --- lint, render, schema ---------------------------------------------------------------------


def test_chart_symlinks_reach_the_canonical_files() -> None:
    """One source of truth: the chart reads prometheus/ and grafana/dashboards/ through links."""
    for link, target in [
        (CHART_DIR / "files" / "prometheus", ROOT / "prometheus"),
        (CHART_DIR / "files" / "dashboards", DASHBOARD_DIR),
    ]:
        assert link.is_symlink(), f"{link} must be a symlink, not a copy"
        assert link.resolve() == target.resolve()
        assert not Path(str(link.readlink())).is_absolute(), "links must be relative"


@pytest.mark.parametrize("values", all_values())
def test_lint_passes(helm: Any, values: dict[str, Any]) -> None:
    report = helm.lint(str(CHART_DIR), values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("values", all_values())
def test_renders_valid_manifests(chart: Any, kubernetes_validate: Any, values: Any) -> None:
    docs = manifests(render(chart, values))
    kinds = {d["kind"] for d in docs}
    assert {"Service", "ConfigMap"} <= kinds
    assert len(kinds & {"Deployment", "StatefulSet"}) == 1
    for doc in docs:
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert meta.get("namespace"), f"{doc['kind']} {meta['name']} has no namespace"
        if doc["kind"] in CRD_KINDS:
            check_crd(doc)
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def check_crd(doc: dict[str, Any]) -> None:
    """The required fields of the Prometheus Operator CRDs (kubernetes-validate has no CRDs)."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"], "spec.selector is required"
        assert spec["endpoints"], "a ServiceMonitor without endpoints scrapes nothing"
        for endpoint in spec["endpoints"]:
            assert isinstance(endpoint["port"], str)
            for key in ("interval", "scrapeTimeout"):
                assert re.fullmatch(r"(\d+(ms|s|m|h))+", endpoint[key]), endpoint[key]
    else:
        assert spec["groups"], "spec.groups is required"
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert isinstance(rule["expr"], str) and rule["expr"].strip()
                assert ("alert" in rule) != ("record" in rule), rule
                assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}
                for key in ("labels", "annotations"):
                    assert all(isinstance(v, str) for v in rule.get(key, {}).values())


@pytest.mark.parametrize("values", all_values())
def test_objects_fit_together(chart: Any, values: Any) -> None:
    """Selectors select, ports and volumes that are referred to exist."""
    docs = manifests(render(chart, values))
    deployment = workload(docs)
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    service = main_service(docs)
    for svc in of_kind(docs, "Service"):
        assert svc["spec"]["selector"].items() <= pod_labels.items()
    if deployment["kind"] == "StatefulSet":
        headless = next(s for s in of_kind(docs, "Service") if s is not service)
        assert deployment["spec"]["serviceName"] == headless["metadata"]["name"]
    container = pod["spec"]["containers"][0]
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    volumes = {v["name"] for v in pod["spec"]["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} <= volumes
    account = pod["spec"]["serviceAccountName"]
    for sa in of_kind(docs, "ServiceAccount"):
        assert sa["metadata"]["name"] == account
    for monitor in of_kind(docs, "ServiceMonitor"):
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items()
        )
        assert (
            service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
        )
        service_ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports
    for policy in of_kind(docs, "NetworkPolicy"):
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    for budget in of_kind(docs, "PodDisruptionBudget"):
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"unknownTopLevelKey": True}, id="unknown-top-level-key"),
        pytest.param({"replicaCount": "two"}, id="replicaCount-string"),
        pytest.param({"shards": 0}, id="shards-zero"),
        pytest.param({"shards": "3"}, id="shards-string"),
        pytest.param({"image": {"tag": 1.2}}, id="image.tag-number"),
        pytest.param({"image": {"pullPolicy": "Sometimes"}}, id="image.pullPolicy-enum"),
        pytest.param({"image": {"reposit": "x"}}, id="image-unknown-key"),
        pytest.param({"serviceMonitor": {"enabled": "yes"}}, id="serviceMonitor.enabled-string"),
        pytest.param({"serviceMonitor": {"interval": "often"}}, id="serviceMonitor.interval"),
        pytest.param({"prometheusRule": {"thresholds": {"x": 1}}}, id="threshold-unknown"),
        pytest.param(
            {"prometheusRule": {"thresholds": {"runningOutDays": "7d"}}}, id="threshold-string"
        ),
        pytest.param({"grafanaDashboards": {"labelValue": 1}}, id="labelValue-number"),
        pytest.param({"apiKeys": {"growth": 12345}}, id="apiKeys-number"),
        pytest.param({"existingSecret": "my-secret"}, id="existingSecret-string"),
        pytest.param({"log": {"level": "loud"}}, id="log.level-enum"),
        pytest.param({"containerPort": 70000}, id="containerPort-range"),
        pytest.param({"config": {"accounts": [{"name": "x"}]}}, id="account-without-provider"),
        pytest.param({"config": {"accounts": {"name": "x"}}}, id="accounts-not-a-list"),
        pytest.param({"extraArgs": "--log.level=debug"}, id="extraArgs-string"),
        pytest.param({"podDisruptionBudget": {"minAvailable": "half"}}, id="pdb-minAvailable"),
        pytest.param({"networkPolicy": {"egress": {"https": {"ports": []}}}}, id="no-https-port"),
        pytest.param(
            {"prometheusRule": {"alerts": {"CreditsLow": {"severity": "page"}}}},
            id="alert-severity-enum",
        ),
        pytest.param(
            {"prometheusRule": {"alerts": {"CreditsLow": {"for": "soon"}}}}, id="alert-for"
        ),
        pytest.param(
            {"prometheusRule": {"alerts": {"CreditsLow": {"enable": False}}}}, id="alert-typo"
        ),
        pytest.param({"prometheusRule": {"extraRules": [{"expr": "up"}]}}, id="rule-no-name"),
        pytest.param({"extraContainers": [{"image": "proxy:1"}]}, id="container-no-name"),
        pytest.param({"extraManifests": {"kind": "ConfigMap"}}, id="extraManifests-not-a-list"),
    ],
)
def test_schema_rejects_bad_values(chart: Any, helm: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))
    with pytest.raises(helm.HelmValuesError):
        render(chart, values)


def test_schema_accepts_every_ci_values_file(chart: Any) -> None:
    assert CI_FILES, "helm/credits-exporter/ci/*-values.yaml missing"
    for path in CI_FILES:
        chart.validate_schema(chart.merge_values(load_yaml(path) or {}))


def test_schema_log_choices_are_the_exporters() -> None:
    from exporter.log import LOG_FORMATS, LOG_LEVELS

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    log = schema["properties"]["log"]["properties"]
    assert tuple(log["level"]["enum"]) == tuple(LOG_LEVELS)
    assert tuple(log["format"]["enum"]) == tuple(LOG_FORMATS)


def test_ci_values_cover_every_template(chart: Any) -> None:
    """Every template (so every optional feature) renders something under some ci/ file."""
    templates = {
        f"credits-exporter/{t['name']}"
        for t in chart.templates
        if not PurePosixPath(t["name"]).name.startswith("_")
    }
    covered: set[str] = set()
    for path in CI_FILES:
        rendered = render(chart, load_yaml(path) or {})
        covered |= {name for name, text in rendered.items() if text.strip()}
    assert templates - covered == set()
    features = [
        "serviceMonitor.enabled",
        "prometheusRule.enabled",
        "grafanaDashboards.enabled",
        "networkPolicy.enabled",
        "podDisruptionBudget.enabled",
        "existingSecret.name",
        "apiKeys",
        "extraArgs",
        "extraVolumes",
        "shards",
        "nameOverride",
        "prometheusRule.alerts",
        "prometheusRule.extraRules",
        "extraContainers",
        "extraInitContainers",
        "extraManifests",
    ]
    for feature in features:
        assert any(lookup(load_yaml(p) or {}, feature) for p in CI_FILES), feature


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# --- the pod ----------------------------------------------------------------------------------


def test_deployment_is_hardened(chart: Any) -> None:
    docs = manifests(render(chart))
    pod = pod_spec(docs)
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    pod_sc, sc = pod["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and sc["runAsNonRoot"] is True
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsUser"] == pod_sc["runAsUser"] == dockerfile_uid()
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 9966
    assert "--web.listen-address=:9966" in container["args"]
    metadata = chart.metadata
    assert container["image"].endswith(f":{metadata['appVersion']}")
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])


def dockerfile_uid() -> int:
    users = re.findall(r"^USER\s+(\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users, "the Dockerfile must set a numeric USER"
    return int(users[-1].split(":")[0])


def test_image_tag_and_digest(chart: Any) -> None:
    def image(values: dict[str, Any]) -> str:
        container: dict[str, Any] = pod_spec(manifests(render(chart, values)))["containers"][0]
        return str(container["image"])

    app = chart.metadata["appVersion"]
    assert image({}) == f"ghcr.io/credits-exporter/credits-exporter:{app}"
    assert image({"image": {"tag": "9.9.9"}}).endswith(":9.9.9")
    digest = "sha256:" + "ab" * 32
    assert image({"image": {"digest": digest, "registry": ""}}) == (
        f"credits-exporter/credits-exporter@{digest}"
    )


def test_checksums_roll_the_pods_on_change(chart: Any) -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        docs = manifests(render(chart, values))
        found: dict[str, str] = one(docs, "Deployment")["spec"]["template"]["metadata"][
            "annotations"
        ]
        return found

    base = annotations(with_keys())
    assert base == annotations(with_keys())
    assert set(base) >= {"checksum/config", "checksum/secret"}
    changed = with_keys()
    changed["config"]["accounts"][0]["interval"] = "1h"
    assert annotations(changed)["checksum/config"] != base["checksum/config"]
    assert annotations(changed)["checksum/secret"] == base["checksum/secret"]
    rotated = with_keys()
    rotated["apiKeys"]["growth"] = "ts-live-rotated"
    assert annotations(rotated)["checksum/secret"] != base["checksum/secret"]
    assert annotations(rotated)["checksum/config"] == base["checksum/config"]


def test_extra_args_env_and_scheduling_reach_the_pod(chart: Any) -> None:
    values = {
        "extraArgs": ["--web.config.file=/etc/web/web.yaml"],
        "env": [{"name": "TZ", "value": "UTC"}],
        "podAnnotations": {"a": "b"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "affinity": {"podAntiAffinity": {}},
    }
    docs = manifests(render(chart, values))
    template = one(docs, "Deployment")["spec"]["template"]
    pod = template["spec"]
    assert "--web.config.file=/etc/web/web.yaml" in pod["containers"][0]["args"]
    assert pod["containers"][0]["env"] == values["env"]
    assert template["metadata"]["annotations"]["a"] == "b"
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]


def test_extra_containers_and_manifests(chart: Any) -> None:
    """extraInitContainers, extraContainers (after the exporter) and extraManifests (objects and
    strings), all through tpl."""
    values = load_yaml(CHART_DIR / "ci" / "extensions-values.yaml")
    docs = manifests(render(chart, values))
    pod = pod_spec(docs)
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-dns"]
    assert [c["name"] for c in pod["containers"]] == ["credits-exporter", "proxy"]
    assert pod["containers"][1]["args"] == ["--upstream=http://127.0.0.1:9966"]
    owner = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-owner"))
    assert owner["metadata"]["name"] == "credits-owner"  # fullname of release credits, name credits
    assert owner["data"] == {"owner": "platform-team"}
    (secret,) = [d for d in of_kind(docs, "Secret") if d["metadata"]["name"] == "credits-proxy"]
    assert secret["stringData"] == {"upstream": "http://127.0.0.1:9966"}
    assert secret["metadata"]["labels"]["app.kubernetes.io/name"] == "credits"
    plain = manifests(render(chart, with_keys()))
    assert "initContainers" not in pod_spec(plain)
    assert len(pod_spec(plain)["containers"]) == 1


def test_chart_metadata() -> None:
    """What Artifact Hub and `helm show chart` display: home, sources, an icon that exists."""
    metadata = load_yaml(CHART_DIR / "Chart.yaml")
    project = "https://github.com/credits-exporter/credits-exporter"
    assert metadata["home"] == project
    assert project in metadata["sources"]
    prefix = "https://raw.githubusercontent.com/credits-exporter/credits-exporter/main/"
    assert metadata["icon"].startswith(prefix)
    icon = ROOT / metadata["icon"].removeprefix(prefix)
    assert icon.is_file() and icon.read_text().lstrip().startswith("<svg")


def test_network_policy_allows_only_dns_https_and_scrapes(chart: Any) -> None:
    docs = manifests(render(chart, {"networkPolicy": {"enabled": True}}))
    spec = one(docs, "NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert [r["ports"] for r in spec["ingress"]] == [[{"port": "http", "protocol": "TCP"}]]
    egress_ports = sorted((p["port"], p["protocol"]) for r in spec["egress"] for p in r["ports"])
    assert egress_ports == [(53, "TCP"), (53, "UDP"), (443, "TCP")]


# --- API keys ---------------------------------------------------------------------------------


def test_api_keys_from_values_become_a_secret_and_files(chart: Any) -> None:
    docs = manifests(render(chart, with_keys()))
    secret = one(docs, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == API_KEYS
    config = exporter_config(docs)
    for account in config["accounts"]:
        assert "api_key" not in account
        assert account["api_key_file"] == f"/etc/credits-exporter/secrets/{account['name']}"
    volume = next(v for v in pod_spec(docs)["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]


def test_existing_secret_maps_keys_and_creates_no_secret(chart: Any) -> None:
    values = {
        "config": {"accounts": copy.deepcopy(ACCOUNTS)},
        "existingSecret": {"name": "credit-keys", "keys": {"sales": "FULLENRICH_KEY"}},
        "apiKeys": {"growth": "ignored-when-existingSecret-is-set"},
    }
    docs = manifests(render(chart, values))
    assert of_kind(docs, "Secret") == []
    volume = next(v for v in pod_spec(docs)["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == "credit-keys"
    assert volume["secret"]["items"] == [
        {"key": "growth", "path": "growth"},
        {"key": "engineering", "path": "engineering"},
        {"key": "FULLENRICH_KEY", "path": "sales"},
    ]
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" not in annotations


@pytest.mark.parametrize("values", [pytest.param(with_keys(), id="apiKeys"), *ci_values()])
def test_no_api_key_value_in_any_configmap(chart: Any, values: dict[str, Any]) -> None:
    values = copy.deepcopy(values)
    existing = bool(values.get("existingSecret", {}).get("name"))
    if not values.get("apiKeys") and not existing:
        values.setdefault("config", {})["accounts"] = copy.deepcopy(ACCOUNTS)
        values["apiKeys"] = dict(API_KEYS)
    if existing:  # apiKeys are ignored then, and must not show up anywhere
        accounts = chart.merge_values(values)["config"]["accounts"]
        assert accounts
        values["apiKeys"] = {
            a["name"]: "unused-" + hashlib.sha256(a["name"].encode()).hexdigest()[:16]
            for a in accounts
        }
    keys = [str(k) for k in values["apiKeys"].values()]
    rendered = render(chart, values)
    docs = manifests(rendered)
    configmaps = of_kind(docs, "ConfigMap")
    assert configmaps
    text = yaml.safe_dump(configmaps) + rendered.get("credits-exporter/templates/NOTES.txt", "")
    everything = yaml.safe_dump(docs) + text
    for key in keys:
        encoded = base64.b64encode(key.encode()).decode()
        assert find_secrets(text, [key, encoded]) == []
        if existing:
            assert find_secrets(everything, [key, encoded]) == []
        else:  # the keys are in the rendering, only not where they must not be
            assert encoded in yaml.safe_dump(of_kind(docs, "Secret"))


def test_api_key_in_values_config_fails_rendering(chart: Any, helm: Any) -> None:
    values = with_keys()
    values["config"]["accounts"][1]["api_key"] = "ws-inline-key-in-config"
    with pytest.raises(helm.HelmRenderError, match=r"accounts\[1\] \(engineering\): api_key"):
        render(chart, values)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda v: v["apiKeys"].pop("sales"), r"accounts\[2\] \(sales\): no API key", id="none"
        ),
        pytest.param(
            lambda v: v["apiKeys"].update(salse="x"), r"apiKeys\.salse: no account", id="typo"
        ),
        pytest.param(
            lambda v: v["config"]["accounts"][0].update(name="a/b"),
            r"cannot name a Secret key",
            id="bad-name",
        ),
    ],
)
def test_key_mistakes_fail_rendering(chart: Any, helm: Any, change: Any, message: str) -> None:
    values = with_keys()
    change(values)
    with pytest.raises(helm.HelmRenderError, match=message):
        render(chart, values)


# --- the config passes the exporter's own check-config ----------------------------------------


def materialize(docs: list[dict[str, Any]], root: Path) -> Path:
    """Lay out the pod's filesystem under root from the rendered objects: every volume the
    container mounts, with the files the Deployment projects into it (ConfigMap and Secret data,
    base64 decoded; a Secret the chart does not create gets a stand-in value per item). Return the
    config file, its api_key_file paths moved under root. Fails where the config points at a
    file that no mount provides."""
    pod = pod_spec(docs)
    container = pod["containers"][0]
    config_flag = next(a for a in container["args"] if a.startswith("--config.file="))
    config_path = PurePosixPath(config_flag.split("=", 1)[1])
    configmaps = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d for d in of_kind(docs, "Secret")}
    volumes = {v["name"]: v for v in pod["volumes"]}

    def on_host(path: PurePosixPath | str) -> Path:
        return root / PurePosixPath(path).relative_to("/")

    outside: list[PurePosixPath] = []  # mounts whose content is not in the chart
    mounts: list[PurePosixPath] = []
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        target = PurePosixPath(mount["mountPath"])
        mounts.append(target)
        files: dict[str, str] = {}
        if "configMap" in volume:
            source = volume["configMap"]
            data = configmaps[source["name"]]["data"]
        elif "secret" in volume:
            source = volume["secret"]
            if source["secretName"] in secrets:
                secret = secrets[source["secretName"]]
                data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            elif source.get("items"):
                data = {i["key"]: f"stand-in-{i['key']}\n" for i in source["items"]}
            else:
                outside.append(target)
                continue
        else:
            continue
        items = source.get("items")
        files = {i["path"]: data[i["key"]] for i in items} if items else dict(data)
        for name, content in files.items():
            on_host(target / name).parent.mkdir(parents=True, exist_ok=True)
            on_host(target / name).write_text(content)

    assert on_host(config_path).is_file(), f"{config_path} is not mounted"
    config = yaml.safe_load(on_host(config_path).read_text())
    for account in config.get("accounts") or []:
        if "api_key_file" not in account:
            continue
        path = PurePosixPath(account["api_key_file"])
        mount = max(
            (m for m in mounts if m in path.parents), key=lambda m: len(m.parts), default=None
        )
        assert mount is not None, f"{account['name']}: {path} is on no mounted volume"
        if mount in outside:
            on_host(path).parent.mkdir(parents=True, exist_ok=True)
            on_host(path).write_text("stand-in-key\n")
        assert on_host(path).is_file(), f"{account['name']}: the volume does not provide {path}"
        account["api_key_file"] = str(on_host(path))
    checked = root / "config.checked.yaml"
    checked.write_text(yaml.safe_dump(config))
    return checked


def check_config(exporter_cli: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exporter_cli, "check-config", f"--config.file={config}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("values", [*all_values(), pytest.param(with_keys(), id="apiKeys")])
def test_rendered_config_passes_check_config(
    chart: Any, exporter_cli: list[str], tmp_path: Path, values: dict[str, Any]
) -> None:
    docs = manifests(render(chart, values))
    result = check_config(exporter_cli, materialize(docs, tmp_path))
    accounts = chart.merge_values(values)["config"]["accounts"]
    assert result.returncode == 0, result.stderr
    assert f"ok ({len(accounts)} account(s))" in result.stdout
    secrets = of_kind(docs, "Secret")
    for name, key in (values.get("apiKeys") or {}).items():
        if secrets:
            assert (tmp_path / "etc/credits-exporter/secrets" / name).read_text() == key


def test_check_config_of_a_rendered_config_can_fail(
    chart: Any, exporter_cli: list[str], tmp_path: Path
) -> None:
    """The check above is not vacuous: a bad config from the chart is caught."""
    values = with_keys()
    values["config"]["accounts"][0]["interval"] = "5 minutes"
    docs = manifests(render(chart, values))
    result = check_config(exporter_cli, materialize(docs, tmp_path))
    assert result.returncode == 2
    assert "accounts[0].interval" in result.stderr


# --- PrometheusRule: the same rule files, thresholds from values -------------------------------


def canonical_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in RULE_FILES:
        groups.extend(load_yaml(path)["groups"])
    return groups


# The job regex of prometheus/alerts.yaml; the chart writes its ServiceMonitor's job instead,
# unless prometheusRule.thresholds.exporterJobRegex is set.
FILE_JOB_REGEX = ".*credits-exporter.*"


def rendered_groups(chart: Any, **rule_values: Any) -> list[dict[str, Any]]:
    """The PrometheusRule's groups, with the files' job regex unless the test sets another."""
    thresholds = {"exporterJobRegex": FILE_JOB_REGEX, **rule_values.pop("thresholds", {})}
    return rule_groups(
        chart, {"prometheusRule": {"enabled": True, "thresholds": thresholds, **rule_values}}
    )


def rule_groups(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = one(manifests(render(chart, values)), "PrometheusRule")["spec"][
        "groups"
    ]
    return groups


def threshold_table() -> list[dict[str, str]]:
    """prometheus/README.md's table of thresholds: parameter, alert, default, token."""
    tables: list[list[list[str]]] = [[]]
    for line in (ROOT / "prometheus" / "README.md").read_text().splitlines():
        if line.strip().startswith("|"):
            cells = [c.strip().strip("`").strip() for c in line.strip().strip("|").split("|")]
            tables[-1].append(cells)
        elif tables[-1]:
            tables.append([])
    for header, _, *body in (t for t in tables if len(t) > 2):
        lowered = [h.lower() for h in header]
        if {"parameter", "alert", "default", "token"} <= set(lowered):
            return [dict(zip(lowered, row, strict=True)) for row in body]
    raise AssertionError("prometheus/README.md has no table of parameter, alert, default, token")


def test_rule_files_are_all_used() -> None:
    """Every rule file in prometheus/ is one the chart renders."""
    rule_files = {
        p for p in (ROOT / "prometheus").glob("*.y*ml") if "groups" in (load_yaml(p) or {})
    }
    assert rule_files == set(RULE_FILES)
    helpers = (CHART_DIR / "templates" / "_helpers.tpl").read_text()
    for path in RULE_FILES:
        assert f'"files/prometheus/{path.name}"' in helpers


def test_prometheus_rule_equals_the_canonical_rule_files(chart: Any) -> None:
    assert rendered_groups(chart) == canonical_groups()
    # Without the chart's ServiceMonitor, default values render the files as they are.
    assert rule_groups(chart, {"prometheusRule": {"enabled": True}}) == canonical_groups()
    # With it, only CreditsExporterDown's job differs: the ServiceMonitor's job.
    expected = canonical_groups()
    down = alerts_by_name(expected)["CreditsExporterDown"]
    down["expr"] = down["expr"].replace(f'job=~"{FILE_JOB_REGEX}"', 'job=~"credits-exporter"')
    values = {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}
    assert rule_groups(chart, values) == expected


def test_chart_threshold_table_is_the_documented_one(chart: Any) -> None:
    documented = {row["parameter"]: row for row in threshold_table()}
    defaults = chart.values["prometheusRule"]["thresholds"]
    assert set(defaults) == set(documented)
    assert documented["exporterJobRegex"]["default"] == FILE_JOB_REGEX
    assert defaults["exporterJobRegex"] == ""  # the chart's own job (see below)
    for parameter, row in documented.items():
        if parameter != "exporterJobRegex":
            assert str(defaults[parameter]) == row["default"], parameter
        assert row["default"] in row["token"], row
    helpers = (CHART_DIR / "templates" / "_helpers.tpl").read_text()
    block = helpers.split('define "credits-exporter.thresholdTable"')[1].split("{{- end }}")[0]
    table = yaml.safe_load(block.split("-}}", 1)[1])
    assert {
        p: {"alert": t["alert"], "token": t["token"], "default": str(t["default"])}
        for p, t in table.items()
    } == {
        p: {"alert": r["alert"], "token": r["token"], "default": r["default"]}
        for p, r in documented.items()
    }


def alerts_by_name(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("row", threshold_table(), ids=lambda row: row["parameter"])
def test_threshold_override_changes_only_its_alert(
    chart: Any, promtool: str, tmp_path: Path, row: dict[str, str]
) -> None:
    new = bump(row["default"])
    groups = rendered_groups(chart, thresholds={row["parameter"]: new})
    canonical = alerts_by_name(canonical_groups())
    rendered = alerts_by_name(groups)
    expected_token = row["token"].replace(row["default"], str(new))
    assert row["token"] in canonical[row["alert"]]["expr"]
    assert rendered[row["alert"]]["expr"] == canonical[row["alert"]]["expr"].replace(
        row["token"], expected_token
    )
    assert rendered[row["alert"]]["expr"] != canonical[row["alert"]]["expr"]
    for name, rule in rendered.items():
        if name != row["alert"]:
            assert rule == canonical[name]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def bump(default: str) -> int | float | str:
    if re.fullmatch(r"\d+", default):
        return int(default) * 2 + 1
    if re.fullmatch(r"\d*\.\d+", default):
        return round(float(default) / 2, 6)
    return f"{default}|other-job"  # a regex


@pytest.mark.parametrize(("value", "token"), [(2592000, "> 2592000"), (1.5, "> 1.5")])
def test_threshold_numbers_are_written_plainly(chart: Any, value: float, token: str) -> None:
    rendered = alerts_by_name(rendered_groups(chart, thresholds={"dataStaleSeconds": value}))
    assert token in rendered["CreditsDataStale"]["expr"]


def test_unknown_threshold_is_rejected(chart: Any, helm: Any) -> None:
    with pytest.raises(helm.HelmValuesError, match="noSuchThreshold"):
        rendered_groups(chart, thresholds={"noSuchThreshold": 1})


def service_monitor_job(docs: list[dict[str, Any]]) -> str:
    """The job name the Prometheus Operator gives the ServiceMonitor's targets: the value of the
    Service label that jobLabel names."""
    monitor = one(docs, "ServiceMonitor")
    job: str = main_service(docs)["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    return job


@pytest.mark.parametrize(
    "names",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"nameOverride": "credits"}, id="nameOverride"),
        pytest.param({"fullnameOverride": "billing-watch"}, id="fullnameOverride"),
        pytest.param({"nameOverride": "saas.credits", "fullnameOverride": "x"}, id="both"),
    ],
)
def test_exporter_down_follows_the_service_monitors_job(
    chart: Any, promtool: str, tmp_path: Path, names: dict[str, Any]
) -> None:
    """With the chart's own names, CreditsExporterDown watches exactly the job its ServiceMonitor
    produces: a down target fires it with its labels, and the alert for "no target at all" stays
    quiet while the target exists. promtool evaluates the rendered rule."""
    values = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}, **names}
    docs = manifests(render(chart, values))
    job = service_monitor_job(docs)
    groups = one(docs, "PrometheusRule")["spec"]["groups"]
    # the job's name with something around it is another job
    check_exporter_down(promtool, tmp_path, groups, job, other_job=f"{job}-x")


@pytest.mark.parametrize(
    ("job", "names"),
    [
        pytest.param("monitoring/credits-exporter", {}, id="podmonitor"),
        pytest.param("credits-exporter", {}, id="static-config"),
        pytest.param("prod-credits-exporter", {"nameOverride": "credits"}, id="nameOverride"),
    ],
)
def test_exporter_down_without_service_monitor_keeps_the_broad_regex(
    chart: Any, promtool: str, tmp_path: Path, job: str, names: dict[str, Any]
) -> None:
    """Without the chart's ServiceMonitor, Prometheus scrapes the exporter with a job of its own
    (a scrape config, a PodMonitor's <namespace>/<name>): CreditsExporterDown keeps the files'
    broad regex, so a target that is up is not reported as "no target at all" forever, and one
    that is down fires with its labels."""
    values = {"serviceMonitor": {"enabled": False}, "prometheusRule": {"enabled": True}, **names}
    groups = rule_groups(chart, values)
    down = alerts_by_name(groups)["CreditsExporterDown"]
    assert f'job=~"{FILE_JOB_REGEX}"' in down["expr"]
    check_exporter_down(promtool, tmp_path, groups, job, other_job="node-exporter")


def check_exporter_down(
    promtool: str, tmp_path: Path, groups: list[dict[str, Any]], job: str, other_job: str
) -> None:
    """promtool evaluates the rendered CreditsExporterDown: quiet while a target of ``job`` is up
    (``other_job``, down throughout, is not the exporter's), firing with the target's labels
    once it has been down for 5 minutes."""
    down = alerts_by_name(groups)["CreditsExporterDown"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    instance = "10.0.0.1:9966"
    description = (
        f"Target {instance} of job {job} is down (up = 0). No provider, account or pool can be "
        "watched while it is down."
    )
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'up{{job="{job}", instance="{instance}"}}', "values": "1 1 0x10"},
                    {
                        "series": f'up{{job="{other_job}", instance="10.0.0.2:9966"}}',
                        "values": "0x12",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "6m", "alertname": "CreditsExporterDown", "exp_alerts": []},
                    {
                        "eval_time": "9m",
                        "alertname": "CreditsExporterDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {**down["labels"], "job": job, "instance": instance},
                                "exp_annotations": {
                                    **down["annotations"],
                                    "description": description,
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_exporter_job_regex_can_be_set(chart: Any) -> None:
    """Scraped some other way (no ServiceMonitor of this chart): the regex is the user's."""
    rules = alerts_by_name(rendered_groups(chart, thresholds={"exporterJobRegex": "billing/.+"}))
    assert 'up{job=~"billing/.+"}' in rules["CreditsExporterDown"]["expr"]


# Labels the Prometheus Operator (and Prometheus) put on every target it scrapes.
TARGET_LABELS = {"job", "instance", "endpoint", "namespace", "service", "pod", "container"}


def test_service_monitor_needs_no_honor_labels(chart: Any) -> None:
    """No label of the exporter's clashes with one the Operator sets on targets (the provider
    endpoint's label is api_endpoint), so the ServiceMonitor does not honour labels: under
    kube-prometheus-stack's overrideHonorLabels nothing would change either."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    table = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    labels: set[str] = set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`credits_"):
            labels |= {label.strip() for label in cells[2].split(",") if label.strip()}
    assert "api_endpoint" in labels
    assert labels & TARGET_LABELS == set()
    docs = manifests(render(chart, {"serviceMonitor": {"enabled": True}}))
    for endpoint in one(docs, "ServiceMonitor")["spec"]["endpoints"]:
        assert "honorLabels" not in endpoint
    docs = manifests(render(chart, {"serviceMonitor": {"enabled": True, "honorLabels": True}}))
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["honorLabels"] is True


def test_per_alert_overrides(chart: Any, promtool: str, tmp_path: Path) -> None:
    alerts = {
        "CreditsExpiringSoon": {"enabled": False},
        "CreditsLow": {"for": "30m", "severity": "critical", "labels": {"team": "sales"}},
        "CreditsExhausted": {"enabled": True, "labels": {"page": "yes"}},
    }
    groups = rendered_groups(chart, alerts=alerts, additionalRuleLabels={"team": "platform"})
    rendered = alerts_by_name(groups)
    canonical = alerts_by_name(canonical_groups())
    assert set(rendered) == set(canonical) - {"CreditsExpiringSoon"}
    low = rendered["CreditsLow"]
    assert low["for"] == "30m"
    assert low["labels"] == {"severity": "critical", "team": "sales"}  # its own team wins
    assert low["expr"] == canonical["CreditsLow"]["expr"]
    exhausted = rendered["CreditsExhausted"]["labels"]
    assert exhausted == {"severity": "critical", "team": "platform", "page": "yes"}
    for name, rule in rendered.items():
        if name not in alerts:
            assert rule["labels"] == {**canonical[name]["labels"], "team": "platform"}
            assert rule["for"] == canonical[name]["for"]
    check_rules(promtool, tmp_path, groups)
    # Disabling every alert of a group leaves the group out (a group without rules is invalid).
    off = {name: {"enabled": False} for name in canonical}
    names = [g["name"] for g in rendered_groups(chart, alerts=off)]
    assert names == [g["name"] for g in canonical_groups() if "alert" not in g["rules"][0]]


def test_per_alert_override_of_an_unknown_alert_fails(chart: Any, helm: Any) -> None:
    with pytest.raises(helm.HelmError, match=r"prometheusRule\.alerts\.CreditsLowBalance: no such"):
        rendered_groups(chart, alerts={"CreditsLowBalance": {"enabled": False}})


def test_extra_rules_are_a_group_of_their_own(chart: Any, promtool: str, tmp_path: Path) -> None:
    extra: list[dict[str, Any]] = [
        {
            "alert": "CreditsSalesBudgetLow",
            "expr": 'credits_remaining{account="sales"} < 100',
            "for": "15m",
            "labels": {"severity": "critical"},
            "annotations": {"summary": "The sales workspace is nearly out of credits."},
        },
        {
            "record": "account:credits_remaining:sum",
            "expr": "sum without (pool) (credits_remaining)",
        },
    ]
    groups = rendered_groups(chart, extraRules=extra, additionalRuleLabels={"team": "platform"})
    assert [g["name"] for g in groups] == [g["name"] for g in canonical_groups()] + [
        "credits.extra"
    ]
    alert, record = groups[-1]["rules"]
    assert alert == {**extra[0], "labels": {"severity": "critical", "team": "platform"}}
    assert record == extra[1]
    check_rules(promtool, tmp_path, groups)


def check_rules(promtool: str, tmp_path: Path, groups: list[dict[str, Any]]) -> None:
    path = tmp_path / "rendered-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_additional_rule_labels_reach_every_alert_only(chart: Any) -> None:
    groups = rendered_groups(chart, additionalRuleLabels={"team": "platform"})
    canonical = canonical_groups()
    for group, original in zip(groups, canonical, strict=True):
        for rule, before in zip(group["rules"], original["rules"], strict=True):
            if "alert" in rule:
                assert rule["labels"] == {"team": "platform", **before.get("labels", {})}
            else:
                assert rule == before


# --- Grafana dashboards: the same JSON files ---------------------------------------------------


def dashboards_in(docs: list[dict[str, Any]], key: str, value: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for configmap in of_kind(docs, "ConfigMap"):
        if configmap["metadata"]["labels"].get(key) == value:
            found.update(configmap["data"])
    return found


def test_dashboards_equal_the_canonical_files(chart: Any) -> None:
    canonical = {p.name: p.read_text() for p in sorted(DASHBOARD_DIR.glob("*.json"))}
    assert canonical, "grafana/dashboards/*.json missing"
    docs = manifests(render(chart, {"grafanaDashboards": {"enabled": True}}))
    found = dashboards_in(docs, "grafana_dashboard", "1")
    assert found == canonical
    for name, text in found.items():
        assert json.loads(text) == json.loads(canonical[name])


def test_dashboard_sidecar_label_is_configurable(chart: Any) -> None:
    values = {
        "grafanaDashboards": {
            "enabled": True,
            "labelKey": "dashboards",
            "labelValue": "credits",
            "namespace": "grafana",
        }
    }
    docs = manifests(render(chart, values))
    found = dashboards_in(docs, "dashboards", "credits")
    assert set(found) == {p.name for p in DASHBOARD_DIR.glob("*.json")}
    assert dashboards_in(docs, "grafana_dashboard", "1") == {}
    assert {
        c["metadata"]["namespace"]
        for c in of_kind(docs, "ConfigMap")
        if "config.yaml" not in c["data"]
    } == {"grafana"}


def test_packaged_chart_carries_the_linked_files(chart: Any, helm: Any, tmp_path: Path) -> None:
    """helm package follows the links: a published chart needs no repository checkout."""
    archive = helm.package(str(CHART_DIR), destination=str(tmp_path))
    values = {"prometheusRule": {"enabled": True}, "grafanaDashboards": {"enabled": True}}
    with helm.Chart.load(archive) as packaged:
        names = {f["name"] for f in packaged.files}
        assert "files/prometheus/alerts.yaml" in names
        assert not any(n.startswith("files/prometheus/tests/") for n in names)
        assert packaged.render(values, name=RELEASE, namespace=NAMESPACE) == render(chart, values)


# --- README -----------------------------------------------------------------------------------


def leaf_values(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    leaves: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            leaves.update(leaf_values(value, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


def test_readme_documents_every_value_with_its_default() -> None:
    values = leaf_values(load_yaml(CHART_DIR / "values.yaml"))
    documented: dict[str, str] = {}
    for line in (CHART_DIR / "README.md").read_text().splitlines():
        match = re.match(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|\s*`([^`]*)`\s*\|", line)
        if match:
            assert match.group(1) not in documented, f"{match.group(1)} documented twice"
            documented[match.group(1)] = match.group(3)
    assert sorted(set(values) - set(documented)) == [], "values missing from README.md"
    assert sorted(set(documented) - set(values)) == [], "README.md documents unknown values"
    for key, default in documented.items():
        assert json.loads(default) == values[key], f"README.md default of {key}"


# --- sharding ---------------------------------------------------------------------------------


def test_shards_deploy_a_statefulset_whose_pods_are_the_shards(chart: Any) -> None:
    from exporter.sharding import owner, resolve_shard

    plain = manifests(render(chart, with_keys()))
    docs = manifests(render(chart, with_keys(shards=3)))
    assert not of_kind(docs, "Deployment")
    sts = one(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    headless = next(s for s in of_kind(docs, "Service") if s["spec"].get("clusterIP") == "None")
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert main_service(docs)["spec"] == main_service(plain)["spec"]  # scrapes unchanged

    # The same pod as the Deployment's, plus SHARD_COUNT; the config is the whole config.
    template = sts["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env == {"SHARD_COUNT": "3"}
    deployment_template = copy.deepcopy(one(plain, "Deployment")["spec"]["template"])
    deployment_template["spec"]["containers"][0]["env"] = container["env"]
    assert template == deployment_template
    assert exporter_config(docs) == exporter_config(plain)

    # Pod <statefulset>-K (its host name) becomes shard K of 3: together they poll every
    # account once.
    names = [a["name"] for a in ACCOUNTS]
    polled: list[str] = []
    for k in range(3):
        shard = resolve_shard(None, env, hostname=f"{sts['metadata']['name']}-{k}")
        assert shard is not None and (shard.index, shard.count) == (k, 3)
        polled += [n for n in names if owner(n, 3) == k]
    assert sorted(polled) == sorted(names)


def test_shards_with_env_and_one_shard(chart: Any) -> None:
    extra = [{"name": "TZ", "value": "UTC"}]
    docs = manifests(render(chart, with_keys(shards=2, env=extra)))
    env = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "SHARD_COUNT", "value": "2"}, *extra]
    docs = manifests(render(chart, with_keys(shards=1)))
    assert one(docs, "Deployment") and not of_kind(docs, "StatefulSet")
    assert len(of_kind(docs, "Service")) == 1
    assert "env" not in pod_spec(docs)["containers"][0]


def test_shards_and_replicas_do_not_mix(chart: Any, helm: Any) -> None:
    with pytest.raises(helm.HelmError, match="replicaCount: must be 1 when shards > 1"):
        render(chart, with_keys(shards=3, replicaCount=2))
