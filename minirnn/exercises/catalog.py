"""The exercises: what to implement, the test cases, where to look, and the known mistakes.

Each exercise names the library functions that hold its solution regions, a ``make`` that
builds a random test case (inputs *and* upstream gradients), an ``outputs`` that runs a module's
version of the functions on a case and returns named arrays, a ``second`` check (a gradient
check, or a property every correct answer has), a ``locate`` that says where in the student's
terms a wrong output first goes wrong, and the catalogued mistakes (``variants_*.py``), each
with the numbers it produces. The grader compares numbers, never source text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import attention as att
from .. import gated, msr, retention, rnn
from ..gradcheck import check_gradients, rel_error
from . import locate
from .mistake import Mistake
from .variants_attention import (
    ATTENTION_MISTAKES,
    GROUP_NORM_MISTAKES,
    KV_MISTAKES,
    SOFTMAX_MISTAKES,
)
from .variants_gated import (
    DECAY_GRADIENT_MISTAKES,
    GATED_RECURRENT_MISTAKES,
    decay_gradient_case,
)
from .variants_retention import (
    CHUNKWISE_MISTAKES,
    PARALLEL_BACKWARD_MISTAKES,
    RECURRENT_MISTAKES,
)
from .variants_rnn import BPTT_MISTAKES, STEP_MISTAKES
from .variants_vision import MANHATTAN_MISTAKES

PROPERTY_EXERCISE = "write_a_property"


@dataclass(frozen=True)
class Exercise:
    name: str
    goal: str
    difficulty: str
    module: str
    functions: tuple
    equations: str
    page: str
    given: str                            # what the stub already computes, and what to return
    make: Callable                        # rng -> case (dict)
    sizes: Callable                       # case -> {"B": 3, ...}, shown at the top of a report
    outputs: Callable                     # (module, case) -> {name: array}
    second: tuple                         # (check name, (module, case) -> (ok, message))
    locate: Callable                      # (student outputs, correct outputs, case) -> str
    mistakes: tuple = field(default_factory=tuple)


def _grads(prefix, grads):
    return {f"{prefix}[{k!r}]": v for k, v in grads.items()}


def _gradcheck(forward, backward, inputs, params=None):
    """A gradient check that reports every array: (all pass, "fails: ...; passes: ...")."""
    report = check_gradients(forward, backward, inputs, params, floor=0.1)
    bad = {k: e for k, e in report.items() if not e < 1e-7}
    good = {k: e for k, e in report.items() if e < 1e-7}
    parts = ([f"fails: {', '.join(f'{k} {e:.1e}' for k, e in bad.items())}"] if bad else []) +\
        ([f"passes: {', '.join(f'{k} {e:.1e}' for k, e in good.items())}"] if good else [])
    return not bad, "; ".join(parts) + " (relative error, must be below 1e-07)"


# --- the RNN ------------------------------------------------------------------------------------

def _rnn_case(rng, T):
    B, D, H = 3, 4, 5
    params = rnn.init_rnn_params(D, H, seed=int(rng.integers(1000)))
    params["b"] = 0.3 * rng.standard_normal(H)
    return {"x": 0.5 * rng.standard_normal((B, T, D)), "h0": 0.5 * rng.standard_normal((B, H)),
            "params": params, "dh_step": rng.standard_normal((B, H)),
            "dh_seq": rng.standard_normal((B, T, H))}


def _rnn_sizes(c):
    B, T, D = c["x"].shape
    return {"B": B, **({"T": T} if T > 1 else {}), "D": D, "H": c["h0"].shape[1]}


def _rnn_step_outputs(mod, c):
    _, cache = rnn.rnn_step_forward(c["x"][:, 0], c["h0"], c["params"])
    dx, dh_prev, grads = mod.rnn_step_backward(c["dh_step"], cache)
    return {"dx": dx, "dh_prev": dh_prev, **_grads("grads", grads)}


def _rnn_step_gradcheck(mod, c):
    return _gradcheck(rnn.rnn_step_forward, mod.rnn_step_backward,
                      {"x": c["x"][:, 0], "h_prev": c["h0"]}, c["params"])


def _rnn_outputs(mod, c):
    _, cache = rnn.rnn_forward(c["x"], c["h0"], c["params"])
    dx, dh0, grads = mod.rnn_backward(c["dh_seq"], cache)
    return {"dx": dx, "dh0": dh0, **_grads("grads", grads)}


def _rnn_gradcheck(mod, c):
    return _gradcheck(rnn.rnn_forward, mod.rnn_backward, {"x": c["x"], "h0": c["h0"]},
                      c["params"])


# --- softmax, attention, KV cache ---------------------------------------------------------------

def _softmax_case(rng):
    return {"x": 2 * rng.standard_normal((3, 6)), "dy": rng.standard_normal((3, 6))}


def _softmax_outputs(mod, c):
    _, cache = att.softmax_forward(c["x"])
    return {"dx": mod.softmax_backward(c["dy"], cache)}


def _softmax_gradcheck(mod, c):
    return _gradcheck(att.softmax_forward, mod.softmax_backward, {"x": c["x"]})


def _attention_case(rng):
    shape = (2, 2, 5, 4)
    return {"q": rng.standard_normal(shape), "k": rng.standard_normal(shape),
            "v": rng.standard_normal((2, 2, 5, 3)), "dout": rng.standard_normal((2, 2, 5, 3))}


def _qkv_sizes(c):
    B, h, T, d = c["q"].shape
    return {"B": B, "h": h, "T": T, "d": d, "dv": c["v"].shape[-1]}


def _attention_outputs(mod, c):
    _, cache = att.attention_forward(c["q"], c["k"], c["v"], causal=True)
    dq, dk, dv = mod.attention_backward(c["dout"], cache)
    return {"dq": dq, "dk": dk, "dv": dv}


def _attention_gradcheck(mod, c):
    return _gradcheck(att.attention_forward, mod.attention_backward, {k: c[k] for k in "qkv"})


def _kv_case(rng):
    params = att.init_mha_params(8, 2, seed=int(rng.integers(1000)))
    params.update({b: 0.3 * rng.standard_normal(8) for b in ("bq", "bv", "bo")})
    return {"x": rng.standard_normal((2, 6, 8)), "params": params}


def _kv_outputs(mod, c):
    x, p = c["x"], c["params"]
    y1, cache = mod.mha_step(x[:, :3], p, 2)                         # a prompt of 3 tokens
    steps = [mod.mha_step(x[:, t], p, 2, cache)[0][:, None] for t in range(3, 6)]
    return {"outputs (prompt, then one token at a time)": np.concatenate([y1, *steps], axis=1)}


def _kv_property(mod, c):
    """Decoding one token at a time equals the same tokens as one prompt."""
    x, p = c["x"], c["params"]
    whole, _ = mod.mha_step(x, p, 2)
    cache, pieces = None, []
    for t in range(x.shape[1]):
        y, cache = mod.mha_step(x[:, t], p, 2, cache)
        pieces.append(y[:, None])
    err = rel_error(np.concatenate(pieces, axis=1), whole)
    return err < 1e-8, f"one token at a time vs all at once: relative difference {err:.1e}"


# --- retention ------------------------------------------------------------------------------------

def _retention_case(rng):
    q = rng.standard_normal((2, 2, 7, 4))
    q[:, :, 4:] *= 3.0                     # some rows with |r| > 1, so the clamp matters
    return {"q": q, "k": rng.standard_normal((2, 2, 7, 4)), "v": rng.standard_normal((2, 2, 7, 3)),
            "gamma": np.array([0.6, 0.95]), "dout": rng.standard_normal((2, 2, 7, 3)),
            "chunk_size": 3}


def _retention_sizes(c):
    return {**_qkv_sizes(c), "gamma": c["gamma"].tolist(), "chunk_size": c["chunk_size"]}


def _parallel_backward_outputs(mod, c):
    _, _, cache = retention.retention_parallel(c["q"], c["k"], c["v"], c["gamma"])
    dq, dk, dv, _ = mod.retention_parallel_backward(c["dout"], cache)
    return {"dq": dq, "dk": dk, "dv": dv}


def _parallel_backward_gradcheck(mod, c):
    return _gradcheck(lambda q, k, v: retention.retention_parallel(q, k, v, c["gamma"]),
                      mod.retention_parallel_backward, {k: c[k] for k in "qkv"})


def _recurrent_outputs(mod, c):
    out, state, _ = mod.retention_recurrent(c["q"], c["k"], c["v"], c["gamma"])
    return {"out": out, "state.S": state.S, "state.z": state.z}


def _recurrent_property(mod, c):
    """Two calls that carry the state equal one call over the whole sequence."""
    q, k, v, gamma = c["q"], c["k"], c["v"], c["gamma"]
    whole, _, _ = mod.retention_recurrent(q, k, v, gamma)
    first, state, _ = mod.retention_recurrent(q[:, :, :3], k[:, :, :3], v[:, :, :3], gamma)
    rest, _, _ = mod.retention_recurrent(q[:, :, 3:], k[:, :, 3:], v[:, :, 3:], gamma, state)
    err = rel_error(np.concatenate([first, rest], axis=2), whole)
    return err < 1e-8, f"tokens 0-2, then 3-6 from the returned state, vs one call: "\
                       f"relative difference {err:.1e}"


def _chunkwise_outputs(mod, c):
    out, state, _ = mod.retention_chunkwise(c["q"], c["k"], c["v"], c["gamma"],
                                            chunk_size=c["chunk_size"])
    return {"out": out, "state.S": state.S, "state.z": state.z}


def _chunkwise_property(mod, c):
    """Every chunk size gives the same outputs."""
    q, k, v, gamma = c["q"], c["k"], c["v"], c["gamma"]
    outs = {C: mod.retention_chunkwise(q, k, v, gamma, chunk_size=C)[0] for C in (1, 2, 7)}
    errs = {C: rel_error(o, outs[7]) for C, o in outs.items()}
    ok = max(errs.values()) < 1e-8
    return ok, "chunk sizes 1 and 2 against one chunk of 7: relative differences " +\
        ", ".join(f"{errs[C]:.1e}" for C in (1, 2))


# --- gated retention ----------------------------------------------------------------------------

def _gated_sizes(c):
    B, h, T, d = c["q"].shape
    return {"B": B, "h": h, "T": T, "d": d, "dv": c["v"].shape[-1]}


def _gated_recurrent_outputs(mod, c):
    out, state, _ = mod.gated_retention_recurrent(c["q"], c["k"], c["v"], c["log_decay"])
    return {"out": out, "state.S": state.S, "state.z": state.z, "state.s": state.s}


def _gated_recurrent_property(mod, c):
    """Two calls that carry the state equal one call over the whole sequence."""
    q, k, v, log_decay = c["q"], c["k"], c["v"], c["log_decay"]
    whole, _, _ = mod.gated_retention_recurrent(q, k, v, log_decay)
    first, state, _ = mod.gated_retention_recurrent(*(x[:, :, :3] for x in (q, k, v, log_decay)))
    rest, _, _ = mod.gated_retention_recurrent(*(x[:, :, 3:] for x in (q, k, v, log_decay)), state)
    err = rel_error(np.concatenate([first, rest], axis=2), whole)
    return err < 1e-8, f"tokens 0-2, then 3-6 from the returned state, vs one call: "\
                       f"relative difference {err:.1e}"


def _decay_gradient_inputs(c):
    """q, dq, k, dk, log_decay, s, final, dfinal of the case, from the library (right)."""
    _, final, cache = gated.gated_retention_recurrent(c["q"], c["k"], c["v"], c["log_decay"],
                                                      c["state"])
    dq, dk, _, _, _ = gated.gated_retention_recurrent_backward(c["dout"], cache, c["dfinal"])
    return c["q"], dq, c["k"], dk, c["log_decay"], cache.s, final, c["dfinal"]


def _decay_gradient_outputs(mod, c):
    dg, ds_prev = mod.gated_decay_gradient(*_decay_gradient_inputs(c), normalize=True)
    return {"dlog_decay": dg, "ds_prev": ds_prev}


def _decay_gradient_fd(mod, c):
    """The student's dlog_decay against central differences of the loss in the log-gates."""
    from ..gradcheck import numerical_gradient

    d = c["dfinal"]

    def loss(log_decay):
        out, final, _ = gated.gated_retention_recurrent(c["q"], c["k"], c["v"], log_decay,
                                                        c["state"])
        return np.asarray(np.sum(out * c["dout"]) + np.sum(final.S * d.S)
                          + np.sum(final.z * d.z) + np.sum(final.s * d.s))

    log_decay = np.minimum(c["log_decay"], -1e-3)         # central differences stay in g <= 0
    case = {**c, "log_decay": log_decay}
    got = mod.gated_decay_gradient(*_decay_gradient_inputs(case), normalize=True)[0]
    want = numerical_gradient(loss, log_decay, np.array(1.0))
    err = rel_error(np.asarray(got, dtype=float), want)
    return err < 1e-6, f"dlog_decay against central differences: relative error {err:.1e} "\
                       "(must be below 1e-06)"


