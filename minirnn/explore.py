"""``python -m minirnn step MECHANISM``: follow a tiny example number by number.

The numbers come from the library: forward values from the caches (hidden states, attention
scores and weights, retention states, each chunk's inner and cross parts), backward values from
the library's backward functions (and, where a walk backwards is shown step by step, the
gradient flowing into each step written out in closed form beside them). Every run ends by
checking the form shown against a *different* one: the recurrent form against the parallel
form, a KV-cache decode against the full causal attention, BPTT against the chained step
backward. Time is indexed from 0 everywhere, like the arrays (``x[:, 0]`` is the first token).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .attention import SoftmaxCache, attention_backward, attention_forward, softmax_backward
from .gradcheck import rel_error
from .rnn import (
    RNNStepCache,
    init_rnn_params,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

MECHANISMS = ("rnn", "attention", "retention", "msr", "gated")
WIDTH = 78


@dataclass
class Step:
    title: str            # what happens, with the equation number
    lines: list           # what to print


def fmt(name: str, a) -> str:
    """``name (shape) = values``, wrapped to the terminal width.

    Three decimals, exact zeros as ``0``; an array whose largest entry is below 0.05 is shown
    times a power of ten (``x 1e-3``), and one with a non-zero entry that would still round to
    zero is shown in scientific notation, so a number that is not zero never prints as zero.
    """
    a = np.asarray(a, dtype=np.float64)
    head = f"{name} {a.shape}" if a.ndim else name
    big = float(np.max(np.abs(a))) if a.size else 0.0
    if 0.0 < big < 0.05:
        exponent = int(np.floor(np.log10(big)))
        a = a / 10.0 ** exponent
        head += f" x 1e{exponent}"
    small = np.abs(a[(a != 0)])
    if small.size and small.min() < 5e-4:
        text = np.array2string(a, max_line_width=WIDTH - 4, separator=" ",
                               formatter={"float_kind": lambda x: f"{x:.2e}" if x != 0 else "0"})
    else:
        text = np.array2string(a, max_line_width=WIDTH - 4, separator=" ", formatter={
            "float_kind": lambda x: f"{x: .3f}" if x != 0 else " 0    "})   # exact zeros: 0
    head += " ="
    if "\n" not in text and len(head) + 1 + len(text) <= WIDTH:
        return f"{head} {text}"
    return head + "\n" + "\n".join("    " + line for line in text.splitlines())


def tiny(rng, *shape):
    """Short readable numbers: multiples of 0.5 between -1 and 1."""
    return rng.integers(-2, 3, shape) / 2.0


def difference(label: str, a, b) -> str:
    """The line every check prints (tests read it: ``difference ...: X``)."""
    return f"largest relative difference, {label}: {rel_error(a, b):.1e}"


# --- the Elman RNN ----------------------------------------------------------------------------

def rnn_steps(T, d, seed, backward, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    x, h0 = tiny(rng, 1, T, d), np.zeros((1, d))
    params = {k: np.round(v, 2) for k, v in init_rnn_params(d, d, seed=seed).items()}
    yield Step("Setup: one sequence, D = H = " + str(d) + "; h0 is the state before x[0]",
               [fmt("x", x[0]), fmt("Wx", params["Wx"]), fmt("Wh", params["Wh"]),
                fmt("b", params["b"]), fmt("h0", h0[0])])
    h, cache = rnn_forward(x, h0, params)
    for t in range(T):
        h_prev = h0 if t == 0 else h[:, t - 1]
        yield Step(f"t = {t}: h[t] = tanh(x[t] Wx + h_prev Wh + b)   (RNN.1)-(RNN.2)",
                   [fmt("x[t]", x[0, t]), fmt("h_prev", h_prev[0]),
                    fmt("a = x[t] Wx + h_prev Wh + b", cache.x[0, t] @ params["Wx"]
                        + h_prev[0] @ params["Wh"] + params["b"]), fmt("h[t]", h[0, t])])
    h_chain, h_t = [], h0
    for t in range(T):                                   # a second form: one step at a time
        h_t, _ = rnn_step_forward(x[:, t], h_t, params)
        h_chain.append(h_t)
    yield Step("Check: rnn_forward against T calls of rnn_step_forward",
               [difference("sequence vs steps", h, np.stack(h_chain, axis=1))])
    if backward:
        yield from _rnn_backward(x, h0, h, cache, params)


def _rnn_backward(x, h0, h, cache, params):
    T = x.shape[1]
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    yield Step("Backward: the loss reads the last state, dL/dh[T-1] = 1", [fmt("dh", dh[0])])
    carried, dWh = np.zeros_like(h0), np.zeros_like(params["Wh"])
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else h[:, t - 1]
        step = RNNStepCache(x[:, t], h_prev, h[:, t], params["Wx"], params["Wh"])
        g = dh[:, t] + carried                               # (RNN.3)
        _, carried, grads = rnn_step_backward(g, step)       # the library's step backward
        dWh = dWh + grads["Wh"]
        yield Step(f"t = {t}: g = dh[t] + da[t+1] Wh^T, da[t] = g (1 - h[t]^2), "
                   f"dWh += h_prev^T da[t]   (RNN.3)-(RNN.5)",
                   [fmt("g", g[0]), fmt("da[t]", grads["b"]), fmt("running dWh", dWh)])
    _, dh0, full = rnn_backward(dh, cache)
    yield Step("Check: rnn_backward (BPTT in one call) against the chained step backward",
               [fmt("dWh (rnn_backward)", full["Wh"]), fmt("dh0", dh0[0]),
                difference("BPTT vs steps", full["Wh"], dWh)])


# --- softmax attention ------------------------------------------------------------------------

def attention_steps(T, d, seed, backward, **_) -> Iterator[Step]:
    rng = np.random.default_rng(seed)
    q, k, v = (tiny(rng, 1, 1, T, d) for _ in range(3))
    yield Step("Setup: one head, T = " + str(T) + ", d = " + str(d),
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0])])
    out, cache = attention_forward(q, k, v, causal=True)
    E = (q[0, 0] @ k[0, 0].T) * cache.scale
    yield Step("Scores before the softmax: E = Q K^T / sqrt(d)   (A.3)",
               [fmt("E", E), "row n holds query n against every key, the future included"])
    masked = np.where(np.tril(np.ones((T, T), dtype=bool)), E, -np.inf)
    yield Step("Causal mask: keys m > n set to -inf, so they get weight exp(-inf) = 0   (A.4)",
               [fmt("E masked", masked)])
    yield Step("Softmax of every row: P = softmax(E masked)   (A.1), (A.5)",
               [fmt("P", cache.probs[0, 0]), "each row sums to one: "
                + np.array2string(cache.probs[0, 0].sum(-1), precision=3)])
    for n in range(T):
        yield Step(f"n = {n}: o[n] = sum_m P[n, m] v[m]   (A.5)",
                   [fmt("P[n]", cache.probs[0, 0, n]), fmt("o[n]", out[0, 0, n])])
    decoded = np.concatenate([attention_forward(q[:, :, n:n + 1], k[:, :, :n + 1],
                                                v[:, :, :n + 1])[0] for n in range(T)], axis=2)
    yield Step("Check: against decoding one query at a time over a growing cache of keys",
               [difference("full causal vs one query at a time", out, decoded)])
    if backward:
        yield from _attention_backward(q, k, v, out, cache)


def _attention_backward(q, k, v, out, cache):
    dout = np.ones_like(out)
    P = cache.probs
    yield Step("Backward with dO = 1", [fmt("dO", dout[0, 0])])
    dv = np.swapaxes(P, -1, -2) @ dout
    yield Step("dV = P^T dO: value m collects the weight every query gave it   (A.6)",
               [fmt("dV", dv[0, 0])])
    dP = dout @ np.swapaxes(v, -1, -2)
    yield Step("dP = dO V^T   (A.6)", [fmt("dP", dP[0, 0])])
    dE = softmax_backward(dP, SoftmaxCache(P, -1))               # the library's (A.2)
    yield Step("dE = P * (dP - rowsum(dP * P)): the softmax backward, row by row   (A.7)",
               [fmt("dE", dE[0, 0]), "masked entries have P = 0, so they get no gradient"])
    dq, dk = (dE @ k) * cache.scale, (np.swapaxes(dE, -1, -2) @ q) * cache.scale
    yield Step("dQ = dE K / sqrt(d), dK = dE^T Q / sqrt(d)   (A.8)",
               [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0])])
    ref = attention_backward(dout, cache)
    yield Step("Check: the steps above against attention_backward",
               [difference("dQ, dK, dV", np.concatenate([a.ravel() for a in (dq, dk, dv)]),
                           np.concatenate([a.ravel() for a in ref]))])


def _generators() -> dict[str, Callable[..., Iterator[Step]]]:
    from .explore_gated import gated_steps
    from .explore_retention import msr_steps, retention_steps

    return {"rnn": rnn_steps, "attention": attention_steps, "retention": retention_steps,
            "msr": msr_steps, "gated": gated_steps}


def run_explorer(mechanism: str, form: str = "recurrent", chunk_size: int = 2, T: int = 4,
                 d: int = 2, seed: int = 0, backward: bool = False, pause: bool | None = None,
                 out: Callable[[str], None] = print, ask: Callable[[str], str] = input) -> int:
    """Print the steps of ``mechanism`` on a tiny example; pause between steps if asked.

    ``pause=None`` pauses only when standard input and output are a terminal. Returns the
    number of steps shown (fewer if the reader quits with ``q``).
    """
    generators = _generators()
    if mechanism not in generators:
        raise ValueError(f"unknown mechanism {mechanism!r}; choose one of {MECHANISMS}")
    if not 1 <= T <= 12 or not 1 <= d <= 8:
        raise ValueError(f"keep the example tiny: 1 <= T <= 12 and 1 <= d <= 8 (got T = {T}, "
                         f"d = {d})")
    if mechanism == "msr" and d % 2:
        raise ValueError(f"msr rotates pairs of features: d must be even, got {d}")
    if pause is None:
        pause = sys.stdin.isatty() and sys.stdout.isatty()
    steps = 0
    for step in generators[mechanism](T=T, d=d, seed=seed, backward=backward, form=form,
                                      chunk_size=chunk_size):
        steps += 1
        out("\n" + textwrap.fill(f"[{steps}] {step.title}", WIDTH, subsequent_indent="    "))
        for line in step.lines:
            out(line)
        if pause and ask("-- Enter: next step, q: quit -- ").strip().lower() == "q":
            break
    return steps
