"""Where a wrong answer first goes wrong, said in the student's terms.

Each function here builds a ``locate(student, correct, case) -> str`` for one kind of exercise:
the first time step of a recurrence (walking backward for a backward pass), the first chunk and
whether its inner or cross part is wrong, the first row and head, or the first decoded position.
``student`` and ``correct`` map output names to the arrays of the grader's first case.
"""

from __future__ import annotations

import numpy as np


def wrong_mask(got, want) -> np.ndarray:
    """Elementwise: does ``got`` differ from ``want`` (NaN counts as different)?"""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    with np.errstate(invalid="ignore"):
        close = np.abs(got - want) <= 1e-6 * scale + 1e-12
    return ~close


def _span(first: int, last: int, word: str) -> str:
    if first > last:
        return ""
    return f"; {word} {first} is right" if first == last else f"; {word}s {first}-{last} are right"


def _weight_rows(key, got, want):
    """Where a weight's gradient (a 2-D ``grads[...]``) is wrong, in rows and columns."""
    bad = wrong_mask(got, want)
    rows, cols = np.flatnonzero(bad.any(axis=1)), np.flatnonzero(bad.any(axis=0))
    if bad.all() or not bad.any():
        return ""
    if len(rows) < bad.shape[0]:
        return f"{key}: rows {', '.join(map(str, rows[:6]))} of {bad.shape[0]} are wrong, the " \
               f"others right"
    return f"{key}: columns {', '.join(map(str, cols[:6]))} of {bad.shape[1]} are wrong, the " \
           f"others right"


def by_rows(*names):
    """The first row (over every axis but the last) that differs, e.g. batch 0, head 1, row 2;
    nothing when every row is wrong (that says nothing about where). A weight's gradient is
    described by its rows and columns."""
    def locate(student, correct, case):
        for key, want in correct.items():
            got = student[key]
            if np.shape(got) != np.shape(want):
                continue
            if key.startswith("grads[") and np.ndim(want) == 2:
                where = _weight_rows(key, got, want)
                if where:
                    return where
                continue
            if np.ndim(want) - 1 != len(names):
                continue
            rows = np.any(wrong_mask(got, want), axis=-1)
            if rows.any() and not rows.all():
                where = np.argwhere(rows)[0]
                at = ", ".join(f"{n} {i}" for n, i in zip(names, where))
                return f"first wrong at {at} of {key} ({int(rows.sum())} of {rows.size} " \
                       f"rows wrong)"
        return ""
    return locate


def by_time(axis: int, key: str, backward: bool = False, name: str = "t"):
    """The first time step of ``key`` that differs (walking backward: the last one)."""
    def locate(student, correct, case):
        got, want = student[key], correct[key]
        if np.shape(got) != np.shape(want):
            return ""
        others = tuple(i for i in range(np.ndim(want)) if i != axis)
        wrong = np.flatnonzero(np.any(wrong_mask(got, want), axis=others))
        T = np.shape(want)[axis]
        if not wrong.size or wrong.size == T:
            return ""                  # nothing wrong there, or every step: says nothing
        if backward:
            t = int(wrong.max())
            return (f"first wrong at time step {name} = {t} (of {T}, counted from 0), walking "
                    f"backward from {name} = {T - 1}: {key} differs there"
                    + _span(t + 1, T - 1, "step"))
        t = int(wrong.min())
        return f"first wrong at time step {name} = {t} (of {T}, counted from 0): {key} " \
               f"differs there" + _span(0, t - 1, "step")
    return locate


def by_positions(prompt: int):
    """The first output position of a decode (a prompt, then one token at a time)."""
    def locate(student, correct, case):
        key = next(iter(correct))
        got, want = student[key], correct[key]
        if np.shape(got) != np.shape(want):
            return ""
        wrong = np.flatnonzero(np.any(wrong_mask(got, want), axis=(0, 2)))
        if not wrong.size or wrong.size == np.shape(want)[1]:
            return ""
        t = int(wrong.min())
        where = (f"inside the {prompt}-token prompt" if t < prompt else
                 f"the {'first' if t == prompt else f'{t - prompt + 1}th'} token decoded one "
                 f"at a time after the {prompt}-token prompt")
        return f"first wrong at position {t} ({where})" + _span(0, t - 1, "position")
    return locate


def by_chunks():
    """The first wrong chunk of chunkwise retention, and whether its inner or cross part is."""
    def locate(student, correct, case):
        got, want, C = student["out"], correct["out"], case["chunk_size"]
        if np.shape(got) != np.shape(want):
            return ""
        wrong = np.flatnonzero(np.any(wrong_mask(got, want), axis=(0, 1, 3)))
        T = np.shape(want)[2]
        if not wrong.size:
            return "every output row is right; the final state (the update after the last " \
                   "chunk, R.4) is not"
        i = int(wrong.min()) // C
        rows = f"rows {i * C}-{min(i * C + C, T) - 1}"
        if i == 0:
            return f"first wrong in chunk 0 ({rows}), which has no state before it: the " \
                   f"inner-chunk part is wrong"
        return f"first wrong in chunk {i} ({rows}); chunk 0 (no state before it) is right, " \
               f"so the inner-chunk part works and the cross-chunk part, or the state " \
               f"carried into chunk {i}, is wrong"
    return locate