# --- the Manhattan decay -----------------------------------------------------------------------

def _manhattan_case(rng):
    return {"n_y": 3, "n_x": 4, "gamma": np.round(rng.uniform(0.3, 0.95, 2), 2)}


def _manhattan_outputs(mod, c):
    return {"Gamma": mod.manhattan_decay_mask(c["n_y"], c["n_x"], c["gamma"])}


def _manhattan_property(mod, c):
    """The mask equals the Kronecker product of the two 1-D masks, and is symmetric."""
    n_y, n_x, gamma = c["n_y"], c["n_x"], c["gamma"]
    Gamma = np.asarray(mod.manhattan_decay_mask(n_y, n_x, gamma))
    Gamma_y, Gamma_x = (np.asarray(mod.manhattan_decay_mask(1, n, gamma)) for n in (n_y, n_x))
    kron = np.stack([np.kron(a, b) for a, b in zip(Gamma_y, Gamma_x)])
    err = rel_error(Gamma, kron) if Gamma.shape == kron.shape else np.inf
    sym = rel_error(Gamma, np.swapaxes(Gamma, -1, -2))
    ok = err < 1e-12 and sym < 1e-12
    return ok, f"against the Kronecker product of its 1 x {n_y} and 1 x {n_x} masks: relative "\
               f"difference {err:.1e}; against its transpose: {sym:.1e}"


