"""A timing harness whose ratios hold still on a shared, noisy machine.

Timing two functions one after the other lets whatever the machine does in between land on one
side only. Here the sides are interleaved instead: a *round* times every function in a small warm
block (one untimed call, then ``block`` timed calls), the order rotating from round to round,
and a ratio is taken within each round, where both sides saw the same machine. Over many rounds
the median of those per-round ratios is reported with its spread, the interquartile range
(the middle half of the per-round ratios). A ratio whose spread contains 1.0 names no winner.

Both sides run with the same thread count: NumPy's BLAS through ``threadpoolctl`` and PyTorch
through ``torch.set_num_threads`` (:func:`threads`); :func:`blas_kernel` names the BLAS library
and the kernel it chose for this CPU.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

import numpy as np

BENCH_EXTRA = "python -m pip install -e '.[bench]'"


def median_time(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` calls after ``warmup`` calls (one
    function alone: for a comparison, use :func:`interleaved`)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def spread(values) -> dict:
    """Median and interquartile range of ``values``: ``{"median", "q1", "q3"}``."""
    q1, median, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3)}


def straddles_one(s: dict) -> bool:
    """True when a ratio's interquartile range contains 1.0: no side is faster."""
    return s["q1"] <= 1.0 <= s["q3"]


def fmt(s: dict, digits: int = 2) -> str:
    """``median [q1, q3]`` as text."""
    return f"{s['median']:.{digits}f} [{s['q1']:.{digits}f}, {s['q3']:.{digits}f}]"


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 30, block: int = 3,
                warmup: int = 1, warm_ms: float = 0.0) -> dict[str, np.ndarray]:
    """Seconds per call of every function in ``fns``, timed in alternating warm blocks.

    Every round runs each function untimed (its caches warm again after the others ran): once,
    and again until ``warm_ms`` milliseconds have passed. Then it runs ``block`` times under
    the clock; the order of the functions rotates from round to round, so none always runs
    first. Before the rounds every function runs ``warmup`` times.

    One untimed call is enough for a step of several milliseconds. A step of a fraction of a
    millisecond that has not run for a few milliseconds (another side ran in between) can stay
    several times slower for several calls: such steps need ``warm_ms`` of a few milliseconds,
    or each side pays for the one before it.

    Parameters
    ----------
    fns : dict
        ``{name: function of no arguments}``.
    rounds : int, optional
    block : int, optional
        Timed calls per function per round.
    warmup : int, optional
    warm_ms : float, optional
        Least time, in milliseconds, of the untimed calls before each block.

    Returns
    -------
    dict
        ``{name: ndarray, shape (rounds,)}``: seconds per call in each round.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times = {name: np.empty(rounds) for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = fns[name]
            start = time.perf_counter()
            fn()                                                   # warm this side's caches
            while time.perf_counter() - start < warm_ms / 1e3:
                fn()
            start = time.perf_counter()
            for _ in range(block):
                fn()
            times[name][r] = (time.perf_counter() - start) / block
    return times


def summary(times: dict[str, np.ndarray], ratios: dict[str, tuple[str, str]]) -> dict:
    """Median milliseconds of each side, and each named ratio ``a / b`` taken round by round.

    Parameters
    ----------
    times : dict
        From :func:`interleaved`.
    ratios : dict
        ``{ratio name: (numerator name, denominator name)}``.

    Returns
    -------
    dict
        ``{"<name>_ms": median ms, ..., "<ratio name>": spread of the per-round ratios, ...}``.
    """
    row = {f"{name}_ms": 1e3 * float(np.median(t)) for name, t in times.items()}
    for key, (a, b) in ratios.items():
        row[key] = spread(times[a] / times[b])
    return row


def have_threadpoolctl() -> bool:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def threads(n: int | None):
    """Run a block with ``n`` threads on both sides: NumPy's BLAS (``threadpoolctl``) and, when
    torch is loaded, ``torch.set_num_threads``. ``None`` leaves the threads as they are."""
    if n is None:
        yield
        return
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        if have_threadpoolctl():
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=n):
                yield
        else:
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def blas_kernel() -> str:
    """The BLAS NumPy uses, its version, the kernel it chose and its threads, as one line."""
    if not have_threadpoolctl():
        return f"unknown (threadpoolctl is not installed: {BENCH_EXTRA})"
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "none found"
    return "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')} "
                     f"kernel, {_threads_text(p.get('num_threads'))})" for p in pools)


def _threads_text(n) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


def thread_settings() -> dict:
    """The thread counts both sides run with right now."""
    out = {"blas": None, "torch": None}
    if have_threadpoolctl():
        from threadpoolctl import threadpool_info

        out["blas"] = max((p.get("num_threads") or 0 for p in threadpool_info()
                           if p.get("user_api") == "blas"), default=None)
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.get_num_threads()
    return out
