"""Checks for [`minirnn.memory_probe`][minirnn.memory_probe]: one function per public
function, same name."""

from __future__ import annotations

import numpy as np

from .core import check_int

VARY = ("n_pairs", "gap", "rounds", "d")


def write_pairs(rng, n_pairs, gap, rounds, d, n_candidates):
    func = "write_pairs"
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{func}: rng must be a numpy Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return (check_int(func, "n_pairs", n_pairs, 1), check_int(func, "gap", gap, 0),
            check_int(func, "rounds", rounds, 0), check_int(func, "d", d, 1),
            check_int(func, "n_candidates", n_candidates, 1))


def _memory(func, memory, known):
    if not isinstance(memory, str) or memory not in known:
        raise ValueError(f"{func}: memory must be one of {known}, got {memory!r}")


def read_memory(memory, known, stream, gamma, sharpness):
    func = "read_memory"
    _memory(func, memory, known)
    if type(stream).__name__ != "PairStream":
        raise TypeError(f"{func}: stream must be the PairStream write_pairs returns, "
                        f"got {type(stream).__name__}")
    for name, value, low in (("gamma", gamma, 0.0), ("sharpness", sharpness, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
                or not low < value < np.inf or (name == "gamma" and value > 1):
            want = "in (0, 1]" if name == "gamma" else "a finite number > 0"
            raise ValueError(f"{func}: {name} must be {want}, got {value!r}")
    return memory, float(gamma)


def recall_accuracy(memory, known, trials, seed):
    func = "recall_accuracy"
    _memory(func, memory, known)
    return check_int(func, "trials", trials, 1), check_int(func, "seed", seed, 0)


def recall_table(vary, settings, memories, known, fixed):
    func = "recall_table"
    if vary not in VARY:
        raise ValueError(f"{func}: vary must be one of {VARY}, got {vary!r}")
    if vary in fixed:
        raise ValueError(f"{func}: {vary} is varied, so it cannot also be fixed")
    if isinstance(settings, (str, bytes)) or not hasattr(settings, "__len__") or not settings:
        raise ValueError(f"{func}: settings must be a non-empty list of values of {vary}, "
                         f"got {settings!r}")
    memories = [memories] if isinstance(memories, str) else list(memories)
    unknown = [m for m in memories if m not in known]
    if unknown or not memories:
        raise ValueError(f"{func}: memories must be some of {known}, got {unknown or '[]'}")
    return vary, list(settings), memories
