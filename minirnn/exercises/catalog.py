"""The exercises: what to implement, the test cases, where to look, and the known mistakes.

Each exercise names the library functions that hold its solution regions, a ``make`` that
builds test case ``i`` (inputs *and* upstream gradients; the cases vary every input the stub
accepts: axes, ``normalize``, chunk sizes that do and do not divide ``T``, a carried state or
none), an ``outputs`` that runs a module's version of the functions on a case and returns named
arrays (every returned array, every field of a returned state, and the gradients the library's
own backward computes from the cache the student's forward stored), a ``second`` check (a
gradient check, or a property every correct answer has), a ``locate`` that says where a wrong
output first goes wrong, the ``helpers`` graded on their own, and the catalogued mistakes
(``mistakes.CATALOGUE``, keyed by id). The grader compares numbers, never source text.

The example sizes are chosen so that every factor a slip can introduce is distinct: 2, B, h,
sqrt(d), T and 1/T never coincide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import attention as att
from .. import delta, gated, gru, lstm, minrnn, msr, retention, rnn
from .._checks.core import trusted
from ..gradcheck import check_gradients, rel_error
from ..states import DeltaState, GatedState, GatedStateGrad, RetentionStateGrad
from . import locate
from .mistake import Mistake
from .mistakes import CATALOGUE

PROPERTY_EXERCISE = "write_a_property"
N_CASES = 3


@dataclass(frozen=True, kw_only=True)
class Exercise:
    """One exercise (see the module docstring for what each field does)."""

    name: str
    goal: str
    difficulty: str
    module: str
    functions: tuple
    equations: str
    page: str
    given: str                            # what the stub already computes, and what to return
    make: Callable = None                 # (rng, i) -> case i (dict)
    sizes: Callable = None                # case -> {"B": 3, ...}, shown at the top of a report
    outputs: Callable = None              # (module, case) -> {name: array}
    second: tuple = ()                    # (check name, (module, case) -> (ok, message))
    locate: Callable = None               # (student outputs, correct outputs, case) -> str
    helpers: dict = field(default_factory=dict)   # function -> (module, case) -> {name: array}
    kind: str = "code"                    # "code", or "property" (the student writes a test)

    @property
    def mistakes(self) -> tuple[Mistake, ...]:
        return CATALOGUE[self.name]

    def mistake(self, key: str) -> Mistake:
        """The catalogued mistake with id ``key``."""
        for m in self.mistakes:
            if m.id == key:
                return m
        raise KeyError(f"{self.name} has no mistake {key!r}")


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


def _from_cache(backward, names, dout, cache, *extra):
    """The library's backward run on the cache a student's forward stored: wrong arrays in the
    cache give wrong gradients, although the forward's outputs may be right."""
    try:
        with trusted(), np.errstate(all="ignore"):
            grads = backward(dout, cache, *extra)
    except Exception:                     # a cache the backward cannot read: all NaN
        return {f"the backward from your cache: {n}": np.full(1, np.nan) for n in names}
    return {f"the backward from your cache: {n}": np.asarray(grad, dtype=float)
            for n, grad in zip(names, grads) if grad is not None}


# --- the RNN ------------------------------------------------------------------------------------

def _rnn_case(rng, T):
    B, D, H = 3, 7, 5
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

SOFTMAX_AXES = (-1, 0, 1)


def _softmax_case(rng, i=0):
    return {"x": 2 * rng.standard_normal((2, 3, 5)), "dy": rng.standard_normal((2, 3, 5)),
            "axis": SOFTMAX_AXES[i % 3]}


def _softmax_outputs(mod, c):
    _, cache = att.softmax_forward(c["x"], axis=c["axis"])
    return {"dx": mod.softmax_backward(c["dy"], cache)}


def _softmax_gradcheck(mod, c):
    ok, msg = True, []
    for axis in (-1, 1):
        good, text = _gradcheck(lambda x, a=axis: att.softmax_forward(x, axis=a),
                                mod.softmax_backward, {"x": c["x"]})
        ok, msg = ok and good, [*msg, f"axis={axis}: {text}"]
    return ok, "\n".join(msg)


QKV = {"B": 3, "h": 4, "d": 25, "dv": 6}     # 2, B, h, sqrt(d), T and 1/T all distinct


def _attention_case(rng, i=0):
    B, h, d, dv, T = QKV["B"], QKV["h"], QKV["d"], QKV["dv"], 7
    return {"q": rng.standard_normal((B, h, T, d)), "k": rng.standard_normal((B, h, T, d)),
            "v": rng.standard_normal((B, h, T, dv)), "dout": rng.standard_normal((B, h, T, dv)),
            "causal": i != 1}                                  # case 1: no mask


def _qkv_sizes(c):
    B, h, T, d = c["q"].shape
    return {"B": B, "h": h, "T": T, "d": d, "dv": c["v"].shape[-1]}


def _attention_outputs(mod, c):
    _, cache = att.attention_forward(c["q"], c["k"], c["v"], causal=c["causal"])
    dq, dk, dv = mod.attention_backward(c["dout"], cache)
    return {"dq": dq, "dk": dk, "dv": dv}


def _attention_gradcheck(mod, c):
    small = {k: c[k][:1, :2, :5, :4] for k in "qkv"}     # one example, two heads: quick
    return _gradcheck(att.attention_forward, mod.attention_backward, small)


def _kv_case(rng, i=0):
    params = att.init_mha_params(12, 4, seed=int(rng.integers(1000)))
    params.update({b: 0.3 * rng.standard_normal(12) for b in ("bq", "bv", "bo")})
    return {"x": rng.standard_normal((5, 7, 12)), "params": params}


