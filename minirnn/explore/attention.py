"""Softmax attention: every query at once, or one at a time over a growing KV cache.

Step by step: the causal scores and their softmax (A.1)-(A.5) all at once (parallel), or one
query at a time over a growing KV cache (recurrent); the backward (A.6)-(A.8) written out.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..attention import SoftmaxCache, attention_backward, attention_forward, softmax_backward
from ..states import KVCache
from .printing import Step, difference, flat, fmt, tiny

FORMS = ("parallel", "recurrent")


def walk(T: int, d: int, seed: int, backward: bool, form: str = "parallel",
         chunk_size: int = 2) -> Iterator[Step]:
    """Causal attention on one head; each form is checked against the other."""
    rng = np.random.default_rng(seed)
    q, k, v = (tiny(rng, 1, 1, T, d) for _ in range(3))
    yield Step("Setup: one head, T = " + str(T) + ", d = " + str(d),
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0])])
    out, cache = attention_forward(q, k, v, causal=True)
    if form == "parallel":
        yield from _parallel(q, k, out, cache)
        decoded, steps = _decode(q, k, v)
        yield Step("Check: against decoding one query at a time over a growing cache of keys",
                   [difference("full causal vs one query at a time", out, decoded)])
        if backward:
            yield from _parallel_backward(q, k, v, out, cache)
    else:
        decoded, steps = _decode(q, k, v)
        yield from _recurrent(steps, decoded)
        yield Step("Check: against full causal attention, every query at once (A.4)-(A.5)",
                   [difference("one query at a time vs full causal", decoded, out)])
        if backward:
            yield from _recurrent_backward(q, k, v, decoded, steps, cache)


def _decode(q, k, v):
    """Every query against the keys and values cached so far: ``(outputs, step caches)``."""
    kv = KVCache.empty(1, 1, q.shape[-1], capacity=1)
    outs, steps = [], []
    for n in range(q.shape[2]):
        kv.append(k[:, :, n:n + 1], v[:, :, n:n + 1])      # the cache grows by one token
        o, step = attention_forward(q[:, :, n:n + 1], kv.keys, kv.values)
        outs.append(o)
        steps.append(step)
    return np.concatenate(outs, axis=2), steps


def _parallel(q, k, out, cache):
    T = q.shape[2]
    E = (q[0, 0] @ k[0, 0].T) * cache.scale
    yield Step("Scores before the softmax: E = Q K^T / sqrt(d)   (A.3)",
               [fmt("E", E), "row n holds query n against every key, the future included"])
    masked = np.where(np.tril(np.ones((T, T), dtype=bool)), E, -np.inf)
    yield Step("Causal mask: keys m > n set to -inf, so they get weight exp(-inf) = 0   (A.4)",
               [fmt("E masked", masked)])
    yield Step("Softmax of every row: P = softmax(E masked)   (A.1), (A.5)",
               [fmt("P", cache.P[0, 0]), "each row sums to one: "
                + np.array2string(cache.P[0, 0].sum(-1), precision=3)])
    for n in range(T):
        yield Step(f"n = {n}: o[n] = sum_m P[n, m] v[m]   (A.5)",
                   [fmt("P[n]", cache.P[0, 0, n]), fmt("o[n]", out[0, 0, n])])


def _recurrent(steps, decoded):
    for n, step in enumerate(steps):
        keys = f"{n + 1} key" + "s" * (n > 0)
        yield Step(f"n = {n}: append k[n], v[n] to the KV cache ({keys} now); q[n] against "
                   f"every cached key, softmax, weighted sum   (A.3)-(A.5)",
                   [fmt("cached K", step.k[0, 0]),
                    fmt("scores q[n] K^T / sqrt(d)", (step.q[0, 0] @ step.k[0, 0].T)[0]
                        * step.scale),
                    fmt("weights P[n]", step.P[0, 0, 0]), fmt("o[n]", decoded[0, 0, n]),
                    "the cache holds every key and value: it grows with n"])


def _parallel_backward(q, k, v, out, cache):
    dout = np.ones_like(out)
    P = cache.P
    yield Step("Backward with dO = 1", [fmt("dO", dout[0, 0])])
    dv = np.swapaxes(P, -1, -2) @ dout
    yield Step("dV = P^T dO: value m collects the weight every query gave it   (A.6)",
               [fmt("dV", dv[0, 0])])
    dP = dout @ np.swapaxes(v, -1, -2)
    yield Step("dP = dO V^T   (A.6)", [fmt("dP", dP[0, 0])])
    dE = softmax_backward(dP, SoftmaxCache(y=P, axis=-1))       # the library's (A.2)
    yield Step("dE = P * (dP - rowsum(dP * P)): the softmax backward, row by row   (A.7)",
               [fmt("dE", dE[0, 0]), "masked entries have P = 0, so they get no gradient"])
    dq, dk = (dE @ k) * cache.scale, (np.swapaxes(dE, -1, -2) @ q) * cache.scale
    yield Step("dQ = dE K / sqrt(d), dK = dE^T Q / sqrt(d)   (A.8)",
               [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0])])
    ref = attention_backward(dout, cache)
    yield Step("Check: the steps above against attention_backward",
               [difference("dQ, dK, dV", flat(dq, dk, dv), flat(*ref))])


def _recurrent_backward(q, k, v, decoded, steps, cache):
    dout = np.ones_like(decoded)
    yield Step("Backward with dO = 1: every decoding step has its own backward; step n gives "
               "dq[n] and adds to dk[m], dv[m] of every cached m <= n", [fmt("dO", dout[0, 0])])
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for n in reversed(range(q.shape[2])):
        step = steps[n]
        dv_n = step.P[0, 0, 0][:, None] * dout[0, 0, n]          # P[n, m] dO[n]   (A.6)
        dq_n, dk_n, dv_lib = attention_backward(dout[:, :, n:n + 1], step)
        dq[:, :, n] = dq_n[:, :, 0]
        dk[:, :, :n + 1] += dk_n
        dv[:, :, :n + 1] += dv_lib
        yield Step(f"n = {n}: dv[m] += P[n, m] dO[n] for m <= {n}; dq[n], dk[m] through the "
                   f"softmax of step n   (A.6)-(A.8)",
                   [fmt("P[n, m] dO[n]", dv_n), fmt("dq[n]", dq[0, 0, n]),
                    fmt("running dK", dk[0, 0]), fmt("running dV", dv[0, 0]),
                    difference("dv[m] written out vs the library", dv_n,
                               dv_lib[0, 0])])
    ref = attention_backward(dout, cache)
    yield Step("Check: the sum over the decoding steps against the backward of full causal "
               "attention", [difference("dQ, dK, dV, decoding vs full causal",
                                        flat(dq, dk, dv), flat(*ref))])
