"""The delta rule: a memory that reads before it writes, and corrects what it holds.

Step by step: gated DeltaNet's three forms (DR.1), (DR.4), (DR.6)-(DR.7), forward and backward
(DR.8)-(DR.10), on unit keys (the layer normalises them) with readable gates and strengths.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..delta import delta_rule_forms
from .printing import Step, difference, flat, fmt, reference_form, tiny

FORMS = ("recurrent", "parallel", "chunkwise")


def _fmt(name: str, a) -> str:
    """The explorer's ``fmt``, with float round-off below 1e-12 shown as 0: the unit keys hold
    ``1/sqrt(d)``, so products that are exactly 0 on paper come out as about 1e-17."""
    a = np.asarray(a, dtype=np.float64)
    return fmt(name, np.where(np.abs(a) < 1e-12, 0.0, a))


def walk(T: int, d: int, seed: int, backward: bool, form: str = "recurrent",
         chunk_size: int = 2) -> Iterator[Step]:
    """One head, unit keys, gates 1 or 1/2, strengths 1 or 1/2; checked against another form."""
    rng = np.random.default_rng(seed)
    q = tiny(rng, 1, 1, T, d)
    keys = rng.choice([-1.0, 1.0], size=(-(-T // 2), d)) / np.sqrt(d)   # unit, as the layer's
    k = keys[np.arange(T) % len(keys)][None, None]                   # the second half repeats
    v = tiny(rng, 1, 1, T, 2)
    alpha = rng.choice([1.0, 0.5], size=(1, 1, T), p=[0.75, 0.25])   # readable gates
    beta = rng.choice([1.0, 0.5], size=(1, 1, T))                    # writing strengths
    log_decay = np.log(alpha)
    yield Step(f"Setup: one head, T = {T}, d = {d}, dv = 2, scale = 1/sqrt(d). Unit keys "
               f"(the second half repeats the first: those keys get re-assigned), a gate "
               f"alpha_t = exp(g_t) and a writing strength beta_t per token   (DR.1)",
               [_fmt("Q", q[0, 0]), _fmt("K", k[0, 0]), _fmt("V", v[0, 0]),
                _fmt("alpha", alpha[0, 0]), _fmt("beta", beta[0, 0])])
    forms = delta_rule_forms(chunk_size)
    out, state, cache = forms[form][0](q, k, v, beta, log_decay)
    yield from _FORWARD[form](out, state, cache, alpha)
    other = reference_form(form)
    ref, ref_state, ref_cache = forms[other][0](q, k, v, beta, log_decay)
    yield Step(f"Check: the {form} form against the {other} form",
               [difference(f"outputs, {form} vs {other}", out, ref),
                difference(f"final state, {form} vs {other}", state.S, ref_state.S)])
    if backward:
        yield from _backward(forms, form, out, cache, other, ref_cache)


def _recurrent(out, state, cache, alpha):
    c = cache
    for t in range(out.shape[2]):
        S_prev, S_t, k_t = c.S[0, 0, t], c.S[0, 0, t + 1], c.k[0, 0, t]
        read = alpha[0, 0, t] * (k_t @ S_prev)
        yield Step(f"t = {t}: read what the decayed memory returns for k_t, write beta_t "
                   f"times the difference: u_t = beta_t (v_t - alpha_t k_t S_(t-1)), "
                   f"S_t = alpha_t S_(t-1) + k_t^T u_t, o_t = scale q_t S_t   (DR.1)",
                   [f"alpha_t = {alpha[0, 0, t]:g}   beta_t = {c.beta[0, 0, t]:g}",
                    _fmt("read = alpha_t k_t S_(t-1)", read), _fmt("v_t", c.v[0, 0, t]),
                    _fmt("u_t", c.u[0, 0, t]), _fmt("S_t", S_t),
                    _fmt("k_t S_t: what the memory now returns for k_t", k_t @ S_t),
                    _fmt("o_t", out[0, 0, t])])


def _parallel(out, state, cache, alpha):
    c = cache
    yield Step("The segment decay Gamma^g[n, m] = exp(b_n - b_m) for m <= n (b = cumsum(g)), "
               "and the unit lower triangular M = I + tril(diag(beta) (K K^T * Gamma^g), -1): "
               "row t says how much the earlier corrections already wrote into k_t   (DR.4)",
               [_fmt("Gamma^g", c.Gamma[0, 0]), _fmt("M", c.M[0, 0])])
    yield Step("Solve M U = diag(beta) V by forward substitution (row t needs only rows "
               "before it; never an inverse): U holds every token's correction u_t   (DR.4)",
               [_fmt("diag(beta) V", c.beta[0, 0][:, None] * c.v[0, 0]), _fmt("U", c.U[0, 0]),
                difference("M U vs diag(beta) V", c.M[0, 0] @ c.U[0, 0],
                           c.beta[0, 0][:, None] * c.v[0, 0])])
    yield Step("Outputs as in gated retention with the corrections in place of the values: "
               "O = scale (Q K^T * Gamma^g) U; the state S_T = K^T diag(zeta) U   (DR.4)",
               [_fmt("R = tril(Q K^T) * Gamma^g", c.R[0, 0]), _fmt("O", out[0, 0]),
                _fmt("S_T", state.S[0, 0])])


def _chunkwise(out, state, cache, alpha):
    handed_on = [*(chunk.state for chunk in cache.chunks[1:]), state]
    for i, ((start, stop), f, c) in enumerate(zip(cache.bounds, cache.transforms,
                                                  cache.chunks)):
        yield Step(f"chunk {i}: rows {start}..{stop - 1}. From the chunk's own tokens, the UT "
                   f"transform T_c = M^-1 diag(beta), W = T_c diag(xi) K and U = T_c V "
                   f"(what the chunk would write into an empty memory)   (DR.6)",
                   [_fmt("T_c", f.T_c[0, 0]), _fmt("W", f.W[0, 0]), _fmt("U", f.U[0, 0])])
        yield Step(f"chunk {i}: correct the values by what the carried memory already returns, "
                   f"U' = U - W S_prev; then the chunk's outputs and the state it hands on "
                   f"(xi_(L-1) S_prev + K^T diag(zeta) U')   (DR.7)",
                   [_fmt("S_prev", c.state.S[0, 0]), _fmt("U' = U - W S_prev", c.U[0, 0]),
                    _fmt("O of the chunk", out[0, 0, start:stop]),
                    _fmt("S handed on", handed_on[i].S[0, 0])])


_FORWARD = {"parallel": _parallel, "recurrent": _recurrent, "chunkwise": _chunkwise}


def _backward(forms, form, out, cache, other, ref_cache):
    dout = np.ones_like(out)
    dq, dk, dv, dbeta, dg, _ = forms[form][1](dout, cache)
    yield Step(f"Backward with dO = 1 ({form} form): every token's correction u_t gets "
               f"ubar_t = k_t Sbar_t, the gradient reaching S_t; then dv_t = beta_t ubar_t, "
               f"dbeta_t = ubar_t . (v_t - alpha_t k_t S_(t-1))   (DR.8)-(DR.10)",
               [_fmt("dQ", dq[0, 0]), _fmt("dK", dk[0, 0]), _fmt("dV", dv[0, 0]),
                _fmt("dbeta", dbeta[0, 0]), _fmt("dg (the log-gates)", dg[0, 0])])
    ref = forms[other][1](dout, ref_cache)[:5]
    yield Step(f"Check: the {form} backward against the {other} backward",
               [difference(f"all five gradients, {form} vs {other}",
                           flat(dq, dk, dv, dbeta, dg), flat(*ref))])