def _kv_outputs(mod, c):
    x, p = c["x"], c["params"]
    y1, cache = mod.mha_step(x[:, :4], p, 4)                         # a prompt of 4 tokens
    steps = [mod.mha_step(x[:, t], p, 4, cache)[0][:, None] for t in range(4, 7)]
    return {"outputs (prompt, then one token at a time)": np.concatenate([y1, *steps], axis=1)}


def _kv_property(mod, c):
    """Decoding one token at a time equals the same tokens as one prompt."""
    x, p = c["x"], c["params"]
    whole, _ = mod.mha_step(x, p, 4)
    cache, pieces = None, []
    for t in range(x.shape[1]):
        y, cache = mod.mha_step(x[:, t], p, 4, cache)
        pieces.append(y[:, None])
    err = rel_error(np.concatenate(pieces, axis=1), whole)
    return err < 1e-8, f"one token at a time vs all at once: relative difference {err:.1e}"


# --- retention ------------------------------------------------------------------------------------

# case i: (T, chunk size, a carried state?, normalize): chunk sizes that do and do not divide T
RETENTION_VARIANTS = ((7, 3, False, True), (6, 4, True, True), (6, 2, True, False))


def _retention_case(rng, i=0):
    T, C, with_state, normalize = RETENTION_VARIANTS[i % 3]
    B, h, d, dv = QKV["B"], QKV["h"], QKV["d"], QKV["dv"]
    q = rng.standard_normal((B, h, T, d))
    q[:, :, 4:] *= 3.0                     # some rows with |r| > 1, so the clamp matters
    case = {"q": q, "k": rng.standard_normal((B, h, T, d)), "v": rng.standard_normal((B, h, T, dv)),
            "gamma": np.array([0.6, 0.8, 0.9, 0.97]), "dout": rng.standard_normal((B, h, T, dv)),
            "chunk_size": C, "normalize": normalize, "state": None}
    if with_state:                          # the state after 3 earlier tokens
        before = [rng.standard_normal((B, h, 3, n)) for n in (d, d, dv)]
        case["state"] = retention.retention_recurrent(*before, case["gamma"])[1]
    # the gradient a later call sent back to the returned state (none in case 0)
    case["dstate"] = None if i % 3 == 0 else RetentionStateGrad(
        rng.standard_normal((B, h, d, dv)), rng.standard_normal((B, h, d)))
    return case


def _retention_sizes(c):
    """The first case's sizes; the chunk size is shown as text, so it is never taken for a
    factor (the other cases use other chunk sizes, a carried state and normalize=False)."""
    return {**_qkv_sizes(c), "gamma": c["gamma"].tolist(), "chunk_size": str(c["chunk_size"])}


def _state(prefix, state):
    return {f"{prefix}.{f}": None if getattr(state, f, None) is None else
            np.asarray(getattr(state, f), dtype=float) for f in ("S", "z", "s", "position")}


def _parallel_backward_outputs(mod, c):
    _, _, cache = retention.retention_parallel(c["q"], c["k"], c["v"], c["gamma"], c["state"],
                                               c["normalize"])
    dq, dk, dv, prev = mod.retention_parallel_backward(c["dout"], cache, c["dstate"])
    return {"dq": dq, "dk": dk, "dv": dv, "dstate_prev.S": getattr(prev, "S", None),
            "dstate_prev.z": getattr(prev, "z", None)}


def _parallel_backward_gradcheck(mod, c):
    small = {k: c[k][:1, :2, :5, :4] for k in "qkv"}      # one example, two heads: quick
    return _gradcheck(lambda q, k, v: retention.retention_parallel(q, k, v, c["gamma"][:2]),
                      mod.retention_parallel_backward, small)


def _recurrent_outputs(mod, c):
    out, state, cache = mod.retention_recurrent(c["q"], c["k"], c["v"], c["gamma"], c["state"],
                                                c["normalize"])
    return {"out": out, **_state("state", state),
            **_from_cache(retention.retention_recurrent_backward, ("dq", "dk", "dv"),
                          c["dout"], cache)}


def _split_property(run, T, n=3):
    """Two calls that carry the state against one call: (ok, message). ``run(rows, state)``
    runs the student's function on the tokens ``rows``."""
    whole, final, _ = run(slice(None), None)
    first, state, _ = run(slice(0, n), None)
    rest, end, _ = run(slice(n, None), state)
    err = rel_error(np.concatenate([first, rest], axis=2), whole)
    err_state = max(rel_error(getattr(end, f), getattr(final, f)) for f in ("S", "z", "s"))
    return max(err, err_state) < 1e-8, f"tokens 0-{n - 1}, then {n}-{T - 1} from the returned " \
        f"state, vs one call: outputs differ by {err:.1e}, final states by {err_state:.1e}"


def _recurrent_property(mod, c):
    """Two calls that carry the state equal one call over the whole sequence."""
    def run(rows, state):
        return mod.retention_recurrent(c["q"][:, :, rows], c["k"][:, :, rows],
                                       c["v"][:, :, rows], c["gamma"], state)
    return _split_property(run, c["q"].shape[2])


def _chunkwise_outputs(mod, c):
    out, state, cache = mod.retention_chunkwise(c["q"], c["k"], c["v"], c["gamma"],
                                                chunk_size=c["chunk_size"], state=c["state"],
                                                normalize=c["normalize"])
    return {"out": out, **_state("state", state),
            **_from_cache(retention.retention_chunkwise_backward, ("dq", "dk", "dv"),
                          c["dout"], cache)}


