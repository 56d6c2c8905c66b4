"""Benchmarks: the cost of each way to remember, measured as ratios within one run.

Used by ``python -m minirnn bench`` and the scripts in ``benchmarks/``. Timings are medians of
repeated calls after warm-up; memory is the peak of NumPy allocations (``tracemalloc``) or the
bytes of the state or cache itself. Machines are shared and noisy, so results are read as
ratios between rows of one run, never as absolute targets in tests.
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
from ..attention import (
    attention_backward,
    attention_forward,
    init_kv_cache,
    init_mha_params,
    mha_step,
)
from ..msr import init_msr_params, msr_forward, msr_step
from ..retention import (
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_parallel,
    retention_parallel_backward,
)


def median_time(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (NumPy arrays included) while ``fn()`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def environment() -> dict:
    """Where the numbers come from: CPU, NumPy and its BLAS, thread counts."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpu": _cpu_name()}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                                "architecture")} for p in threadpool_info()]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
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

def decode_benchmark(contexts=(128, 256, 512, 1024, 2048, 4096, 8192), D=512, n_heads=8, batch=1,
                     steps=50, seed=0, dtype=np.float32) -> list[dict]:
    """Per-token time and state/cache bytes of RetNet's recurrent step vs a KV-cache step.

    Both steps are timed the way a language model runs them while generating: the inputs are
    checked once, then every timed step trusts them (``minirnn._checks.core.trusted``), so the
    numbers are the cost of the math of one token, not of re-validating the weights.
    """
    rng = np.random.default_rng(seed)
    d = D // n_heads
    msr_p = init_msr_params(D, n_heads, d, seed=seed, dtype=dtype)
    mha_p = init_mha_params(D, n_heads, seed=seed, dtype=dtype)
    return [_decode_row(rng, n, D, n_heads, batch, steps, dtype, msr_p, mha_p)
            for n in contexts]


def _decode_row(rng, n, D, n_heads, batch, steps, dtype, msr_p, mha_p) -> dict:
    prompt = rng.standard_normal((batch, n, D)).astype(dtype)
    cache = init_kv_cache(batch, D, n_heads, capacity=n + 8, dtype=dtype)
    for start in range(0, n, 512):                      # the prompt, 512 tokens at a time
        mha_step(prompt[:, start:start + 512], mha_p, n_heads, cache)
    _, state, _ = msr_forward(prompt, msr_p, n_heads, "chunkwise", chunk_size=512)
    token = rng.standard_normal((batch, D)).astype(dtype)

    def attention_step():
        cache.length = n                                # decode the same position every time
        mha_step(token, mha_p, n_heads, cache)

    attention_step()                                    # both checked once, as a model does:
    msr_step(token, msr_p, n_heads, state)              # then the timed steps trust the inputs
    with trusted():
        t_att = median_time(attention_step, steps)
        t_ret = median_time(lambda: msr_step(token, msr_p, n_heads, state), steps)
    return {"context": n, "batch": batch, "attention_ms": 1e3 * t_att,
            "retnet_ms": 1e3 * t_ret, "speedup": t_att / t_ret,
            "kv_cache_bytes": 2 * batch * n * D * np.dtype(dtype).itemsize,
            "state_bytes": int(state.S.nbytes + state.z.nbytes + state.s.nbytes)}


# --- 2. training cost against T ----------------------------------------------------------------

def training_benchmark(lengths=(256, 512, 1024, 2048, 4096, 8192), n_heads=2, d=64,
                       chunks=(64, 256), parallel_max=8192, seed=0,
                       dtype=np.float32) -> list[dict]:
    """Forward + backward time and peak memory of retention (parallel, chunkwise) and causal
    attention, one sequence of ``n_heads`` heads."""
    rng = np.random.default_rng(seed)
    gamma = 1 - 2.0 ** (-5 - np.arange(n_heads))
    rows = []
    for T in lengths:
        q, k, v, dout = (rng.standard_normal((1, n_heads, T, d)).astype(dtype) for _ in range(4))
        methods = (["parallel", "attention"] if T <= parallel_max else []) + \
            [f"chunkwise {C}" for C in chunks]
        for method in methods:
            fn = _training_step(method, q, k, v, dout, gamma)
            rows.append({"T": T, "method": method,
                         "seconds": median_time(fn, 3 if T >= 4096 else 5, 1),
                         "peak_bytes": peak_bytes(fn)})
    return rows


def _training_step(method, q, k, v, dout, gamma):
    """A function running forward and backward of one method on fixed inputs."""
    if method == "parallel":
        return lambda: retention_parallel_backward(dout, retention_parallel(q, k, v, gamma)[2])
    if method == "attention":
        return lambda: attention_backward(dout, attention_forward(q, k, v)[1])
    C = int(method.split()[1])
    return lambda: retention_chunkwise_backward(dout, retention_chunkwise(q, k, v, gamma, C)[2])


def write_json(path: str | Path, name: str, rows: list[dict]) -> None:
    """Save ``rows`` with the environment, so plots and tables can be made later."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%d"),
                                "environment": environment(), "rows": rows}, indent=1))

