"""The RNN exercises' known mistakes, as numbers: an independent BPTT with switches."""

from __future__ import annotations

from functools import partial

import numpy as np

from .mistake import Mistake

TANH_DERIVATIVES = {"1 - h^2": lambda h: 1 - h ** 2, "none": lambda h: np.ones_like(h),
                    "1 - h": lambda h: 1 - h, "1 + h^2": lambda h: 1 + h ** 2}


def step_backward(c, tanh="1 - h^2", dWh_transposed=False, db="sum", dh_prev="da Wh^T",
                  weights_from="da"):
    """rnn_step_backward's outputs on case ``c``, with the switches set as a mistake would."""
    x, h_prev, p, dh = c["x"][:, 0], c["h0"], c["params"], c["dh_step"]
    h = np.tanh(x @ p["Wx"] + h_prev @ p["Wh"] + p["b"])
    da = dh * TANH_DERIVATIVES[tanh](h)
    src = da if weights_from == "da" else dh
    back = {"da Wh^T": da @ p["Wh"].T, "da Wh": da @ p["Wh"], "dh Wh^T": dh @ p["Wh"].T}
    return {"dx": da @ p["Wx"].T, "dh_prev": back[dh_prev],
            "grads['Wx']": x.T @ src,
            "grads['Wh']": src.T @ h_prev if dWh_transposed else h_prev.T @ src,
            "grads['b']": src.sum(axis=0) if db == "sum" else src.mean(axis=0)}


def bptt(c, carry="da Wh^T", tanh="1 - h^2", averaged=(), h_prev="h_(t-1)", dh0=True):
    """rnn_backward's outputs on case ``c``, with the switches set as a mistake would."""
    x, h0, p, dh = c["x"], c["h0"], c["params"], c["dh_seq"]
    T = x.shape[1]
    hs, h_t = [], h0
    for t in range(T):
        h_t = np.tanh(x[:, t] @ p["Wx"] + h_t @ p["Wh"] + p["b"])
        hs.append(h_t)
    h = np.stack(hs, axis=1)
    before = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    da = np.zeros_like(h)
    carried = np.zeros_like(h0)
    for t in reversed(range(T)):
        delta = dh[:, t] + carried
        da[:, t] = delta * TANH_DERIVATIVES[tanh](h[:, t])
        carried = {"da Wh^T": da[:, t] @ p["Wh"].T, "da Wh": da[:, t] @ p["Wh"],
                   "delta Wh^T": delta @ p["Wh"].T, "none": 0.0 * delta}[carry]
    states = before if h_prev == "h_(t-1)" else h
    grads = {"Wx": np.einsum("btd,bth->dh", x, da), "Wh": np.einsum("bti,bth->ih", states, da),
             "b": da.sum(axis=(0, 1))}
    grads = {k: value / T if k in averaged else value for k, value in grads.items()}
    # dh0 is what step 0 sends back, however the carry is written (kept as da_1 Wh^T when the
    # carry is computed but not added)
    out_of_step_0 = da[:, 0] @ p["Wh"].T if carry == "none" else carried
    dh0_value = out_of_step_0 if dh0 else np.zeros_like(h0)
    return {"dx": da @ p["Wx"].T, "dh0": dh0_value,
            **{f"grads[{k!r}]": v for k, v in grads.items()}}


STEP_MISTAKES = (
    Mistake("da = dh: the tanh derivative is missing", "(RNN.4)",
            "what does h = tanh(a) put between dh and da?", partial(step_backward, tanh="none")),
    Mistake("tanh'(a) written as 1 - h", "(RNN.4)",
            "differentiate tanh and write the result in terms of h = tanh(a)",
            partial(step_backward, tanh="1 - h")),
    Mistake("tanh'(a) written as 1 + h^2", "(RNN.4)",
            "tanh flattens out for large |a|: should its slope grow or shrink with h^2?",
            partial(step_backward, tanh="1 + h^2")),
    Mistake("dWh is transposed", "(RNN.5)",
            "which index of Wh meets h_prev in a = x Wx + h_prev Wh + b?",
            partial(step_backward, dWh_transposed=True)),
    Mistake("db averages da over the batch instead of summing it", "(RNN.5)",
            "every example's loss adds up, so how do their gradients combine?",
            partial(step_backward, db="mean")),
    Mistake("dh_prev uses Wh where its transpose belongs", "(RNN.6)",
            "a = h_prev Wh: which side of Wh does da come back through?",
            partial(step_backward, dh_prev="da Wh")),
    Mistake("dh_prev is sent back from dh, skipping the tanh derivative", "(RNN.6)",
            "h_prev reaches the loss through a, not through h directly",
            partial(step_backward, dh_prev="dh Wh^T")),
    Mistake("the weight gradients use dh instead of da", "(RNN.5)",
            "the weights act on a; which gradient belongs to a?",
            partial(step_backward, weights_from="dh")),
)

BPTT_MISTAKES = (
    Mistake("the gradient from later steps is not carried back: g_t is only dh_t", "(RNN.3)",
            "h_t also feeds a_(t+1); what does that path add to g_t?",
            partial(bptt, carry="none")),
    Mistake("the gradient is carried back through Wh instead of its transpose", "(RNN.3)",
            "a_(t+1) = ... + h_t Wh: which side of Wh does the gradient come back through?",
            partial(bptt, carry="da Wh")),
    Mistake("g_t (before the tanh derivative) is carried back instead of da_t", "(RNN.3)",
            "the path from h_t to a_(t+1) starts after the tanh of step t+1",
            partial(bptt, carry="delta Wh^T")),
    Mistake("da = delta: the tanh derivative is missing", "(RNN.4)",
            "what does h = tanh(a) put between delta and da?", partial(bptt, tanh="none")),
    Mistake("all three weight gradients are averaged over time instead of summed", "(RNN.5)",
            "every step uses the same weights; how do the steps' contributions combine?",
            partial(bptt, averaged=("Wx", "Wh", "b"))),
    Mistake("dWx and dWh are averaged over time instead of summed", "(RNN.5)",
            "every step uses the same weights; how do the steps' contributions combine?",
            partial(bptt, averaged=("Wx", "Wh"))),
    Mistake("dWh pairs da_t with h_t instead of h_(t-1)", "(RNN.5)",
            "which hidden state is multiplied by Wh in a_t?", partial(bptt, h_prev="h_t")),
    Mistake("dh0 is missing (zeros)", "(RNN.6)",
            "h0 feeds a_1 like any other h_(t-1) feeds a_t", partial(bptt, dh0=False)),
)