def _chunkwise_property(mod, c):
    """Every chunk size gives the same outputs and final state."""
    q, k, v, gamma = c["q"], c["k"], c["v"], c["gamma"]
    T = q.shape[2]
    runs = {C: mod.retention_chunkwise(q, k, v, gamma, chunk_size=C)[:2] for C in (1, 2, 3, T)}
    errs = {C: max(rel_error(o, runs[T][0]),
                   *(rel_error(getattr(s, f), getattr(runs[T][1], f)) for f in ("S", "z", "s")))
            for C, (o, s) in runs.items() if C != T}
    ok = max(errs.values()) < 1e-8
    return ok, f"chunk sizes 1, 2 and 3 against one chunk of {T} (outputs and final state): " \
        "relative differences " + ", ".join(f"{e:.1e}" for e in errs.values())


def _chunk_decays_helper(mod, c):
    s_prev = np.zeros(c["gamma"].shape) if c["state"] is None else c["state"].s
    f = mod.chunk_decays(c["gamma"], c["chunk_size"], s_prev, c["normalize"])
    return {f"chunk_decays {n}": getattr(f, n) for n in ("xi", "zeta", "kappa", "s")}


def _final_state_helper(mod, c):
    return _state("retention_final_state", mod.retention_final_state(c["k"], c["v"], c["gamma"],
                                                                     c["state"]))


def _parallel_helper(mod, c):
    out, state, _ = mod.retention_parallel(c["q"], c["k"], c["v"], c["gamma"], c["state"],
                                           c["normalize"])
    return {"retention_parallel out": out, **_state("retention_parallel state", state)}


# --- gated retention ----------------------------------------------------------------------------

def _gated_case(rng, i=0):
    """A problem with (or without) a carried state in, and a returned state's gradient out."""
    T, _, with_state, normalize = RETENTION_VARIANTS[i % 3]
    B, h, d, dv = QKV["B"], QKV["h"], QKV["d"], QKV["dv"]
    log_decay = -rng.exponential(0.4, (B, h, T))
    log_decay[0, 0, 2], log_decay[1, 1, 4] = 0.0, -6.0        # open and nearly closed
    state = GatedState(rng.standard_normal((B, h, d, dv)), rng.standard_normal((B, h, d)),
                       1.0 + rng.random((B, h)), 5) if with_state else None
    return {"q": rng.standard_normal((B, h, T, d)), "k": rng.standard_normal((B, h, T, d)),
            "v": rng.standard_normal((B, h, T, dv)), "log_decay": log_decay,
            "dout": rng.standard_normal((B, h, T, dv)), "state": state, "normalize": normalize,
            "dfinal": None if i == 0 else                     # case 0: no later call
            GatedStateGrad(rng.standard_normal((B, h, d, dv)), rng.standard_normal((B, h, d)),
                           rng.standard_normal((B, h)))}


def _gated_recurrent_outputs(mod, c):
    out, state, cache = mod.gated_retention_recurrent(c["q"], c["k"], c["v"], c["log_decay"],
                                                      c["state"], c["normalize"])
    return {"out": out, **_state("state", state),
            **_from_cache(gated.gated_retention_recurrent_backward,
                          ("dq", "dk", "dv", "dlog_decay"), c["dout"], cache, c["dfinal"])}


def _gated_recurrent_property(mod, c):
    """Two calls that carry the state equal one call over the whole sequence."""
    def run(rows, state):
        return mod.gated_retention_recurrent(c["q"][:, :, rows], c["k"][:, :, rows],
                                             c["v"][:, :, rows], c["log_decay"][..., rows], state)
    return _split_property(run, c["q"].shape[2])


def _decay_gradient_inputs(c):
    """q, dq, k, dk, log_decay, s, final, dfinal of the case, from the library (right)."""
    state = c["state"]
    if state is None:
        B, h, _, d = c["q"].shape
        state = GatedState.zeros(B, h, d, c["v"].shape[-1])
    _, final, cache = gated.gated_retention_recurrent(c["q"], c["k"], c["v"], c["log_decay"],
                                                      state, c["normalize"])
    dq, dk, _, _, _ = gated.gated_retention_recurrent_backward(c["dout"], cache, c["dfinal"])
    given = c["dfinal"] is not None                 # no later call: neither final nor dfinal
    return c["q"], dq, c["k"], dk, c["log_decay"], cache.s, final if given else None, c["dfinal"]


def _decay_gradient_outputs(mod, c):
    dg, ds_prev = mod.gated_decay_gradient(*_decay_gradient_inputs(c), normalize=c["normalize"])
    return {"dlog_decay": dg, "ds_prev": ds_prev}


def _decay_gradient_fd(mod, c):
    """The student's dlog_decay against central differences of the loss in the log-gates."""
    from ..gradcheck import numerical_gradient

    B, h, _, dk_ = c["q"].shape
    d = c["dfinal"] or GatedStateGrad(np.zeros((B, h, dk_, c["v"].shape[-1])),
                                      np.zeros((B, h, dk_)), np.zeros((B, h)))
    state = c["state"] if c["state"] is not None else GatedState(
        np.zeros_like(d.S), np.zeros_like(d.z), np.zeros_like(d.s), 0)

    def loss(log_decay):
        out, final, _ = gated.gated_retention_recurrent(c["q"], c["k"], c["v"], log_decay,
                                                        state, c["normalize"])
        return np.asarray(np.sum(out * c["dout"]) + np.sum(final.S * d.S)
                          + np.sum(final.z * d.z) + np.sum(final.s * d.s))

    log_decay = np.minimum(c["log_decay"], -1e-3)         # central differences stay in g <= 0
    case = {**c, "log_decay": log_decay, "state": state}
    got = mod.gated_decay_gradient(*_decay_gradient_inputs(case), normalize=c["normalize"])[0]
    want = numerical_gradient(loss, log_decay, np.array(1.0))
    err = rel_error(np.asarray(got, dtype=float), want)
    return err < 1e-6, f"dlog_decay against central differences: relative error {err:.1e} "\
                       "(must be below 1e-06)"


