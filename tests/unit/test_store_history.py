"""The compact sparkline history: a bounded run of points at a fraction of the memory of a
deque of tuples, whose points never move once a reader has them."""

from __future__ import annotations

import tracemalloc
from collections import deque

from exporter.store import HISTORY_POINTS, History


def test_behaves_like_a_bounded_deque_of_points() -> None:
    h = History(maxlen=3)
    assert len(h) == 0 and list(h) == [] and not h
    for i in range(5):
        h.append((1_800_000_000.7 + i, i * 1.5))
    assert len(h) == 3
    assert list(h) == [(1_800_000_002.0, 3.0), (1_800_000_003.0, 4.5), (1_800_000_004.0, 6.0)]
    assert h[0] == (1_800_000_002.0, 3.0) and h[-1] == (1_800_000_004.0, 6.0)
    h.replace_last((1_800_000_009.2, 1e15 + 0.5))  # values keep full precision
    assert h[-1] == (1_800_000_009.0, 1e15 + 0.5) and len(h) == 3
    h.drop_before(1_800_000_002.5)
    assert list(h) == [(1_800_000_003.0, 4.5), (1_800_000_009.0, 1e15 + 0.5)]
    assert h.points.as_json() == [[1_800_000_003, 4.5], [1_800_000_009, 1e15 + 0.5]]


def test_points_a_reader_holds_never_move() -> None:
    """A status snapshot shares the store's points instead of copying them: what it holds
    stays as it was while the store appends, replaces and drops."""
    h = History(maxlen=3)
    for i in range(3):
        h.append((1_800_000_000.0 + i, float(i)))
    held = h.points
    before = list(held)
    h.append((1_800_000_010.0, 10.0))
    h.replace_last((1_800_000_011.0, 11.0))
    h.drop_before(1_800_000_002.0)
    assert list(held) == before
    assert list(h) == [(1_800_000_002.0, 2.0), (1_800_000_011.0, 11.0)]
    assert held.since(1_800_000_001.0).as_json() == [[1_800_000_001, 1.0], [1_800_000_002, 2.0]]
    assert held.since(0) is held  # nothing older: no copy


def test_a_day_of_points_takes_a_tenth_of_a_deque_of_tuples() -> None:
    def size(make: type) -> int:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        keep = []
        for _ in range(100):
            points = make(maxlen=HISTORY_POINTS)
            for i in range(HISTORY_POINTS):
                points.append((1_800_000_000.0 + 300 * i, 12345.5 + i))
            keep.append(points)
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return used // 100

    ours, deque_of_tuples = size(History), size(deque)
    assert ours <= 13 * HISTORY_POINTS + 400  # 12 bytes a point, plus the arrays' headers
    assert ours * 5 < deque_of_tuples


def test_many_accounts_share_a_bounded_history() -> None:
    from exporter.config import parse_config
    from exporter.model import PoolValues, Reading
    from exporter.store import HISTORY_BUDGET, HISTORY_SPAN, Store, history_points

    assert history_points(1) == history_points(3000) == HISTORY_POINTS
    assert history_points(10_000) * 2 * 10_000 <= HISTORY_BUDGET
    assert history_points(10**6) == 24  # never less than one point an hour

    now = [1_800_000_000.0]
    store = Store(lambda: now[0])
    text = "accounts:\n" + "\n".join(
        f"  - {{name: a{i}, provider: fullenrich, api_key: key-{i}}}" for i in range(10_000)
    )
    store.set_accounts(parse_config(text, env={}).accounts)
    assert store.history_points == history_points(10_000) < HISTORY_POINTS
    for _ in range(500):  # two days of polls every 5 minutes, for one account
        now[0] += 300
        store.record_success("a1", "balance", Reading(pools={"w": PoolValues(now[0])}), 0.1)
    points = list(store.accounts["a1"].history["w"])
    assert len(points) == store.history_points  # still a day, at a coarser step
    assert now[0] - points[0][0] <= HISTORY_SPAN
    assert points[-1][1] == now[0]


def test_pools_no_longer_reported_take_their_history_with_them() -> None:
    """An http_json ``for_each`` whose names change: one history per pool reported now, not
    one per name ever seen."""
    from exporter.config import parse_config
    from exporter.model import PoolValues, Reading
    from exporter.store import Store

    now = [1_800_000_000.0]
    store = Store(lambda: now[0])
    config = parse_config("accounts: [{name: a, provider: fullenrich, api_key: k}]", env={})
    store.set_accounts(config.accounts)
    (endpoint,) = store.accounts["a"].endpoints
    for i in range(2000):
        now[0] += 60
        pools = {f"wallet-{i}": PoolValues(remaining=1.0), "steady": PoolValues(remaining=2.0)}
        store.record_success("a", endpoint, Reading(pools=pools), 0.1)
    history = store.accounts["a"].history
    assert sorted(history) == ["steady", "wallet-1999"]
    assert len(history["steady"]) > 1  # a pool still reported keeps its points
