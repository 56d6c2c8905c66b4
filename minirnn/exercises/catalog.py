"""The exercises: what to implement, how to run it, and the mistakes the grader recognises.

Each exercise names the library functions that hold its solution regions, a ``make`` that
builds random test cases, and an ``outputs`` that runs a module's version of the functions on a
case and returns named arrays. The grader compares a student's outputs with the solution's and,
when they differ, with those of each known :class:`Mistake` (the solution with a few characters
changed), so a diagnosis comes from the numbers the student's code produced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import attention as att
from .. import msr, retention, rnn


@dataclass(frozen=True)
class Mistake:
    message: str                          # what the student probably did, and the fix
    replacements: tuple                   # (old, new) applied to the solution's regions


@dataclass(frozen=True)
class Exercise:
    name: str
    goal: str
    difficulty: str
    module: str
    functions: tuple
    equations: str
    page: str
    make: Callable                        # rng -> case (dict)
    outputs: Callable                     # (module, case) -> dict of name -> array
    gradcheck: Callable | None = None     # (module, case) -> gradcheck report
    mistakes: tuple = field(default_factory=tuple)


def _rnn_case(rng, T=1):
    B, D, H = 3, 4, 5
    x = 0.5 * rng.standard_normal((B, T, D))
    h0 = 0.5 * rng.standard_normal((B, H))
    params = rnn.init_rnn_params(D, H, seed=int(rng.integers(1000)))
    params["b"] = 0.3 * rng.standard_normal(H)
    return {"x": x, "h0": h0, "params": params}


def _grads_dict(prefix, grads):
    return {f"{prefix}[{k!r}]": v for k, v in grads.items()}


# --- the backward exercises -----------------------------------------------------------------

def _rnn_step_outputs(mod, c):
    h, cache = rnn.rnn_step_forward(c["x"][:, 0], c["h0"], c["params"])
    dh = np.random.default_rng(1).standard_normal(h.shape)
    dx, dh_prev, grads = mod.rnn_step_backward(dh, cache)
    return {"dx": dx, "dh_prev": dh_prev, **_grads_dict("grads", grads)}


def _rnn_step_gradcheck(mod, c):
    from ..gradcheck import check_gradients
    return check_gradients(rnn.rnn_step_forward, mod.rnn_step_backward,
                           {"x": c["x"][:, 0], "h_prev": c["h0"]}, c["params"], floor=0.1)


def _rnn_outputs(mod, c):
    h, cache = rnn.rnn_forward(c["x"], c["h0"], c["params"])
    dh = np.random.default_rng(2).standard_normal(h.shape)
    dx, dh0, grads = mod.rnn_backward(dh, cache)
    return {"dx": dx, "dh0": dh0, **_grads_dict("grads", grads)}


def _rnn_gradcheck(mod, c):
    from ..gradcheck import check_gradients
    return check_gradients(rnn.rnn_forward, mod.rnn_backward, {"x": c["x"], "h0": c["h0"]},
                           c["params"], floor=0.1)


def _softmax_case(rng):
    return {"x": 2 * rng.standard_normal((3, 6))}


def _softmax_outputs(mod, c):
    y, cache = att.softmax_forward(c["x"])
    return {"dx": mod.softmax_backward(np.random.default_rng(3).standard_normal(y.shape), cache)}


def _softmax_gradcheck(mod, c):
    from ..gradcheck import check_gradients
    return check_gradients(att.softmax_forward, mod.softmax_backward, {"x": c["x"]}, floor=0.1)


def _attention_case(rng):
    return {"q": rng.standard_normal((2, 2, 5, 4)), "k": rng.standard_normal((2, 2, 5, 4)),
            "v": rng.standard_normal((2, 2, 5, 3))}


def _attention_outputs(mod, c):
    out, cache = att.attention_forward(c["q"], c["k"], c["v"], causal=True)
    dq, dk, dv = mod.attention_backward(np.random.default_rng(4).standard_normal(out.shape),
                                        cache)
    return {"dq": dq, "dk": dk, "dv": dv}


def _attention_gradcheck(mod, c):
    from ..gradcheck import check_gradients
    return check_gradients(att.attention_forward, mod.attention_backward,
                           {k: c[k] for k in "qkv"}, floor=0.1)


def _retention_case(rng):
    q = rng.standard_normal((2, 2, 7, 4))
    q[:, :, 4:] *= 3.0                     # some rows with |r| > 1, so the clamp matters
    return {"q": q, "k": rng.standard_normal((2, 2, 7, 4)),
            "v": rng.standard_normal((2, 2, 7, 3)), "gamma": np.array([0.6, 0.95])}


def _retention_backward_outputs(mod, c):
    out, cache = retention.retention_parallel(c["q"], c["k"], c["v"], c["gamma"])
    dq, dk, dv = mod.retention_parallel_backward(
        np.random.default_rng(5).standard_normal(out.shape), cache)
    return {"dq": dq, "dk": dk, "dv": dv}


def _retention_backward_gradcheck(mod, c):
    from ..gradcheck import check_gradients
    return check_gradients(lambda q, k, v: retention.retention_parallel(q, k, v, c["gamma"]),
                           mod.retention_parallel_backward, {k: c[k] for k in "qkv"}, floor=0.1)


def _group_norm_case(rng):
    return {"x": rng.standard_normal((2, 5, 3, 4)), "w": 1 + 0.3 * rng.standard_normal((3, 4)),
            "b": 0.3 * rng.standard_normal((3, 4))}


def _group_norm_outputs(mod, c):
    y, cache = msr.group_norm_forward(c["x"], c["w"], c["b"])
    dx, dw, db = mod.group_norm_backward(np.random.default_rng(6).standard_normal(y.shape),
                                         cache)
    return {"dx": dx, "dw": dw, "db": db}


def _group_norm_gradcheck(mod, c):
    from ..gradcheck import check_gradients

    def backward(dy, cache):
        dx, dw, db = mod.group_norm_backward(dy, cache)
        return dx, {"w": dw, "b": db}

    return check_gradients(lambda x, params: msr.group_norm_forward(x, params["w"], params["b"]),
                           backward, {"x": c["x"]}, {"w": c["w"], "b": c["b"]}, floor=0.1)


# --- the forward exercises ------------------------------------------------------------------

def _recurrent_outputs(mod, c):
    out, state, _ = mod.retention_recurrent(c["q"], c["k"], c["v"], c["gamma"])
    return {"out": out, "state.S": state.S, "state.z": state.z}


def _chunkwise_outputs(mod, c):
    out, state, _ = mod.retention_chunkwise(c["q"], c["k"], c["v"], c["gamma"], chunk_size=3)
    return {"out": out, "state.S": state.S, "state.z": state.z}


def _kv_case(rng):
    return {"x": rng.standard_normal((2, 6, 8)),
            "params": att.init_mha_params(8, 2, seed=int(rng.integers(1000)))}


def _kv_outputs(mod, c):
    x, p = c["x"], c["params"]
    y1, cache = mod.mha_step(x[:, :3], p, 2)                         # a prompt of 3 tokens
    steps = [mod.mha_step(x[:, t], p, 2, cache)[0][:, None] for t in range(3, 6)]
    return {"outputs (prompt, then one token at a time)": np.concatenate([y1, *steps], axis=1)}


EXERCISES = (
    Exercise(
        "rnn_step_backward", "backward of one Elman RNN step", "1 (warm-up)", "minirnn.rnn",
        ("rnn_step_backward",), "(RNN.4)-(RNN.6)", "derivations/rnn.md",
        _rnn_case, _rnn_step_outputs, _rnn_step_gradcheck,
        (Mistake("forgot the tanh derivative: multiply dh by 1 - h**2 to get da (RNN.4)",
                 (("dh * (1.0 - cache.h ** 2)", "dh"),)),
         Mistake("dWh is transposed: it is h_prev^T da, rows indexed by h_prev (RNN.5)",
                 (('"Wh": cache.h_prev.T @ da', '"Wh": da.T @ cache.h_prev'),)),
         Mistake("db should sum da over the batch (axis 0), not average it (RNN.5)",
                 (('"b": da.sum(axis=0)', '"b": da.mean(axis=0)'),)))),
    Exercise(
        "rnn_backward", "backpropagation through time for a whole sequence", "2",
        "minirnn.rnn", ("rnn_backward",), "(RNN.3)-(RNN.6)", "derivations/rnn.md",
        lambda rng: _rnn_case(rng, T=6), _rnn_outputs, _rnn_gradcheck,
        (Mistake("the gradient from later steps is not carried back: g_t must add "
                 "da_{t+1} Wh^T to dh_t (RNN.3)",
                 (("g = dh[:, t] + da_next_WhT", "g = dh[:, t]"),)),
         Mistake("the weight gradients are averaged over time instead of summed: every step "
                 "uses the same weights, so their contributions add up (RNN.5)",
                 (('np.einsum("btd,bth->dh", cache.x, da, optimize=True)',
                   'np.einsum("btd,bth->dh", cache.x, da, optimize=True) / h.shape[1]'),
                  ('np.einsum("bti,bth->ih", h_prev, da, optimize=True)',
                   'np.einsum("bti,bth->ih", h_prev, da, optimize=True) / h.shape[1]'))))),
    Exercise(
        "softmax_backward", "the softmax Jacobian-vector product", "1 (warm-up)",
        "minirnn.attention", ("softmax_backward",), "(A.2)", "derivations/attention.md",
        _softmax_case, _softmax_outputs, _softmax_gradcheck,
        (Mistake("the subtraction term is missing: dx = y * (dy - sum(dy * y)), not y * dy "
                 "(A.2)", (("(dy - np.sum(dy * y, axis=cache.axis, keepdims=True))", "dy"),)),)),
    Exercise(
        "attention_backward", "backward of causal scaled dot-product attention", "2",
        "minirnn.attention", ("attention_backward",), "(A.6)-(A.8)",
        "derivations/attention.md", _attention_case, _attention_outputs, _attention_gradcheck,
        (Mistake("the softmax backward lacks its subtraction term (A.7)",
                 (("(dP - np.sum(dP * P, axis=-1, keepdims=True))", "dP"),)),
         Mistake("the 1/sqrt(d) scale is missing from dq and dk (A.8)",
                 (("(dS @ cache.k) * cache.scale", "(dS @ cache.k)"),
                  ("(np.swapaxes(dS, -1, -2) @ cache.q) * cache.scale",
                   "(np.swapaxes(dS, -1, -2) @ cache.q)"))))),
    Exercise(
        "kv_cache_step", "decode with a KV cache: new tokens attend to cached keys and values",
        "2", "minirnn.attention", ("mha_step",), "(A.4) and (A.9)", "derivations/attention.md",
        _kv_case, _kv_outputs, None,
        (Mistake("the new keys and values are not appended to the cache, so tokens cannot see "
                 "the earlier ones",
                 (("cache.append(k, v)", "None"),
                  ("attention_forward(q, cache.keys, cache.values, causal=True)",
                   "attention_forward(q, k, v, causal=True)"))),)),
    Exercise(
        "retention_recurrent", "retention one token at a time, with the state (S, z, s)", "2",
        "minirnn.retention", ("retention_recurrent",), "(R.7)", "derivations/retention.md",
        _retention_case, _recurrent_outputs, None,
        (Mistake("decay off by one step: S_n = gamma S_{n-1} + k_n^T v_n decays the old state "
                 "*before* adding the new token (R.3)",
                 (("S = decay[:, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]",
                   "S = decay[:, None, None] * (S + k[:, :, n, :, None] * v[:, :, n, None, :])"),
                  ("z = decay[:, None] * z + k[:, :, n]",
                   "z = decay[:, None] * (z + k[:, :, n])"))),
         Mistake("the state is never decayed (that is linear attention, gamma = 1) (R.3)",
                 (("S = decay[:, None, None] * S + k", "S = S + k"),
                  ("z = decay[:, None] * z + k", "z = z + k"))),
         Mistake("the row factor a_n = 1 / sqrt(s_n) is missing (R.5)",
                 (("a[:, n] = 1.0 / np.sqrt(s)", "a[:, n] = 1.0"),)))),
    Exercise(
        "retention_parallel_backward", "backward of normalised parallel retention", "3",
        "minirnn.retention", ("retention_parallel_backward",), "(R.9)-(R.10)",
        "derivations/retention.md", _retention_case, _retention_backward_outputs,
        _retention_backward_gradcheck,
        (Mistake("the score normaliser's gradient dr is missing: where |r_n| > 1, c_n = |r_n| "
                 "depends on the scores (R.9)",
                 (("dR = dP @ np.swapaxes(cache.v, -1, -2) + dr[..., None]",
                   "dR = dP @ np.swapaxes(cache.v, -1, -2)"),)),
         Mistake("the 1/sqrt(d) scale is missing from dq (R.10)",
                 (("dq = (dA @ cache.k) * cache.scale", "dq = dA @ cache.k"),)))),
    Exercise(
        "retention_chunkwise", "retention chunk by chunk: inner part, cross part, carried state",
        "3", "minirnn.retention", ("chunk_decays", "retention_final_state", "retention_chunkwise"),
        "(R.4), (R.8)",
        "derivations/retention.md", _retention_case, _chunkwise_outputs, None,
        (Mistake("xi off by one: the state before the chunk reaches local row j decayed by "
                 "gamma^(j+1), not gamma^j (R.4)",
                 (("xi = p[:, 1:]", "xi = p[:, :L]"),)),
         Mistake("the state is not decayed across chunks: the old state must be multiplied by "
                 "gamma^L when a chunk of L tokens is added (R.4)",
                 (("S = f.gamma_L[:, None, None] * state.S +", "S = state.S +"),
                  ("z = f.gamma_L[:, None] * state.z +", "z = state.z +"))),
         Mistake("zeta off by one: token j of the chunk enters the state decayed by "
                 "gamma^(L-1-j), so the last token is not decayed (R.4)",
                 (("zeta = p[:, L - 1::-1]", "zeta = p[:, L:0:-1]"),)))),
    Exercise(
        "group_norm_backward", "backward of the per-head group norm of multi-scale retention",
        "2", "minirnn.msr", ("group_norm_backward", "standardize_backward"), "(M.5), (L.4)",
        "derivations/multiscale-retention.md", _group_norm_case, _group_norm_outputs,
        _group_norm_gradcheck,
        (Mistake("only the direct path is there: the mean and the variance depend on every "
                 "input too, so subtract mean(g) and xhat * mean(g * xhat) (M.5)",
                 (("(dxhat - dxhat.mean(axis=-1, keepdims=True)\n          - xhat * (dxhat "
                   "* xhat).mean(axis=-1, keepdims=True)) / sigma", "dxhat / sigma"),)),)),
)

BY_NAME = {e.name: e for e in EXERCISES}