# --- the Manhattan decay -----------------------------------------------------------------------

def _manhattan_case(rng, i=0):
    n_y, n_x = ((3, 5), (4, 3), (1, 6))[i % 3]
    return {"n_y": n_y, "n_x": n_x, "gamma": np.round(rng.uniform(0.3, 0.95, 4), 2)}


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

def _group_norm_case(rng, i=0):
    return {"x": rng.standard_normal((3, 5, 4, 7)), "w": 1 + 0.3 * rng.standard_normal((4, 7)),
            "b": 0.3 * rng.standard_normal((4, 7)), "dy": rng.standard_normal((3, 5, 4, 7))}


def _group_norm_sizes(c):
    B, T, h, dv = c["x"].shape
    return {"B": B, "T": T, "h": h, "dv": dv}


def _group_norm_outputs(mod, c):
    _, cache = msr.group_norm_forward(c["x"], c["w"], c["b"])
    dx, dw, db = mod.group_norm_backward(c["dy"], cache)
    return {"dx": dx, "dw": dw, "db": db}


def _standardize_helper(mod, c):
    _, cache = msr.group_norm_forward(c["x"], c["w"], c["b"])
    return {"standardize_backward dx": mod.standardize_backward(c["dy"], cache.xhat,
                                                                cache.sigma)}


def _group_norm_gradcheck(mod, c):
    def backward(dy, cache):
        dx, dw, db = mod.group_norm_backward(dy, cache)
        return dx, {"w": dw, "b": db}

    return _gradcheck(lambda x, params: msr.group_norm_forward(x, params["w"], params["b"]),
                      backward, {"x": c["x"][:1, :2]}, {"w": c["w"], "b": c["b"]})


# --- the delta rule ------------------------------------------------------------------------------

# case i: (T, gated?, a carried state?, an explicit output scale)
DELTA_VARIANTS = ((7, False, False, None), (6, True, True, None), (6, True, False, 0.5))


def _delta_case(rng, i=0):
    T, gates, with_state, scale = DELTA_VARIANTS[i % 3]
    B, h, d, dv = QKV["B"], QKV["h"], QKV["d"], QKV["dv"]
    k = rng.standard_normal((B, h, T, d))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)             # unit keys, as DeltaNet's
    return {"q": rng.standard_normal((B, h, T, d)), "k": k, "v": rng.standard_normal((B, h, T, dv)),
            "beta": rng.uniform(0.1, 1.9, (B, h, T)),
            "log_decay": -rng.exponential(0.4, (B, h, T)) if gates else None,
            "state": DeltaState(rng.standard_normal((B, h, d, dv)), 3) if with_state else None,
            "scale": scale, "dout": rng.standard_normal((B, h, T, dv))}


def _delta_sizes(c):
    return {**_qkv_sizes(c), "gates": "none (then per token)", "scale": "1/sqrt(d) (then 0.5)"}


def _delta_recurrent_outputs(mod, c):
    out, state, cache = mod.delta_rule_recurrent(c["q"], c["k"], c["v"], c["beta"],
                                                 c["log_decay"], c["state"], c["scale"])
    return {"out": out, "state.S": state.S,
            **_from_cache(delta.delta_rule_recurrent_backward,
                          ("dq", "dk", "dv", "dbeta", "dlog_decay"), c["dout"], cache)}


def _delta_recurrent_property(mod, c):
    """Two calls that carry the state equal one call; the parallel form agrees."""
    q, k, v, beta, log_decay = c["q"], c["k"], c["v"], c["beta"], c["log_decay"]
    whole, final, _ = mod.delta_rule_recurrent(q, k, v, beta, log_decay)

    def cut(x, rows):
        return None if x is None else x[:, :, rows]
    first, state, _ = mod.delta_rule_recurrent(*(cut(x, slice(0, 3)) for x in (q, k, v)),
                                               beta[..., :3], cut(log_decay, slice(0, 3)))
    rest, end, _ = mod.delta_rule_recurrent(*(cut(x, slice(3, None)) for x in (q, k, v)),
                                            beta[..., 3:], cut(log_decay, slice(3, None)), state)
    err = rel_error(np.concatenate([first, rest], axis=2), whole)
    err_state = rel_error(end.S, final.S)
    par = rel_error(whole, delta.delta_rule_parallel(q, k, v, beta, log_decay)[0])
    worst = max(err, err_state, par)
    return worst < 1e-8, f"two calls vs one: outputs {err:.1e}, final states {err_state:.1e}; " \
        f"against the parallel form: {par:.1e}"


def _transform_outputs(mod, c):
    f = mod.delta_chunk_transform(c["k"], c["v"], c["beta"], c["log_decay"])
    return {"T_c": f.T_c, "W": f.W, "U": f.U, "M": f.M}