# --- group norm ---------------------------------------------------------------------------------

def _group_norm_case(rng):
    return {"x": rng.standard_normal((2, 5, 3, 4)), "w": 1 + 0.3 * rng.standard_normal((3, 4)),
            "b": 0.3 * rng.standard_normal((3, 4)), "dy": rng.standard_normal((2, 5, 3, 4))}


def _group_norm_sizes(c):
    B, T, h, dv = c["x"].shape
    return {"B": B, "T": T, "h": h, "dv": dv}


def _group_norm_outputs(mod, c):
    _, cache = msr.group_norm_forward(c["x"], c["w"], c["b"])
    dx, dw, db = mod.group_norm_backward(c["dy"], cache)
    return {"dx": dx, "dw": dw, "db": db}


def _group_norm_gradcheck(mod, c):
    def backward(dy, cache):
        dx, dw, db = mod.group_norm_backward(dy, cache)
        return dx, {"w": dw, "b": db}

    return _gradcheck(lambda x, params: msr.group_norm_forward(x, params["w"], params["b"]),
                      backward, {"x": c["x"]}, {"w": c["w"], "b": c["b"]})


GRADCHECK = "gradient matches finite differences (every input and parameter)"

EXERCISES = (
    Exercise(
        "rnn_step_backward", "backward of one Elman RNN step", "1 (warm-up)", "minirnn.rnn",
        ("rnn_step_backward",), "(RNN.4)-(RNN.6)", "derivations/rnn.md",
        "cache holds x, h_prev, h = tanh(a), Wx and Wh of the forward step. Return dx, dh_prev "
        "and grads, a dict with keys 'Wx', 'Wh', 'b'.",
        lambda rng: _rnn_case(rng, 1), _rnn_sizes, _rnn_step_outputs,
        (GRADCHECK, _rnn_step_gradcheck), locate.by_rows("example"), STEP_MISTAKES),
    Exercise(
        "rnn_backward", "backpropagation through time for a whole sequence", "2",
        "minirnn.rnn", ("rnn_backward",), "(RNN.3)-(RNN.6)", "derivations/rnn.md",
        "cache.h holds every hidden state (h[:, t] is the state after x[:, t]), cache.h0 the "
        "state before the first step, cache.x, cache.Wx, cache.Wh. h = cache.h, and da, an "
        "empty array of the shape of h for the da_t of every step, are set for you. "
        "Return dx, dh0 and grads with keys 'Wx', 'Wh', 'b'.",
        lambda rng: _rnn_case(rng, 6), _rnn_sizes, _rnn_outputs,
        (GRADCHECK, _rnn_gradcheck), locate.by_time(axis=1, backward=True, key="dx"),
        BPTT_MISTAKES),
    Exercise(
        "softmax_backward", "the softmax Jacobian-vector product", "1 (warm-up)",
        "minirnn.attention", ("softmax_backward",), "(A.2)", "derivations/attention.md",
        "cache.y is the softmax output and cache.axis the axis it normalised over. Return dx, "
        "the shape of dy.",
        _softmax_case, lambda c: {"rows": c["x"].shape[0], "n": c["x"].shape[1]},
        _softmax_outputs, (GRADCHECK, _softmax_gradcheck), locate.by_rows("row"),
        SOFTMAX_MISTAKES),
    Exercise(
        "attention_backward", "backward of causal scaled dot-product attention", "2",
        "minirnn.attention", ("attention_backward",), "(A.6)-(A.8)",
        "derivations/attention.md",
        "cache.P is the attention weights (masked entries are exactly 0); cache.q, "
        "cache.k, cache.v are the unscaled queries, keys and values; cache.scale is 1/sqrt(d). "
        "Return dq, dk, dv.",
        _attention_case, _qkv_sizes, _attention_outputs, (GRADCHECK, _attention_gradcheck),
        locate.by_rows("batch", "head", "row"), ATTENTION_MISTAKES),
    Exercise(
        "kv_cache_step", "decode with a KV cache: new tokens attend to cached keys and values",
        "2", "minirnn.attention", ("mha_step",), "(A.4) and (A.9)", "derivations/attention.md",
        "p is params and b holds the biases bq, bv, bo (0.0 where the layer has none); xs is x "
        "as (B, T_new, D), one token included. split_heads, merge_heads and attention_forward "
        "are imported; state is the KV cache (a new one when none was passed): "
        "state.append(k, v) stores keys and values, state.keys and state.values give all "
        "stored ones. Set y, the layer output for the new tokens, (B, T_new, D).",
        _kv_case, lambda c: {"B": 2, "prompt": 3, "then one at a time": 3, "D": 8, "h": 2},
        _kv_outputs, ("one token at a time equals the whole sequence at once", _kv_property),
        locate.by_positions(prompt=3), KV_MISTAKES),
    Exercise(
        "retention_recurrent", "retention one token at a time, with the state (S, z, s)", "2",
        "minirnn.retention", ("retention_recurrent",), "(R.7)", "derivations/retention.md",
        "q is already multiplied by 1/sqrt(d). S, z, s are the incoming state; gamma_S is gamma "
        "in the dtype of S (use gamma itself for the float64 count s). Omega (the output before "
        "the division by c), r, kappa (the row factors), S_all, z_all are allocated; the "
        "division of Omega by c after the loop is written.",
        _retention_case, _retention_sizes, _recurrent_outputs,
        ("two calls that carry the state equal one call", _recurrent_property),
        locate.by_time(axis=2, key="out", name="n"), RECURRENT_MISTAKES),
    Exercise(
        "retention_parallel_backward", "backward of normalised parallel retention", "3",
        "minirnn.retention", ("retention_parallel_backward",), "(R.9)-(R.10)",
        "derivations/retention.md",
        "c is the cache: c.q holds q / sqrt(d) (the scaled queries q'), c.k, c.v, c.R the "
        "scores, c.Gamma the decay mask (h, T, T) and c.kappa the row factors (h, T), c.r and "
        "c.c the row sums and normalisers, c.normalize the flag. "
        "score_normaliser_backward(dout, out, r, c) returns (dOmega, dr). Set dv, dq (the "
        "gradient of q': the code after yours multiplies it by c.scale = 1/sqrt(d)) and dk; the "
        "carried state's terms and the return are written.",
        _retention_case, _retention_sizes, _parallel_backward_outputs,
        (GRADCHECK, _parallel_backward_gradcheck), locate.by_rows("batch", "head", "row"),
        PARALLEL_BACKWARD_MISTAKES),
    Exercise(
        "retention_chunkwise", "retention chunk by chunk: inner part, cross part, carried state",
        "3", "minirnn.retention", ("chunk_decays", "retention_parallel",
                                   "retention_final_state", "retention_chunkwise"),
        "(R.4), (R.8)",
        "derivations/retention.md",
        "chunk_decays returns RetentionChunkDecays(Gamma, xi, zeta, kappa, s): Gamma (h, L, L) "
        "is decay_mask(gamma, L), computed for you; you compute p, xi, zeta, s (the global "
        "count of every row) and kappa (the row factors), each (h, L). retention_parallel "
        "computes the chunk's own part (Omega, r) for you; add the carried state's share "
        "(set carried, and update Omega and r). retention_final_state gets f = "
        "chunk_decays(...) and must set S, z, s. retention_chunkwise must fill outs, bounds and "
        "chunks, calling retention_parallel chunk after chunk and handing the state on.",
        _retention_case, _retention_sizes, _chunkwise_outputs,
        ("every chunk size gives the same outputs", _chunkwise_property),
        locate.by_chunks(), CHUNKWISE_MISTAKES),
    Exercise(
        "group_norm_backward", "backward of the per-head group norm of multi-scale retention",
        "2", "minirnn.msr", ("group_norm_backward", "standardize_backward"), "(M.4), (L.4)",
        "derivations/multiscale-retention.md",
        "cache.xhat is the standardised input, cache.sigma its standard deviation, shape "
        "(..., h, 1), cache.w the scale. group_norm_backward returns dx, dw, db and may call "
        "standardize_backward(dxhat, xhat, sigma), which you write too and which returns dx.",
        _group_norm_case, _group_norm_sizes, _group_norm_outputs,
        (GRADCHECK, _group_norm_gradcheck), locate.by_rows("example", "token", "head"),
        GROUP_NORM_MISTAKES),
)

