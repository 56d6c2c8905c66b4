"""Multi-scale retention: the RetNet layer around the retention core (d even).

Step by step: projections and rotation (M.2), the retention core of any form, group norm (M.3)
and the swish gate (M.5); the backward through the gate, the group norm (M.4), the core and the
rotation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..layers import merge_heads
from ..msr import group_norm_backward, init_msr_params, msr_backward, msr_forward, rotate
from ..retention import retention_forms
from .printing import Step, difference, fmt, reference_form, tiny, whole

FORMS = ("recurrent", "parallel", "chunkwise")
HEADS = 2


def walk(T: int, d: int, seed: int, backward: bool, form: str = "recurrent",
         chunk_size: int = 2) -> Iterator[Step]:
    """A layer of two heads of width ``d`` (even: the rotation turns pairs of features)."""
    if d % 2:
        raise ValueError(f"msr rotates pairs of features: d must be even, got {d}")
    return _walk(T, d, seed, backward, form, chunk_size)


def _walk(T, d, seed, backward, form, chunk_size):
    rng = np.random.default_rng(seed)
    D = HEADS * d
    params = init_msr_params(D, HEADS, 2, seed=seed)
    x = tiny(rng, 1, T, D)
    yield Step(f"Setup: D = {D}, {HEADS} heads (gamma = 1 - 2^-5, 1 - 2^-6), dv = 2, T = {T}",
               [fmt("x", x[0])])
    y, state, cache = msr_forward(x, params, HEADS, form, chunk_size=chunk_size)
    core = cache.core
    yield Step("Q = rot(X Wq), K = rot(X Wk), V = X Wv: rotation by n theta_i at position n; "
               "the core scales q' = q / sqrt(d)   (M.2), (R.5)",
               [fmt("Q head 0", cache.q[0, 0]), fmt("K head 0", cache.k[0, 0]),
                fmt("V head 0", whole(core, "v")[0, 0])])
    yield Step(f"Retention per head ({form} form), then group norm per (token, head)   "
               f"(R.6)-(R.8), (M.3)",
               [fmt("retention output head 0", whole(core, "out")[0, 0]),
                fmt("normalised heads Y[token, head]", cache.output.y[0])])
    yield Step("Gate swish(X Wg) times the heads, then Wo   (M.5)",
               [fmt("swish gate", cache.output.gate[0]), fmt("MSR(X)", y[0])])
    other = reference_form(form)
    ref, _, ref_cache = msr_forward(x, params, HEADS, other, chunk_size=chunk_size)
    yield Step(f"Check: the {form} form against the {other} form",
               [difference(f"{form} vs {other}", y, ref),
                f"state after the sequence: position {state.position}"])
    if backward:
        yield from _backward(y, cache, ref_cache, other)


def _backward(y, cache, ref_cache, other):
    dy = np.ones_like(y)
    p, out = cache.params, cache.output
    dG = dy @ p["Wo"].T
    yield Step("Backward with dY = 1. dWo = G^T dY, dG = dY Wo^T   (M.5)", [fmt("dG", dG[0])])
    sig = 0.5 + 0.5 * np.tanh(0.5 * out.a)
    da = dG * out.y.reshape(dG.shape) * sig * (1.0 + out.a * (1.0 - sig))
    dx, grads, _ = msr_backward(dy, cache)
    yield Step("Gate: da = dG * Y * swish'(a), swish'(a) = s(a) (1 + a (1 - s(a))); "
               "d(heads) = dG * gate   (M.5)",
               [fmt("da", da[0]), difference("X^T da vs msr_backward's dWg",
                                              np.einsum("btd,bte->de", cache.x, da),
                                              grads["Wg"])])
    dheads, dw, _ = group_norm_backward((dG * out.gate).reshape(out.y.shape), out.norm)
    yield Step("Group norm backward per (token, head)   (M.4), (L.4)",
               [fmt("d(retention output)", dheads[0]), fmt("d gn_w", dw)])
    _, core_backward = retention_forms()[cache.form]
    dq, _, dv, _ = core_backward(dheads.transpose(0, 2, 1, 3), cache.core)
    yield Step(f"Retention backward ({cache.form} form), then rotate dQ, dK back by "
               f"-n theta_i   (R.10)-(R.12), (M.2)",
               [fmt("dQ head 0 (rotated back)", rotate(dq, cache.start, inverse=True)[0, 0]),
                fmt("dV head 0", dv[0, 0]),
                difference("X^T dV (heads merged) vs dWv",
                           np.einsum("btd,bte->de", cache.x, merge_heads(dv)), grads["Wv"])])
    ref, _, _ = msr_backward(dy, ref_cache)
    yield Step(f"dX = da Wg^T + dQ Wq^T + dK Wk^T + dV Wv^T; checked against the {other} form",
               [fmt("dX", dx[0]), difference(f"dX, {cache.form} vs {other}", dx, ref)])