def _transform_property(mod, c):
    """U - W S_prev are the corrections u_t the recurrent form writes after S_prev."""
    B, h, _, d = c["k"].shape
    S_prev = c["state"].S if c["state"] is not None else \
        np.random.default_rng(1).standard_normal((B, h, d, c["v"].shape[-1]))
    f = mod.delta_chunk_transform(c["k"], c["v"], c["beta"], c["log_decay"])
    _, _, cache = delta.delta_rule_recurrent(c["q"], c["k"], c["v"], c["beta"], c["log_decay"],
                                             DeltaState(S_prev, 0))
    err = rel_error(np.asarray(f.U) - np.asarray(f.W) @ S_prev, cache.u)
    return err < 1e-8, f"U - W S_prev against the recurrent form's corrections u_t: relative " \
        f"difference {err:.1e}"


# --- the LSTM and the GRU -----------------------------------------------------------------------

def _gated_rnn_case(rng, gates, i=0):
    """Case i of an LSTM (gates=4) or GRU (gates=3) step: the biases, the incoming state and
    the scale of the inputs vary, so that every gate is away from 1/2 and every block differs."""
    B, D, H = 3, 7, 5
    seed = int(rng.integers(1000))
    if gates == 4:
        params = lstm.init_lstm_params(D, H, seed=seed)
        params["b"] = params["b"] + 0.4 * rng.standard_normal(4 * H)
    else:
        params = gru.init_gru_params(D, H, seed=seed)
        params["bx"] = 0.4 * rng.standard_normal(3 * H)
        params["bh"] = 0.4 * rng.standard_normal(3 * H)
    scale = (0.5, 1.0, 0.8)[i % 3]
    return {"x": scale * rng.standard_normal((B, D)), "h_prev": scale * rng.standard_normal((B, H)),
            "c_prev": rng.standard_normal((B, H)), "params": params,
            "dh": rng.standard_normal((B, H)), "dc": rng.standard_normal((B, H))}


def _gated_rnn_sizes(c):
    return {"B": c["x"].shape[0], "D": c["x"].shape[1], "H": c["h_prev"].shape[1]}


def _lstm_step_outputs(mod, c):
    _, _, cache = lstm.lstm_step_forward(c["x"], c["h_prev"], c["c_prev"], c["params"])
    dx, dh_prev, dc_prev, grads = mod.lstm_step_backward(c["dh"], c["dc"], cache)
    return {"dx": dx, "dh_prev": dh_prev, "dc_prev": dc_prev, **_grads("grads", grads)}


def _lstm_step_gradcheck(mod, c):
    def forward(x, h_prev, c_prev, params):
        h, cell, cache = lstm.lstm_step_forward(x, h_prev, c_prev, params)
        return np.concatenate([h, cell], axis=1), cache

    def backward(dout, cache):
        H = dout.shape[1] // 2
        return mod.lstm_step_backward(dout[:, :H], dout[:, H:], cache)
    return _gradcheck(forward, backward, {"x": c["x"], "h_prev": c["h_prev"],
                                          "c_prev": c["c_prev"]}, c["params"])


def _gru_step_outputs(mod, c):
    _, cache = gru.gru_step_forward(c["x"], c["h_prev"], c["params"], "after")
    dx, dh_prev, grads = mod.gru_step_backward(c["dh"], cache)
    return {"dx": dx, "dh_prev": dh_prev, **_grads("grads", grads)}


def _gru_step_gradcheck(mod, c):
    def forward(x, h_prev, params):
        return gru.gru_step_forward(x, h_prev, params, "after")
    return _gradcheck(forward, mod.gru_step_backward, {"x": c["x"], "h_prev": c["h_prev"]},
                      c["params"])


# --- the linear scan of minGRU and minLSTM -----------------------------------------------------

SCAN_VARIANTS = ((6, 4, False), (7, 3, True), (5, 2, True))     # T, H, h0 given


def _scan_case(rng, i=0):
    """Gates near 1 (g = 0) and near 0 (g = -30) among the rest; h0 zero in case 0 only."""
    T, H, with_h0 = SCAN_VARIANTS[i % 3]
    B = 3
    log_decay = -rng.exponential(0.5, (B, T, H))
    log_decay[0, 1, 0], log_decay[1, 3, H - 1], log_decay[2, 0, 1] = 0.0, -30.0, -1e-9
    h0 = rng.standard_normal((B, H)) if with_h0 else np.zeros((B, H))
    return {"log_decay": log_decay, "u": rng.standard_normal((B, T, H)), "h0": h0,
            "dh": rng.standard_normal((B, T, H))}


def _scan_sizes(c):
    B, T, H = c["u"].shape
    return {"B": B, "T": T, "H": H, "h0": "given" if np.any(c["h0"]) else "zero"}


def _scan_outputs(mod, c):
    h, cache = mod.linear_scan_parallel(c["log_decay"], c["u"], c["h0"])
    return {"h": h, **_from_cache(minrnn.linear_scan_parallel_backward,
                                  ("dlog_decay", "du", "dh0"), c["dh"], cache)}


def _scan_property(mod, c):
    """Two calls, the second starting from the first's last state, equal one call."""
    log_decay, u, h0, n = c["log_decay"], c["u"], c["h0"], 3
    whole, _ = mod.linear_scan_parallel(log_decay, u, h0)
    first, _ = mod.linear_scan_parallel(log_decay[:, :n], u[:, :n], h0)
    rest, _ = mod.linear_scan_parallel(log_decay[:, n:], u[:, n:], np.asarray(first)[:, -1])
    err = rel_error(np.concatenate([first, rest], axis=1), whole)
    T = u.shape[1]
    return err < 1e-10, f"steps 0-{n - 1}, then {n}-{T - 1} from h_{n - 1} as h0, vs one " \
        f"call: h differs by {err:.1e}"


