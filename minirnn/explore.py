"""``python -m minirnn step MECHANISM``: follow a tiny example number by number.

Every number shown comes from the library's own functions: the forward's cache holds each
intermediate (hidden states, attention weights, retention states S_n, z_n, the row factors),
and the backward steps are the library's backward functions, called one step at a time where
the library has a step function. Nothing is recomputed by a second implementation; the last
step of each run ties the forms together (recurrent beside parallel, chunkwise beside parallel,
BPTT beside the chained step backward).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .attention import attention_backward, attention_forward
from .gradcheck import rel_error
from .msr import init_msr_params, msr_backward, msr_forward
from .retention import (
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_parallel,
    retention_parallel_backward,
    retention_recurrent,
    retention_recurrent_backward,
)
from .rnn import RNNStepCache, init_rnn_params, rnn_backward, rnn_forward, rnn_step_backward

MECHANISMS = ("rnn", "attention", "retention", "msr")
WIDTH = 78


@dataclass
class Step:
    title: str            # what happens, with the equation number
    lines: list           # what to print


def fmt(name: str, a) -> str:
    """``name (shape) = values`` with two decimals, wrapped to the terminal width."""
    a = np.asarray(a)
    text = np.array2string(a, precision=2, suppress_small=True, floatmode="fixed",
                           max_line_width=WIDTH - 4, separator=" ")
    head = f"{name} {a.shape} =" if a.ndim else f"{name} ="
    if "\n" not in text and len(head) + 1 + len(text) <= WIDTH:
        return f"{head} {text}"
    return head + "\n" + "\n".join("    " + line for line in text.splitlines())


def tiny(rng, *shape):
    """Short readable numbers: multiples of 0.5 between -1 and 1."""
    return rng.integers(-2, 3, shape) / 2.0


# --- one generator per mechanism --------------------------------------------------------------

def rnn_steps(T, d, seed, backward, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    x, h0 = tiny(rng, 1, T, d), np.zeros((1, d))
    params = {k: np.round(v, 2) for k, v in init_rnn_params(d, d, seed=seed).items()}
    yield Step("Setup: one sequence, D = H = " + str(d),
               [fmt("x", x[0]), fmt("Wx", params["Wx"]), fmt("Wh", params["Wh"]),
                fmt("b", params["b"]), fmt("h_0", h0[0])])
    h, cache = rnn_forward(x, h0, params)
    for t in range(T):
        h_prev = h0 if t == 0 else h[:, t - 1]
        yield Step(f"t = {t + 1}: h_t = tanh(x_t Wx + h_(t-1) Wh + b)   (RNN.1)-(RNN.2)",
                   [fmt("x_t", x[0, t]), fmt("h_(t-1)", h_prev[0]), fmt("h_t", h[0, t])])
    if not backward:
        return
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    yield Step("Backward: the loss reads the last state, dL/dh_T = 1", [fmt("dh", dh[0])])
    carried, dWh = np.zeros_like(h0), np.zeros_like(params["Wh"])
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else h[:, t - 1]
        step = RNNStepCache(x[:, t], h_prev, h[:, t], params["Wx"], params["Wh"])
        g = dh[:, t] + carried
        _, carried, grads = rnn_step_backward(g, step)       # the library's step backward
        dWh = dWh + grads["Wh"]
        yield Step(f"t = {t + 1}: g_t = dh_t + da_(t+1) Wh^T, da_t = g_t (1 - h_t^2)   "
                   f"(RNN.3)-(RNN.5)",
                   [fmt("g_t", g[0]), fmt("da_t", grads["b"]), fmt("running dWh", dWh)])
    _, dh0, full = rnn_backward(dh, cache)
    yield Step("Check: rnn_backward over the whole sequence gives the same",
               [fmt("dWh (rnn_backward)", full["Wh"]),
                f"difference from the step-by-step sum: {rel_error(full['Wh'], dWh):.1e}",
                fmt("dh_0", dh0[0])])


def attention_steps(T, d, seed, backward, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    q, k, v = (tiny(rng, 1, 1, T, d) for _ in range(3))
    yield Step("Setup: one head, T = " + str(T) + ", d = " + str(d),
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0])])
    out, cache = attention_forward(q, k, v, causal=True)
    yield Step("Scores S = Q K^T / sqrt(d), future masked, softmax per row   (A.3)-(A.5)",
               [fmt("P (weights)", cache.probs[0, 0]),
                "each row sums to one: " + np.array2string(cache.probs[0, 0].sum(-1),
                                                             precision=2)])
    for n in range(T):
        yield Step(f"n = {n}: o_n = sum_m P[n, m] v_m   (A.5)",
                   [fmt("P[n]", cache.probs[0, 0, n]), fmt("o_n", out[0, 0, n])])
    if backward:
        dout = np.ones_like(out)
        dq, dk, dv = attention_backward(dout, cache)
        yield Step("Backward with dO = 1: dV = P^T dO, dS by (A.7), dQ, dK by (A.8)",
                   [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0]), fmt("dV", dv[0, 0])])


def retention_steps(T, d, seed, backward, form="recurrent", chunk_size=2, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    q, k = tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, d)
    v = tiny(rng, 1, 1, T, 2)
    gamma = np.array([0.5])
    yield Step(f"Setup: one head, gamma = 0.5, T = {T}, d = {d}, dv = 2, normalised",
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0])])
    par, pcache = retention_parallel(q, k, v, gamma)
    if form == "parallel":
        yield Step("R = (Q K^T / sqrt(d)) * D / sqrt(s_n); r = row sums   (R.6)",
                   [fmt("R", pcache.R[0, 0]), fmt("r", pcache.r[0, 0]),
                    fmt("c = max(|r|, 1)", pcache.c[0, 0])])
        yield Step("O = R V / c   (R.6)", [fmt("O", par[0, 0])])
        out, grads = par, retention_parallel_backward(np.ones_like(par), pcache)
    elif form == "recurrent":
        out, _, cache = retention_recurrent(q, k, v, gamma)
        for n in range(T):
            yield Step(f"n = {n}: S_n = g S_(n-1) + k_n^T v_n, z_n = g z_(n-1) + k_n, "
                       f"s_n = g s_(n-1) + 1   (R.7)",
                       [fmt("S_n", cache.S[0, 0, n]), fmt("z_n", cache.z[0, 0, n]),
                        f"s_n = {1 / cache.a[0, n] ** 2:.2f}   a_n = 1/sqrt(s_n) = "
                        f"{cache.a[0, n]:.2f}   r_n = {cache.r[0, 0, n]:.2f}   "
                        f"c_n = {cache.c[0, 0, n]:.2f}",
                        fmt("o_n = a_n q'_n S_n / c_n", out[0, 0, n])])
        grads = retention_recurrent_backward(np.ones_like(out), cache)[:3]
    else:
        out, _, cache = retention_chunkwise(q, k, v, gamma, chunk_size)
        for i, (start, stop) in enumerate(cache.bounds):
            yield Step(f"chunk {i}: positions {start}..{stop - 1}; inner part plus "
                       f"xi_j (q_j S_prev), xi_j = g^(j+1)   (R.4), (R.8)",
                       [fmt("S_prev", cache.states[i].S[0, 0]),
                        fmt("z_prev", cache.states[i].z[0, 0]),
                        f"s_prev = {cache.states[i].s[0]:.2f}",
                        fmt("O of the chunk", out[0, 0, start:stop])])
        grads = retention_chunkwise_backward(np.ones_like(out), cache)[:3]
    yield Step(f"Check: the {form} form beside the parallel form",
               [fmt(form, out[0, 0]), fmt("parallel", par[0, 0]),
                f"max relative difference: {rel_error(out, par):.1e}"])
    if backward:
        ref = retention_parallel_backward(np.ones_like(par), pcache)
        yield Step("Backward with dO = 1 (R.9)-(R.12), beside the parallel backward",
                   [fmt("dQ", grads[0][0, 0]), fmt("dK", grads[1][0, 0]),
                    fmt("dV", grads[2][0, 0]),
                    "max relative difference from parallel: "
                    f"{max(rel_error(a, b) for a, b in zip(grads, ref)):.1e}"])


def msr_steps(T, d, seed, backward, form="recurrent", chunk_size=2, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    D = 2 * d
    params = init_msr_params(D, 2, 2, seed=seed)
    x = tiny(rng, 1, T, D)
    yield Step(f"Setup: D = {D}, 2 heads (gamma = 1 - 2^-5, 1 - 2^-6), dv = 2, T = {T}",
               [fmt("x", x[0])])
    y, state, cache = msr_forward(x, params, 2, form, chunk_size=chunk_size)
    core = cache.core
    yield Step("Q = rot(X Wq / sqrt(d)), K = rot(X Wk), V = X Wv   (M.2)",
               [fmt("Q' head 0", core.q[0, 0]), fmt("K head 0", core.k[0, 0])])
    yield Step(f"Retention per head ({form} form), then group norm per (token, head)   "
               f"(R.6)-(R.8), (M.3)", [fmt("normalised heads Y (token, head, dv)", cache.y[0])])
    yield Step("Gate swish(X Wg) times the heads, then Wo   (M.4)",
               [fmt("swish gate", cache.gate[0]), fmt("MSR(X)", y[0])])
    ref, _, _ = msr_forward(x, params, 2, "parallel")
    yield Step("Check: beside the parallel form",
               [f"max relative difference: {rel_error(y, ref):.1e}",
                f"state after the sequence: position {state.position}"])
    if backward:
        dx, grads = msr_backward(np.ones_like(y), cache)
        yield Step("Backward with dY = 1: Wo, gate, group norm (M.5), retention, rotation",
                   [fmt("dX", dx[0]), fmt("d gn_w", grads["gn_w"])])


GENERATORS: dict[str, Callable[..., Iterator[Step]]] = {
    "rnn": rnn_steps, "attention": attention_steps, "retention": retention_steps,
    "msr": msr_steps}


def run_explorer(mechanism: str, form: str = "recurrent", chunk_size: int = 2, T: int = 4,
                 d: int = 2, seed: int = 0, backward: bool = False, pause: bool | None = None,
                 out: Callable[[str], None] = print, ask: Callable[[str], str] = input) -> int:
    """Print the steps of ``mechanism`` on a tiny example; pause between steps if asked.

    ``pause=None`` pauses only when standard input and output are a terminal. Returns the
    number of steps shown (fewer if the reader quits with ``q``).
    """
    if mechanism not in GENERATORS:
        raise ValueError(f"unknown mechanism {mechanism!r}; choose one of {MECHANISMS}")
    if not 1 <= T <= 12 or not 1 <= d <= 8:
        raise ValueError(f"keep the example tiny: 1 <= T <= 12 and 1 <= d <= 8 (got T = {T}, "
                         f"d = {d})")
    if mechanism == "msr" and d % 2:
        raise ValueError(f"msr rotates pairs of features: d must be even, got {d}")
    if pause is None:
        pause = sys.stdin.isatty() and sys.stdout.isatty()
    steps = 0
    for step in GENERATORS[mechanism](T=T, d=d, seed=seed, backward=backward, form=form,
                                      chunk_size=chunk_size):
        steps += 1
        out("\n" + textwrap.fill(f"[{steps}] {step.title}", WIDTH, subsequent_indent="    "))
        for line in step.lines:
            out(line)
        if pause and ask("-- Enter: next step, q: quit -- ").strip().lower() == "q":
            break
    return steps
