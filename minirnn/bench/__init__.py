"""Benchmarks: the cost of each way to remember, measured as ratios that hold still.

Used by ``python -m minirnn bench`` and the scripts in ``benchmarks/``. Every comparison runs its
sides interleaved in small warm blocks (:mod:`minirnn.bench.timing`) and reports the median of
the per-round ratios with their interquartile range; memory is the peak of NumPy allocations
(``tracemalloc``) or the bytes of the state or cache itself. Machines are shared and noisy, so
results are read as ratios within one run, never as absolute targets in tests.
"""

from __future__ import annotations

import json
import platform
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._checks.core import trusted
from ..attention import init_kv_cache, init_mha_params, mha_step
from ..delta import (
    delta_rule_chunkwise,
    delta_rule_chunkwise_backward,
    delta_rule_parallel,
    delta_rule_parallel_backward,
    delta_rule_recurrent,
    delta_rule_recurrent_backward,
)
from ..deltanet import deltanet_forward, deltanet_step, init_deltanet_params
from ..gated_msr import gated_msr_forward, gated_msr_step, init_gated_msr_params
from ..msr import init_msr_params, msr_forward, msr_step
from ..retention import (
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_parallel,
    retention_parallel_backward,
)
from .timing import (  # noqa: F401  (median_time: for the tour and the docs)
    blas_kernel,
    interleaved,
    median_time,
    spread,
    summary,
    thread_settings,
    threads,
)


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (NumPy arrays included) while ``fn()`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def environment() -> dict:
    """Where the numbers come from: CPU, NumPy, its BLAS kernel, thread counts."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpu": _cpu_name(), "blas": blas_kernel(),
            "threads": thread_settings()}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- 1. decoding --------------------------------------------------------------------------------

# A one-token step takes a fraction of a millisecond. Right after another step has run for a
# while (attention's step reads its whole KV cache: 32 MiB at 8192 tokens and D = 512), a step
# stays several times slower for about five calls (decode_recovery_benchmark measures it; a few
# milliseconds of other work, or a pause, do the same on this project's machines), so one
# untimed call does not warm it. Every side of a decode benchmark warms for this long before its
# timed block: each is timed as it runs in a generation loop, warm.
DECODE_WARM_MS = 5.0


def _decode_layers(D, n_heads, seed, dtype):
    """The four layers that decode: parameters of attention, retention, gated retention and
    DeltaNet at width ``D`` (value head width ``D / n_heads``)."""
    dv = D // n_heads
    return {"attention": init_mha_params(D, n_heads, seed=seed, dtype=dtype),
            "retention": init_msr_params(D, n_heads, dv, seed=seed, dtype=dtype),
            "gated": init_gated_msr_params(D, n_heads, dv, seed=seed, dtype=dtype),
            "delta": init_deltanet_params(D, n_heads, dv, seed=seed, dtype=dtype)}


def decode_benchmark(contexts=(128, 256, 512, 1024, 2048, 4096, 8192), D=512, n_heads=8, batch=1,
                     rounds=30, block=3, seed=0, dtype=np.float32,
                     warm_ms=DECODE_WARM_MS) -> list[dict]:
    """Per-token time of a KV-cache attention step against retention's and DeltaNet's
    recurrent steps, interleaved, and the bytes each carries, against the context.

    Every step is timed the way a language model runs it while generating: the inputs are
    checked once, then every timed step trusts them (``minirnn._checks.core.trusted``), so the
    numbers are the cost of the math of one token, not of re-validating the weights. Speed-ups
    are medians of per-round ratios with their interquartile range. Each side warms for
    ``warm_ms`` before its block (see ``DECODE_WARM_MS``).
    """
    rng = np.random.default_rng(seed)
    p = _decode_layers(D, n_heads, seed, dtype)
    return [_decode_row(rng, n, D, n_heads, batch, rounds, block, dtype, p, warm_ms)
            for n in contexts]


def _prompted(rng, n, D, n_heads, batch, dtype, p, prompt_len=512):
    """The states after ``n`` tokens: a real prompt of at most ``prompt_len`` tokens, then (the
    cost of one step does not depend on what the earlier tokens were) the KV cache filled up to
    ``n`` positions with random keys and values, and retention's state moved on to position
    ``n`` (its size never changes), as [`decode_time`][minirnn.tour.decode_time] does."""
    prompt = rng.standard_normal((batch, min(n, prompt_len), D)).astype(dtype)
    cache = init_kv_cache(batch, D, n_heads, capacity=n + 8, dtype=dtype)
    mha_step(prompt, p["attention"], n_heads, cache)
    shape = (batch, n_heads, n - cache.length, D // n_heads)
    cache.append(rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype))
    states = {"attention": cache}
    for name, forward, chunk in (("retention", msr_forward, 512), ("gated", gated_msr_forward, 512),
                                 ("delta", deltanet_forward, 64)):
        _, state, _ = forward(prompt, p[name], n_heads, "chunkwise", chunk_size=chunk)
        states[name] = state._replace(position=n)
    return states


def _attention_step(token, params, n_heads, cache, n):
    """Attention's one-token step at position ``n``, again and again: the cache is cut back to
    ``n`` entries before every call, so each call decodes the same position."""
    def step():
        cache.length = n
        mha_step(token, params, n_heads, cache)
    return step


def _recurrent_step(step, token, params, n_heads, state):
    """A recurrent layer's one-token step as a decoding loop runs it: each call starts from the
    state the previous call returned, one position further on (the state's size, and so the
    cost of a step, does not grow; the rotation of a new position is read from a kept table)."""
    def run():
        nonlocal state
        _, state = step(token, params, n_heads, state)
    return run


def _decode_row(rng, n, D, n_heads, batch, rounds, block, dtype, p, warm_ms) -> dict:
    states = _prompted(rng, n, D, n_heads, batch, dtype, p)
    cache, ret_state, delta_state = states["attention"], states["retention"], states["delta"]
    token = rng.standard_normal((batch, D)).astype(dtype)

    steps = {"attention": _attention_step(token, p["attention"], n_heads, cache, n),
             "retnet": _recurrent_step(msr_step, token, p["retention"], n_heads, ret_state),
             "delta": _recurrent_step(deltanet_step, token, p["delta"], n_heads, delta_state)}
    for step in steps.values():                         # each checked once, as a model does:
        step()
    with trusted():                                     # then the timed steps trust the inputs
        times = interleaved(steps, rounds, block, warm_ms=warm_ms)
    row = {"context": n, "batch": batch}
    row.update(summary(times, {"speedup": ("attention", "retnet"),
                               "delta_speedup": ("attention", "delta")}))
    itemsize = np.dtype(dtype).itemsize
    row.update({"kv_cache_bytes": 2 * batch * n * D * itemsize,
                "state_bytes": int(ret_state.S.nbytes + ret_state.z.nbytes + ret_state.s.nbytes),
                "delta_state_bytes": int(delta_state.S.nbytes)})
    return row


def decode_flat_benchmark(short=128, long=8192, D=512, n_heads=8, batch=1, rounds=30, block=3,
                          seed=0, dtype=np.float32, warm_ms=DECODE_WARM_MS) -> list[dict]:
    """Is a recurrent step's time flat in the context? Each step after ``short`` tokens and
    after ``long`` tokens, timed interleaved in the same rounds (comparing rows of
    [`decode_benchmark`][minirnn.bench.decode_benchmark], timed minutes apart, would compare the
    machine's load as well). The ratio long / short is the median of per-round ratios with its
    interquartile range; attention's, whose cache grows, is there for contrast. Each step's
    pair runs on its own: timed in the same rounds as attention at the long context, a step
    that follows attention in the rotation ran several times slower for several calls, its
    warm call included, which would make the ratio say more about the order than about the
    step.
    """
    rng = np.random.default_rng(seed)
    p = _decode_layers(D, n_heads, seed, dtype)
    x = rng.standard_normal((batch, D)).astype(dtype)
    at = {n: _prompted(rng, n, D, n_heads, batch, dtype, p) for n in (short, long)}

    def step(name, n):
        """The one-token step of layer ``name`` after ``n`` tokens."""
        if name == "attention":
            return _attention_step(x, p["attention"], n_heads, at[n]["attention"], n)
        forward = {"retnet": msr_step, "gated": gated_msr_step, "delta": deltanet_step}[name]
        layer = "retention" if name == "retnet" else name
        return _recurrent_step(forward, x, p[layer], n_heads, at[n][layer])

    rows = []
    for name in ("attention", "retnet", "gated", "delta"):   # one pair at a time (see above)
        fns = {"short": step(name, short), "long": step(name, long)}
        for fn in fns.values():
            fn()                                        # checked once
        with trusted():
            times = interleaved(fns, rounds, block, warm_ms=warm_ms)
        row = {"step": name, "batch": batch, "short": short, "long": long}
        row.update(summary(times, {"ratio": ("long", "short")}))
        rows.append(row)
    return rows


def decode_recovery_benchmark(context=8192, calls=8, D=512, n_heads=8, batch=1, rounds=15,
                              seed=0, dtype=np.float32) -> list[dict]:
    """How long does a RetNet step stay slow after attention's step? Why the decode benchmarks
    warm each side for ``DECODE_WARM_MS``.

    Every round runs attention's one-token step at ``context`` tokens three times (it reads its
    whole KV cache each time), then RetNet's step ``calls`` times, each call timed on its own.
    Row ``i`` is the ``i``-th call after attention: its median over the rounds with the
    interquartile range, in milliseconds, and the bytes attention's step read (the KV cache).
    """
    rng = np.random.default_rng(seed)
    p = _decode_layers(D, n_heads, seed, dtype)
    x = rng.standard_normal((batch, D)).astype(dtype)
    states = _prompted(rng, context, D, n_heads, batch, dtype, p)
    attention = _attention_step(x, p["attention"], n_heads, states["attention"], context)

    retnet = _recurrent_step(msr_step, x, p["retention"], n_heads, states["retention"])
    attention(), retnet()                               # checked once
    ms = np.empty((rounds, calls))
    with trusted():
        for r in range(rounds):
            for _ in range(3):
                attention()
            for i in range(calls):
                start = time.perf_counter()
                retnet()
                ms[r, i] = 1e3 * (time.perf_counter() - start)
    kv_bytes = 2 * batch * context * D * np.dtype(dtype).itemsize
    return [{"call": i + 1, "context": context, "batch": batch, "kv_cache_bytes": kv_bytes,
             "ms": spread(ms[:, i])} for i in range(calls)]


def decode_floor_benchmark(context=128, D=512, n_heads=8, batch=1, rounds=30, block=3, seed=0,
                           dtype=np.float32, warm_ms=DECODE_WARM_MS) -> list[dict]:
    """Every one-token step against its floor: the time of its own projections.

    A step cannot avoid its GEMVs: the new token times every projection matrix (queries, keys,
    values, the output gate, the gates and writing strengths of the layer) and the heads' output
    times ``Wo``. Each step and its projections alone are timed interleaved; the ratio
    step / projections (median and interquartile range of per-round ratios) says how far the
    step is from what NumPy can do. Attention decodes at ``context`` tokens.
    """
    rng = np.random.default_rng(seed)
    p = _decode_layers(D, n_heads, seed, dtype)
    x = rng.standard_normal((batch, D)).astype(dtype)
    states = _prompted(rng, context, D, n_heads, batch, dtype, p)
    cache, ret_state = states["attention"], states["retention"]
    gated_state, delta_state = states["gated"], states["delta"]
    heads_out = rng.standard_normal((batch, D)).astype(dtype)   # (B, h*dv), the input of Wo

    def projections(names, params):
        mats = [params[k] for k in names]
        Wo = params["Wo"]
        return lambda: ([x @ W for W in mats], heads_out @ Wo)

    sides = {
        "attention": (_attention_step(x, p["attention"], n_heads, cache, context),
                      projections(("Wq", "Wk", "Wv"), p["attention"])),
        "retnet": (_recurrent_step(msr_step, x, p["retention"], n_heads, ret_state),
                   projections(("Wq", "Wk", "Wv", "Wg"), p["retention"])),
        "gated": (_recurrent_step(gated_msr_step, x, p["gated"], n_heads, gated_state),
                  projections(("Wq", "Wk", "Wv", "Wg", "Wa"), p["gated"])),
        "delta": (_recurrent_step(deltanet_step, x, p["delta"], n_heads, delta_state),
                  projections(("Wq", "Wk", "Wv", "Wg", "Wb"), p["delta"])),
    }
    fns = {}
    for name, (step, floor) in sides.items():
        step()                                          # checked once
        fns[name], fns[f"{name} projections"] = step, floor
    with trusted():
        times = interleaved(fns, rounds, block, warm_ms=warm_ms)
    rows = []
    for name in sides:
        row = {"step": name, "batch": batch, "context": context if name == "attention" else None}
        row.update(summary({"step": times[name], "projections": times[f"{name} projections"]},
                           {"ratio": ("step", "projections")}))
        rows.append(row)
    return rows


# --- 2. training cost against T ----------------------------------------------------------------

def training_benchmark(lengths=(512, 1024, 2048, 4096, 8192), n_heads=2, d=64,
                       chunks=(64, 256), parallel_max=4096, seed=0,
                       dtype=np.float32) -> list[dict]:
    """Forward + backward time and peak memory of retention (parallel, chunkwise) and causal
    attention, one sequence of ``n_heads`` heads; the methods of one length are interleaved, and
    each time is the median over rounds with its interquartile range."""
    rng = np.random.default_rng(seed)
    gamma = 1 - 2.0 ** (-5 - np.arange(n_heads))
    rows = []
    for T in lengths:
        q, k, v, dout = (rng.standard_normal((1, n_heads, T, d)).astype(dtype) for _ in range(4))
        methods = (["parallel", "attention"] if T <= parallel_max else []) + \
            [f"chunkwise {C}" for C in chunks]
        fns = {m: _training_step(m, q, k, v, dout, gamma) for m in methods}
        rows += _length_rows(T, fns, T)
    return rows


def _length_rows(T, fns, size):
    """Time the methods of one length interleaved (fewer rounds for long sequences)."""
    rounds, block = (5, 1) if size >= 2048 else (9, 1) if size >= 1024 else (15, 2)
    times = interleaved(fns, rounds, block, warmup=1)
    return [{"T": T, "method": m, "ms": spread(1e3 * times[m]), "peak_bytes": peak_bytes(fn)}
            for m, fn in fns.items()]


def training_growth_benchmark(short=1024, long=8192, n_heads=2, d=64, chunks=(64, 256),
                              rounds=11, block=2, seed=0, dtype=np.float32) -> list[dict]:
    """Does the chunkwise form's time grow linearly in the length? Forward + backward of one
    sequence of ``short`` and of ``long`` tokens, timed interleaved in the same rounds, one
    chunk size at a time.

    The rows of [`training_benchmark`][minirnn.bench.training_benchmark] at two lengths were
    timed a minute apart, so their ratio mixed in whatever the machine did in between (three
    runs of it gave 11.9, 10.7 and 9.7 for the same code). Here the ratio ``long / short`` is
    the median of per-round ratios with its interquartile range; linear growth is
    ``long / short`` itself (the ``linear`` column).
    """
    rng = np.random.default_rng(seed)
    gamma = 1 - 2.0 ** (-5 - np.arange(n_heads))
    inputs = {T: [rng.standard_normal((1, n_heads, T, d)).astype(dtype) for _ in range(4)]
              for T in (short, long)}
    rows = []
    for C in chunks:
        method = f"chunkwise {C}"
        fns = {"short": _training_step(method, *inputs[short], gamma),
               "long": _training_step(method, *inputs[long], gamma)}
        times = interleaved(fns, rounds, block)
        row = {"method": method, "short": short, "long": long, "linear": long // short}
        row.update(summary(times, {"ratio": ("long", "short")}))
        rows.append(row)
    return rows


def _training_step(method, q, k, v, dout, gamma):
    """A function running forward and backward of one method on fixed inputs."""
    from ..attention import attention_backward, attention_forward

    if method == "parallel":
        return lambda: retention_parallel_backward(dout, retention_parallel(q, k, v, gamma)[2])
    if method == "attention":
        return lambda: attention_backward(dout, attention_forward(q, k, v)[1])
    C = int(method.split()[1])
    return lambda: retention_chunkwise_backward(dout, retention_chunkwise(q, k, v, gamma, C)[2])


def delta_training_benchmark(lengths=(512, 1024, 2048, 4096), n_heads=4, d=32, chunk=32,
                             parallel_max=1024, seed=0, dtype=np.float32) -> list[dict]:
    """Forward + backward time and peak memory of the delta rule's three forms against T
    (batch 1, ``n_heads`` heads, ``d = dv``, unit keys and queries, ``beta`` in (0, 1)), and
    how many times faster the chunkwise form is than the recurrent one (per-round ratios)."""
    rng = np.random.default_rng(seed)
    rows = []
    for T in lengths:
        q, k = (x / np.linalg.norm(x, axis=-1, keepdims=True)
                for x in (rng.standard_normal((1, n_heads, T, d)) for _ in range(2)))
        v, dout = (rng.standard_normal((1, n_heads, T, d)) for _ in range(2))
        beta = 1.0 / (1.0 + np.exp(-rng.standard_normal((1, n_heads, T))))
        fns = _delta_steps(*(a.astype(dtype) for a in (q, k, v, dout, beta)), chunk,
                           T <= parallel_max)
        rounds, block = (5, 1) if T >= 1024 else (9, 1)
        times = interleaved(fns, rounds, block, warmup=1)
        vs = spread(times["recurrent"] / times[f"chunkwise {chunk}"])
        for m, fn in fns.items():
            rows.append({"T": T, "method": m, "ms": spread(1e3 * times[m]),
                         "peak_bytes": peak_bytes(fn),
                         "recurrent_over_this": spread(times["recurrent"] / times[m])})
        rows[-len(fns)]["chunkwise_speedup"] = vs
    return rows


def _delta_steps(q, k, v, dout, beta, chunk, parallel):
    """Forward + backward of each form of the delta rule on fixed inputs."""
    fns = {"recurrent": lambda: delta_rule_recurrent_backward(
               dout, delta_rule_recurrent(q, k, v, beta)[2]),
           f"chunkwise {chunk}": lambda: delta_rule_chunkwise_backward(
               dout, delta_rule_chunkwise(q, k, v, beta, chunk)[2])}
    if parallel:
        fns["parallel"] = lambda: delta_rule_parallel_backward(
            dout, delta_rule_parallel(q, k, v, beta)[2])
    return fns


# --- runs and files ----------------------------------------------------------------------------

def repeat_runs(fn: Callable[[], dict], runs: int = 1, n_threads: int | None = None) -> list:
    """``runs`` consecutive runs of a benchmark, each ``{table: rows}``, with ``n_threads`` threads
    on NumPy's BLAS (and on torch, when loaded)."""
    with threads(n_threads):
        return [fn() for _ in range(runs)]


def write_json(path: str | Path, name: str, runs: list[dict], n_threads: int | None = None) -> None:
    """Save the tables of every run with the environment (read with ``n_threads`` threads, as
    the runs were), so the docs can draw them later."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with threads(n_threads):
        env = environment()
    path.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                         time.gmtime()),
                                "environment": env, "threads": n_threads, "runs": runs},
                               indent=1))
