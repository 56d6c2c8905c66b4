"""The timing harness: interleaved rounds, per-round ratios with their spread, equal threads;
and the benchmarks page's verdicts (a spread that crosses a goal is not called a pass)."""

import numpy as np
import pytest

from minirnn.bench.timing import (
    blas_kernel,
    fmt,
    have_threadpoolctl,
    interleaved,
    spread,
    straddles_one,
    summary,
    threads,
)
from minirnn_docs.benchmarks import _verdict, agreement


def test_spread_is_the_median_and_the_quartiles():
    s = spread([1, 2, 3, 4, 5])
    assert s == {"median": 3.0, "q1": 2.0, "q3": 4.0}
    assert fmt(s) == "3.00 [2.00, 4.00]"
    assert straddles_one({"median": 0.9, "q1": 0.8, "q3": 1.1})
    assert not straddles_one({"median": 0.5, "q1": 0.4, "q3": 0.6})


def test_interleaved_rotates_the_order_and_times_every_round():
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in "abc"}
    times = interleaved(fns, rounds=3, block=2, warmup=0)
    assert set(times) == {"a", "b", "c"} and all(t.shape == (3,) for t in times.values())
    # each round: one warm call and two timed calls per side, the first side rotating
    firsts = [order[i * 9] for i in range(3)]
    assert firsts == ["a", "b", "c"]
    assert len(order) == 3 * 3 * 3


def test_a_ratio_is_taken_within_rounds(monkeypatch):
    # a fake clock: the machine gets 1x, 10x, 100x slower from round to round, but within a
    # round both sides see the same machine, so every per-round ratio is exactly 2
    clock = {"now": 0.0, "calls": 0}
    monkeypatch.setattr("minirnn.bench.timing.time.perf_counter", lambda: clock["now"])

    def work(cost):
        def fn():
            load = 10.0 ** (clock["calls"] // 4)          # 4 calls per round (2 sides x 2)
            clock["now"] += cost * load
            clock["calls"] += 1
        return fn

    times = interleaved({"slow": work(2.0), "fast": work(1.0)}, rounds=3, block=1, warmup=0)
    row = summary(times, {"ratio": ("slow", "fast")})
    assert row["ratio"] == {"median": 2.0, "q1": 2.0, "q3": 2.0}
    assert np.ptp(times["fast"]) > 10                     # while the times moved a hundredfold


def test_warm_ms_keeps_warming_each_block_until_the_time_has_passed(monkeypatch):
    # a fake clock where every call takes 1 ms: warm_ms = 3.5 means four untimed calls (the
    # first, then three more while less than 3.5 ms have passed) before each timed block
    clock = {"now": 0.0}
    monkeypatch.setattr("minirnn.bench.timing.time.perf_counter", lambda: clock["now"])
    calls = {"a": 0, "b": 0}

    def fn(name):
        def call():
            clock["now"] += 1e-3
            calls[name] += 1
        return call

    times = interleaved({"a": fn("a"), "b": fn("b")}, rounds=2, block=3, warmup=0, warm_ms=3.5)
    assert calls == {"a": 2 * (4 + 3), "b": 2 * (4 + 3)}
    assert all(np.allclose(t, 1e-3) for t in times.values())    # only the block is timed


@pytest.mark.skipif(not have_threadpoolctl(), reason="threadpoolctl is the [bench] extra")
def test_threads_sets_the_blas_threads_and_restores_them():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = blas_threads()
    with threads(1):
        assert blas_threads() == {1}
        assert "1 thread)" in blas_kernel()
    assert blas_threads() == before


def test_a_spread_that_crosses_the_goal_is_not_a_pass():
    assert _verdict({"median": 0.8, "q1": 0.7, "q3": 0.85}, 0.9, True) == "yes"
    assert _verdict({"median": 0.8, "q1": 0.7, "q3": 1.0}, 0.9, True).startswith("median only")
    assert _verdict({"median": 1.0, "q1": 0.8, "q3": 1.1}, 0.9, True) == "**no**"
    assert _verdict({"median": 12, "q1": 11, "q3": 13}, 10, False) == "yes"


def test_runs_agree_when_their_spreads_overlap(monkeypatch):
    def run(m, lo, hi):
        return {"delta rule": [{"T": 8, "method": "chunkwise 4",
                                "recurrent_over_this": {"median": m, "q1": lo, "q3": hi}}]}

    data = {"runs": [run(1.0, 0.9, 1.1), run(1.05, 1.0, 1.2), run(1.2, 1.08, 1.3)]}
    monkeypatch.setattr("minirnn_docs.benchmarks.load", lambda name: data)
    (row,), n = agreement("delta")
    assert n == 3 and row[2]                       # 1.08 <= 1.1: the three ranges overlap
    data["runs"][2] = run(1.5, 1.4, 1.6)
    (row,), _ = agreement("delta")
    assert not row[2]
    assert np.isclose(row[1][2]["median"], 1.5)



def test_growth_is_timed_interleaved_and_named_by_its_lengths():
    from minirnn.bench import training_growth_benchmark

    rows = training_growth_benchmark(short=16, long=256, d=4, chunks=(4, 8), rounds=3, block=1)
    assert [r["method"] for r in rows] == ["chunkwise 4", "chunkwise 8"]
    for r in rows:
        assert (r["short"], r["long"], r["linear"]) == (16, 256, 16)
        assert r["short_ms"] > 0 and r["long_ms"] > 0
        assert r["ratio"]["q1"] <= r["ratio"]["median"] <= r["ratio"]["q3"]
        assert r["ratio"]["median"] > 1                  # 16 times the tokens take longer

def test_the_torch_twins_compute_what_minirnn_computes():
    """The twins timed against minirnn run the same equations (float64, one output each)."""
    torch = pytest.importorskip("torch")
    from minirnn.bench.versus_torch import MinGRU, gated_retention_chunkwise
    from minirnn.gated import gated_retention_chunkwise as ours
    from minirnn.minrnn import mingru_forward

    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((2, 2, 3, 37, 4))
    v, g = rng.standard_normal((2, 3, 37, 5)), -rng.uniform(0, 2, (2, 3, 37))
    twin = gated_retention_chunkwise(*(torch.tensor(a) for a in (q, k, v, g)), 8).numpy()
    np.testing.assert_allclose(twin, ours(q, k, v, g, 8)[0], rtol=0, atol=1e-12)

    x = rng.standard_normal((2, 37, 4))
    p = {"Wz": rng.standard_normal((4, 5)), "bz": rng.standard_normal(5),
         "Wh": rng.standard_normal((4, 5)), "bh": rng.standard_normal(5)}
    cell = MinGRU(4, 5).double()
    with torch.no_grad():
        for layer, W, b in ((cell.z, "Wz", "bz"), (cell.h_bar, "Wh", "bh")):
            layer.weight.copy_(torch.tensor(p[W].T))
            layer.bias.copy_(torch.tensor(p[b]))
        twin = cell(torch.tensor(x))[0].numpy()
    np.testing.assert_allclose(twin, mingru_forward(x, np.zeros((2, 5)), p)[0], rtol=0,
                               atol=1e-12)