EXERCISES += (
    Exercise(
        "gated_retention_recurrent", "gated retention one token at a time: a gate per token",
        "2", "minirnn.gated", ("gated_retention_recurrent",), "(GR.2)",
        "derivations/gated-retention.md",
        "q is already multiplied by 1/sqrt(d). S, z, s are the incoming state (s is (B, h), "
        "float64). alpha = exp(log_decay) is (B, h, T) in float64 and alpha_S the same in the "
        "dtype of S. Omega (the output before the division by c), r, kappa (the row factors), "
        "S_all, z_all, s_all are allocated; the division of Omega by c after the loop is "
        "written.",
        lambda rng: {k: v for k, v in decay_gradient_case(rng).items()
                     if k in ("q", "k", "v", "log_decay")},
        _gated_sizes, _gated_recurrent_outputs,
        ("two calls that carry the state equal one call", _gated_recurrent_property),
        locate.by_time(axis=2, key="out", name="n"), GATED_RECURRENT_MISTAKES),
    Exercise(
        "manhattan_decay_mask", "RMT's 2-D decay over the patch grid", "1 (warm-up)",
        "minirnn.vision", ("manhattan_decay_mask",), "(V.4)", "derivations/vision.md",
        "n_y and n_x are the grid's rows and columns, gammas the decays as a float64 array "
        "(h,). Set Gamma, shape (h, N, N) with N = n_y n_x, Gamma[i, n, m] = gammas[i] ** "
        "(distance of patches n and m on the grid); patches are in raster order "
        "(n = row * n_x + column).",
        _manhattan_case, lambda c: {"n_y": c["n_y"], "n_x": c["n_x"], "h": 2},
        _manhattan_outputs,
        ("equals the Kronecker product of the 1-D masks, and is symmetric",
         _manhattan_property),
        locate.by_rows("head", "token n"), MANHATTAN_MISTAKES),
    Exercise(
        "gated_decay_gradient", "the gradient of the gates from dq and dk", "3",
        "minirnn.gated", ("gated_decay_gradient",), "(GR.7)", "derivations/gated-retention.md",
        "q, dq, k, dk are (B, h, T, d) (q.dq is the same with or without the 1/sqrt(d) scale); "
        "log_decay holds the log-gates (B, h, T) and s the count s_n of every row (float64); "
        "final and dfinal are the returned state and its gradient (None when no later call "
        "used it), with fields S, z, s. Return dlog_decay (B, h, T), in the dtype of q, and "
        "ds_prev (B, h), the gradient of the incoming count.",
        decay_gradient_case, _gated_sizes, _decay_gradient_outputs,
        ("dlog_decay matches finite differences in the log-gates", _decay_gradient_fd),
        locate.by_time(axis=2, key="dlog_decay", backward=True, name="t"),
        DECAY_GRADIENT_MISTAKES),
)

BY_NAME = {e.name: e for e in EXERCISES}


def mistake_count(name: str) -> int:
    """How many mistakes the grader names for exercise ``name``."""
    return len(CHUNKWISE_MISTAKES) if name == PROPERTY_EXERCISE else len(BY_NAME[name].mistakes)


__all__ = ["BY_NAME", "EXERCISES", "PROPERTY_EXERCISE", "Exercise", "Mistake", "mistake_count"]