GRADCHECK = "gradient matches finite differences (every input and parameter)"
SPLIT = "two calls that carry the state equal one call (outputs and final state)"

EXERCISES = (
    Exercise(
        name="rnn_step_backward", goal="backward of one Elman RNN step",
        difficulty="1 (warm-up)", module="minirnn.rnn", functions=("rnn_step_backward",),
        equations="(RNN.4)-(RNN.6)", page="derivations/rnn.md",
        given="cache holds x, h_prev, h = tanh(a), Wx and Wh of the forward step. Return dx, "
              "dh_prev and grads, a dict with keys 'Wx', 'Wh', 'b'.",
        make=lambda rng, i=0: _rnn_case(rng, 1), sizes=_rnn_sizes, outputs=_rnn_step_outputs,
        second=(GRADCHECK, _rnn_step_gradcheck), locate=locate.by_rows("example")),
    Exercise(
        name="rnn_backward", goal="backpropagation through time for a whole sequence",
        difficulty="2", module="minirnn.rnn", functions=("rnn_backward",),
        equations="(RNN.3)-(RNN.6)", page="derivations/rnn.md",
        given="cache.h holds every hidden state (h[:, t] is the state after x[:, t]), cache.h0 "
              "the state before the first step, cache.x, cache.Wx, cache.Wh. h = cache.h is "
              "set for you, and da, an array of the shape of h (its values are not set) for "
              "the da_t of every step. Return dx, dh0 and grads with keys 'Wx', 'Wh', 'b'.",
        make=lambda rng, i=0: _rnn_case(rng, 6), sizes=_rnn_sizes, outputs=_rnn_outputs,
        second=(GRADCHECK, _rnn_gradcheck),
        locate=locate.by_time(axis=1, backward=True, key="dx")),
    Exercise(
        name="softmax_backward", goal="the softmax Jacobian-vector product",
        difficulty="1 (warm-up)", module="minirnn.attention", functions=("softmax_backward",),
        equations="(A.2)", page="derivations/attention.md",
        given="cache.y is the softmax output and cache.axis the axis it normalised over (any "
              "axis, not only the last). Return dx, the shape of dy.",
        make=_softmax_case,
        sizes=lambda c: {"shape": "x".join(map(str, c["x"].shape)), "axis": str(c["axis"])},
        outputs=_softmax_outputs, second=(GRADCHECK, _softmax_gradcheck),
        locate=locate.by_rows("example", "row")),
    Exercise(
        name="attention_backward", goal="backward of causal scaled dot-product attention",
        difficulty="2", module="minirnn.attention", functions=("attention_backward",),
        equations="(A.6)-(A.8)", page="derivations/attention.md",
        given="cache.P is the attention weights (masked entries are exactly 0); cache.q, "
              "cache.k, cache.v are the unscaled queries, keys and values; cache.scale is "
              "1/sqrt(d). Return dq, dk, dv.",
        make=_attention_case, sizes=_qkv_sizes, outputs=_attention_outputs,
        second=(GRADCHECK, _attention_gradcheck), locate=locate.by_rows("batch", "head", "row")),
    Exercise(
        name="kv_cache_step",
        goal="decode with a KV cache: new tokens attend to cached keys and values",
        difficulty="2", module="minirnn.attention", functions=("mha_step",),
        equations="(A.4) and (A.9)", page="derivations/attention.md",
        given="p is params and b holds the biases bq, bv, bo (0.0 where the layer has none); xs "
              "is x as (B, T_new, D), one token included. split_heads, merge_heads and "
              "attention_forward are imported; state is the KV cache (a new one when none was "
              "passed): state.append(k, v) stores keys and values, state.keys and state.values "
              "give all stored ones. Set y, the layer output for the new tokens, (B, T_new, D).",
        make=_kv_case, sizes=lambda c: {"B": 5, "D": 12, "h": 4, "d": 3,
                                        "tokens": "a prompt of 4, then 3 one at a time"},
        outputs=_kv_outputs,
        second=("one token at a time equals the whole sequence at once", _kv_property),
        locate=locate.by_positions(prompt=4)),
    Exercise(
        name="retention_recurrent",
        goal="retention one token at a time, with the state (S, z, s)", difficulty="2",
        module="minirnn.retention", functions=("retention_recurrent",), equations="(R.7)",
        page="derivations/retention.md",
        given="q is already multiplied by 1/sqrt(d) (by 1 when normalize=False). S, z, s are "
              "the incoming state; gamma_S is gamma in the dtype of S (use gamma itself for the "
              "float64 count s). Omega (the output before the division by c), r, kappa (the "
              "row factors, all ones unless you set them), S_all, z_all are allocated and must "
              "be filled: the backward reads them; the division of Omega by c after the loop "
              "is written.",
        make=_retention_case, sizes=_retention_sizes, outputs=_recurrent_outputs,
        second=(SPLIT, _recurrent_property), locate=locate.by_time(axis=2, key="out", name="n")),
    Exercise(
        name="retention_parallel_backward", goal="backward of normalised parallel retention",
        difficulty="3", module="minirnn.retention", functions=("retention_parallel_backward",),
        equations="(R.9)-(R.10)", page="derivations/retention.md",
        given="c is the cache: c.q holds q / sqrt(d) (the scaled queries q'), c.k, c.v, c.R "
              "the scores, c.Gamma the decay mask (h, T, T) and c.kappa the row factors (h, T), "
              "c.r and c.c the row sums and normalisers, c.normalize the flag. "
              "score_normaliser_backward(dout, out, r, c) returns (dOmega, dr). Set dv, dq (the "
              "gradient of q': the code after yours multiplies it by c.scale = 1/sqrt(d)) and "
              "dk; the carried state's terms and the return are written.",
        make=_retention_case, sizes=_retention_sizes, outputs=_parallel_backward_outputs,
        second=(GRADCHECK, _parallel_backward_gradcheck),
        locate=locate.by_rows("batch", "head", "row")),
    Exercise(
        name="retention_chunkwise",
        goal="retention chunk by chunk: inner part, cross part, carried state", difficulty="3",
        module="minirnn.retention",
        functions=("chunk_decays", "retention_parallel", "retention_final_state",
                   "retention_chunkwise"),
        equations="(R.4), (R.8)", page="derivations/retention.md",
        given="chunk_decays returns RetentionChunkDecays(Gamma, xi, zeta, kappa, s): Gamma "
              "(h, L, L) is decay_mask(gamma, L), computed for you; you compute p, xi, zeta, s "
              "(the global count of every row) and kappa (the row factors), each (h, L). "
              "retention_parallel computes the chunk's own part (Omega, r) for you; add the "
              "carried state's share (set carried, and update Omega and r). "
              "retention_final_state gets f = chunk_decays(...) and must set S, z, s. "
              "retention_chunkwise must fill outs, bounds and chunks, calling retention_parallel "
              "chunk after chunk and handing the state on.",
        make=_retention_case, sizes=_retention_sizes, outputs=_chunkwise_outputs,
        second=("every chunk size gives the same outputs and final state", _chunkwise_property),
        locate=locate.by_chunks(),
        helpers={"chunk_decays": _chunk_decays_helper,
                 "retention_final_state": _final_state_helper,
                 "retention_parallel": _parallel_helper}),
    Exercise(
        name="group_norm_backward",
        goal="backward of the per-head group norm of multi-scale retention", difficulty="2",
        module="minirnn.msr", functions=("group_norm_backward", "standardize_backward"),
        equations="(M.4), (L.4)", page="derivations/multiscale-retention.md",
        given="cache.xhat is the standardised input, cache.sigma its standard deviation, shape "
              "(..., h, 1), cache.w the scale. group_norm_backward returns dx, dw, db and may "
              "call standardize_backward(dxhat, xhat, sigma), which you write too and which "
              "returns dx.",
        make=_group_norm_case, sizes=_group_norm_sizes, outputs=_group_norm_outputs,
        second=(GRADCHECK, _group_norm_gradcheck),
        locate=locate.by_rows("example", "token", "head"),
        helpers={"standardize_backward": _standardize_helper}),
    Exercise(
        name="gated_retention_recurrent",
        goal="gated retention one token at a time: a gate per token", difficulty="2",
        module="minirnn.gated", functions=("gated_retention_recurrent",), equations="(GR.2)",
        page="derivations/gated-retention.md",
        given="q is already multiplied by 1/sqrt(d) (by 1 when normalize=False). S, z, s are "
              "the incoming state (s is (B, h), float64). alpha = exp(log_decay) is (B, h, T) "
              "in float64 and alpha_S the same in the dtype of S. Omega (the output before the "
              "division by c), r, kappa (the row factors, all ones unless you set them), "
              "S_all, z_all, s_all are allocated and must be filled: the backward reads them; "
              "the division of Omega by c after the loop is written.",
        make=_gated_case, sizes=_qkv_sizes, outputs=_gated_recurrent_outputs,
        second=(SPLIT, _gated_recurrent_property),
        locate=locate.by_time(axis=2, key="out", name="n")),
    Exercise(
        name="manhattan_decay_mask", goal="RMT's 2-D decay over the patch grid",
        difficulty="1 (warm-up)", module="minirnn.vision", functions=("manhattan_decay_mask",),
        equations="(V.4)", page="derivations/vision.md",
        given="n_y and n_x are the grid's rows and columns, gammas the decays as a float64 "
              "array (h,). Set Gamma, shape (h, N, N) with N = n_y n_x, Gamma[i, n, m] = "
              "gammas[i] ** (distance of patches n and m on the grid); patches are in raster "
              "order (n = row * n_x + column).",
        make=_manhattan_case, sizes=lambda c: {"n_y": c["n_y"], "n_x": c["n_x"], "h": 4},
        outputs=_manhattan_outputs,
        second=("equals the Kronecker product of the 1-D masks, and is symmetric",
                _manhattan_property),
        locate=locate.by_rows("head", "patch n")),
    Exercise(
        name="gated_decay_gradient", goal="the gradient of the gates from dq and dk",
        difficulty="3", module="minirnn.gated", functions=("gated_decay_gradient",),
        equations="(GR.7)", page="derivations/gated-retention.md",
        given="q, dq, k, dk are (B, h, T, d) (q.dq is the same with or without the 1/sqrt(d) "
              "scale); log_decay holds the log-gates (B, h, T) and s the count s_n of every row "
              "(float64); final and dfinal are the returned state and its gradient (None when "
              "no later call used it), with fields S, z, s; normalize says whether the forward "
              "divided by sqrt(s_n). Return dlog_decay (B, h, T), in the dtype of q, and "
              "ds_prev (B, h), the gradient of the incoming count.",
        make=_gated_case, sizes=_qkv_sizes, outputs=_decay_gradient_outputs,
        second=("dlog_decay matches finite differences in the log-gates", _decay_gradient_fd),
        locate=locate.by_time(axis=2, key="dlog_decay", backward=True, name="t")),
    Exercise(
        name="delta_rule_recurrent",
        goal="the delta rule one token at a time: read, correct, write", difficulty="2",
        module="minirnn.delta", functions=("delta_rule_recurrent",), equations="(DR.1)",
        page="derivations/delta-rule.md",
        given="alpha holds the gates alpha_t (B, h, T) (all ones for plain DeltaNet); S is the "
              "incoming memory (B, h, d, dv); scale is the output scale (1/sqrt(d) unless "
              "given); u, out and S_all (B, h, T + 1, d, dv, with S_all[:, :, 0] the incoming "
              "memory) are allocated and must be filled: the backward reads u and S_all.",
        make=_delta_case, sizes=_delta_sizes, outputs=_delta_recurrent_outputs,
        second=("two calls that carry the state equal one call; the parallel form agrees",
                _delta_recurrent_property),
        locate=locate.by_time(axis=2, key="out")),
    Exercise(
        name="delta_chunk_transform",
        goal="the UT transform of a chunk: T_c, W and U by forward substitution",
        difficulty="3", module="minirnn.delta", functions=("delta_chunk_transform",),
        equations="(DR.4)-(DR.6)", page="derivations/delta-rule.md",
        given="Gamma (B, h, L, L), xi and zeta (B, h, L) are the chunk's decay factors "
              "(delta_decays, all ones without gates). solve_unit_lower(lower, rhs) solves "
              "(I + lower) X = rhs for a strictly lower triangular lower. Set lower (the "
              "strictly lower part of M), T_c, W and U; M = I + lower and the return are "
              "written.",
        make=_delta_case, sizes=_delta_sizes, outputs=_transform_outputs,
        second=("U - W S_prev equals the recurrent form's corrections", _transform_property),
        locate=locate.by_rows("batch", "head", "row")),
    Exercise(
        name="lstm_step_backward", goal="backward of one LSTM step",
        difficulty="2", module="minirnn.lstm", functions=("lstm_step_backward",),
        equations="(LSTM.4)-(LSTM.7)", page="derivations/lstm-gru.md",
        given="i, f, o, c_bar are the step's gates (B, H), already activated; cache also holds "
              "x, h_prev, c_prev, c, tanh_c = tanh(c), Wx (D, 4H) and Wh (H, 4H), gate order "
              "i, f, o, c_bar. dh is all the gradient reaching h, dc what the next step sends "
              "to the cell. Return dx, dh_prev, dc_prev and grads, a dict with keys 'Wx', "
              "'Wh', 'b'.",
        make=lambda rng, i=0: _gated_rnn_case(rng, 4, i), sizes=_gated_rnn_sizes,
        outputs=_lstm_step_outputs, second=(GRADCHECK, _lstm_step_gradcheck),
        locate=locate.by_rows("example")),
    Exercise(
        name="gru_step_backward", goal="backward of one GRU step (reset after the product)",
        difficulty="2", module="minirnn.gru", functions=("gru_step_backward",),
        equations="(GRU.5)-(GRU.10)", page="derivations/lstm-gru.md",
        given="r, z, h_bar (B, H) are the step's gates and candidate, already activated, and "
              "h_prev the previous state; H is the hidden size and Wh_h = Wh[:, 2H:] the "
              "candidate's block. cache also holds x, a_hh = h_prev Wh_h + bh_h, Wx (D, 3H), Wh "
              "(H, 3H) and reset; every case is reset='after' (PyTorch's), so the 'before' "
              "branch is optional. Return dx, dh_prev and grads, a dict with keys 'Wx', 'Wh', "
              "'bx', 'bh'.",
        make=lambda rng, i=0: _gated_rnn_case(rng, 3, i), sizes=_gated_rnn_sizes,
        outputs=_gru_step_outputs, second=(GRADCHECK, _gru_step_gradcheck),
        locate=locate.by_rows("example")),
    Exercise(
        name="linear_scan_parallel",
        goal="the minGRU/minLSTM scan, every h_t at once from the segment decay",
        difficulty="2", module="minirnn.minrnn", functions=("linear_scan_parallel",),
        equations="(MIN.2)", page="derivations/min-rnn.md",
        given="log_decay_ch (B, H, T) is log_decay with the channels before time: the log-gates "
              "g_t <= 0 of each channel; u_ch (B, H, T, 1) is u the same way, a column per "
              "channel; h0 is (B, H). Set h_ch (B, H, T), every state h_1 .. h_T of each "
              "channel; the code after yours swaps it back to (B, T, H) and stores the cache.",
        make=_scan_case, sizes=_scan_sizes, outputs=_scan_outputs,
        second=("two calls that carry h equal one call", _scan_property),
        locate=locate.by_time(axis=1, key="h")),
    Exercise(
        name=PROPERTY_EXERCISE,
        goal="write a Hypothesis property that catches a wrong chunkwise retention",
        difficulty="3", module="minirnn.retention",
        functions=("chunk_decays", "retention_parallel", "retention_final_state",
                   "retention_chunkwise"),
        equations="(R.4), (R.8)", page="derivations/retention.md",
        given="check_chunkwise(retention_chunkwise) gets an implementation and raises "
              "AssertionError when it is wrong.", kind="property"),
)

BY_NAME = {e.name: e for e in EXERCISES}
CODE_EXERCISES = tuple(e for e in EXERCISES if e.kind == "code")


def mistake_count(name: str) -> int:
    """How many mistakes the grader names for exercise ``name``."""
    return len(BY_NAME[name].mistakes)


__all__ = ["BY_NAME", "CODE_EXERCISES", "EXERCISES", "N_CASES", "PROPERTY_EXERCISE", "Exercise",
           "Mistake", "mistake_count"]
