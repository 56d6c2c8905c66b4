"""The DeltaNet layer (and gated DeltaNet): the delta rule inside a multi-head layer.

The layer of fla's DeltaNet in minirnn's pieces. Equations as on ``derivations/delta-rule.md``::

    Q, K, V = split(X Wq), split(X Wk), split(X Wv)          (B, h, T, d), (B, h, T, dv)
    q_t <- q_t / ||q_t||,  k_t <- k_t / ||k_t||   per head: unit keys keep the transition
                                       I - beta k^T k from expanding the memory         (DR.11)
    beta = sigmoid(X Wb + bb)                      (B, h, T): the writing strength in (0, 1)
    gated: g = log sigmoid(X Wa + ba) / tau        the log-gates, as for gated retention (GR.9)
    heads = delta rule(Q, K, V, beta, g)                                         (DR.1)-(DR.7)
    out = (swish(X Wg) * GroupNorm(heads)) Wo                                     (M.3)-(M.5)
    backward of the normalisation: dx = (dy - y (y . dy)) / ||x||                      (DR.12)

No rotation and no position embedding: the delta rule reads its memory in order, which is enough
to tell positions apart (fla adds a short convolution before ``q``, ``k``, ``v``; minirnn leaves
it out, and says so on the page).

Shapes: ``x`` (B, T, D); per head key width ``d = D / h`` and value width ``dv``. Parameters:
``Wq``, ``Wk`` (D, D); ``Wv``, ``Wg`` (D, h*dv); ``Wo`` (h*dv, D); ``gn_w``, ``gn_b`` (h, dv);
``Wb`` (D, h), ``bb`` (h,); gated DeltaNet also ``Wa`` (D, h), ``ba`` (h,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import deltanet as check
from .delta import delta_rule_forms
from .gated_msr import gated_msr_gates, gated_msr_gates_backward
from .layers import merge_heads, split_heads, weight_gradient
from .msr import MSROutputCache, msr_gammas, msr_output, msr_output_backward
from .states import DeltaState, DeltaStateGrad

__all__ = [
    "DeltaNetCache",
    "L2NormCache",
    "deltanet_backward",
    "deltanet_forward",
    "deltanet_step",
    "init_deltanet_params",
    "l2_normalize",
    "l2_normalize_backward",
]

L2_EPS = 1e-6      # added to ||x||^2 inside the root, as fla's l2norm does


class L2NormCache(NamedTuple):
    """What [`l2_normalize_backward`][minirnn.deltanet.l2_normalize_backward] needs."""

    y: np.ndarray          # (..., d) the unit vectors
    norm: np.ndarray       # (..., 1) sqrt(||x||^2 + eps)


def l2_normalize(x: np.ndarray, eps: float = L2_EPS):
    """Every vector of the last axis divided by its length, eq. (DR.11):
    ``y = x / sqrt(||x||^2 + eps)``.

    Parameters
    ----------
    x : ndarray, shape (..., d)
    eps : float, optional
        Keeps the zero vector finite (it stays zero).

    Returns
    -------
    y : ndarray, shape of ``x``
    cache : L2NormCache
    """
    x, eps = check.l2_normalize(x, eps)
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True) + eps)
    y = x / norm
    return y, L2NormCache(y=y, norm=norm)


def l2_normalize_backward(dy: np.ndarray, cache: L2NormCache) -> np.ndarray:
    """Backward of [`l2_normalize`][minirnn.deltanet.l2_normalize], eq. (DR.12):
    ``dx = (dy - y (y . dy)) / ||x||`` (up to ``eps``), the part of ``dy`` across ``y`` scaled by
    ``1/||x||``: lengthening ``x`` does not move ``y``.

    Parameters
    ----------
    dy : ndarray, shape (..., d)
    cache : L2NormCache

    Returns
    -------
    dx : ndarray, shape of ``dy``
    """
    dy = check.l2_normalize_backward(dy, cache)
    y = cache.y
    return (dy - y * np.sum(y * dy, axis=-1, keepdims=True)) / cache.norm   # (DR.12)


class DeltaNetCache(NamedTuple):
    """What [`deltanet_backward`][minirnn.deltanet.deltanet_backward] needs."""

    x: np.ndarray          # (B, T, D)
    params: dict
    n_heads: int
    form: str
    q_norm: L2NormCache    # the queries' normalisation, (B, h, T, d)
    k_norm: L2NormCache
    v: np.ndarray          # (B, h, T, dv)
    beta: np.ndarray       # (B, h, T)
    a: np.ndarray | None   # (B, T, h) the gates' pre-activations (gated DeltaNet)
    core: tuple            # the cache of the delta rule's form
    output: MSROutputCache
    tau: float
    final: DeltaState


def init_deltanet_params(D: int, n_heads: int, dv: int, gated: bool = False, seed: int = 0,
                         dtype=np.float64, tau: float = 1.0) -> dict[str, np.ndarray]:
    """Initial parameters of a DeltaNet layer.

    The projections and the output part are those of
    [`init_msr_params`][minirnn.msr.init_msr_params] (Xavier with RetNet's gains); ``Wb`` starts
    at zero and ``bb`` at 0, so every token starts writing with ``beta = 1/2``; gated DeltaNet's
    gate starts like gated retention's: ``Wa`` zero and ``ba`` at RetNet's decays (M.1).

    Parameters
    ----------
    D : int
        Model width; ``n_heads`` must divide it.
    n_heads : int
    dv : int
    gated : bool, optional
        Add the gate ``Wa`` (D, h), ``ba`` (h,).
    seed : int, optional
    dtype : numpy dtype, optional
    tau : float, optional
        The gate's temperature (GR.9).

    Returns
    -------
    dict
    """
    D, dv = check.init_deltanet_params(D, n_heads, dv, gated, tau)
    rng = np.random.default_rng(seed)
    hdv = n_heads * dv

    def xavier(fan_in, fan_out, gain):
        std = gain * np.sqrt(2.0 / (fan_in + fan_out))
        return (std * rng.standard_normal((fan_in, fan_out))).astype(dtype)

    params = {"Wq": xavier(D, D, 2 ** -2.5), "Wk": xavier(D, D, 2 ** -2.5),
              "Wv": xavier(D, hdv, 2 ** -2.5), "Wg": xavier(D, hdv, 2 ** -2.5),
              "Wo": xavier(hdv, D, 2 ** -1), "gn_w": np.ones((n_heads, dv), dtype=dtype),
              "gn_b": np.zeros((n_heads, dv), dtype=dtype),
              "Wb": np.zeros((D, n_heads), dtype=dtype), "bb": np.zeros(n_heads, dtype=dtype)}
    if gated:
        target = msr_gammas(n_heads) ** tau                          # sigmoid(ba) = gamma^tau
        params["Wa"] = np.zeros((D, n_heads), dtype=dtype)
        params["ba"] = np.log(target / (1.0 - target)).astype(dtype)
    return params


def deltanet_forward(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                     form: str = "chunkwise", chunk_size: int | None = 16,
                     state: DeltaState | None = None, eps: float = 1e-5, tau: float = 1.0):
    """A DeltaNet (or, when ``params`` has ``Wa``, gated DeltaNet) layer in any of the three
    forms.

    Implements eqs. (DR.11) and (M.3)-(M.5) around the delta rule (DR.1)-(DR.7): project,
    normalise queries and keys per head, the writing strengths ``beta = sigmoid(X Wb + bb)``
    (and the gates), the delta rule, group norm, the swish gate and the output projection. Every
    form gives the same numbers.

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    params : dict
        From [`init_deltanet_params`][minirnn.deltanet.init_deltanet_params].
    n_heads : int
    form : {"parallel", "recurrent", "chunkwise"}, optional
    chunk_size : int, optional
        For the chunkwise form.
    state : DeltaState, optional
        Continue a sequence; ``None`` starts with an empty memory.
    eps : float, optional
        Group-norm epsilon.
    tau : float, optional
        Gate temperature (gated DeltaNet).

    Returns
    -------
    y : ndarray, shape (B, T, D)
    state : DeltaState
    cache : DeltaNetCache
    """
    x, params, state = check.deltanet_forward(x, params, n_heads, form, chunk_size, state, eps,
                                              tau)
    q, q_norm = l2_normalize(split_heads(x @ params["Wq"], n_heads))   # (DR.11)
    k, k_norm = l2_normalize(split_heads(x @ params["Wk"], n_heads))
    v = split_heads(x @ params["Wv"], n_heads)
    z = x @ params["Wb"] + params["bb"]                              # (B, T, h)
    beta = np.swapaxes(0.5 + 0.5 * np.tanh(0.5 * z), 1, 2)           # sigmoid, (B, h, T)
    log_decay, a = gated_msr_gates(x, params, tau) if "Wa" in params else (None, None)   # (GR.9)
    delta_rule, _ = delta_rule_forms(chunk_size)[form]
    o, final, core = delta_rule(q, k, v, beta, log_decay=log_decay, state=state)   # (DR.1)-(DR.7)
    out, output = msr_output(o, x, params, eps)                      # (M.3)-(M.5)
    return out, final, DeltaNetCache(x=x, params=params, n_heads=n_heads, form=form,
                                     q_norm=q_norm, k_norm=k_norm, v=v, beta=beta, a=a,
                                     core=core, output=output, tau=tau, final=final)


def deltanet_backward(dy: np.ndarray, cache: DeltaNetCache,
                      dstate: DeltaStateGrad | None = None):
    """Backward of [`deltanet_forward`][minirnn.deltanet.deltanet_forward] for any form.

    In reverse: the output part (M.3)-(M.5); the delta rule's backward of the form used
    (DR.8)-(DR.10); the writing strengths, ``dz = dbeta beta (1 - beta)``; the gates (GR.10); the
    normalisations (DR.12); the projections.

    Parameters
    ----------
    dy : ndarray, shape (B, T, D)
    cache : DeltaNetCache
    dstate : DeltaStateGrad, optional
        Gradient with respect to the returned state (when a later call used it).

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    grads : dict
        Same keys as ``params``.
    dstate_prev : DeltaStateGrad
    """
    dy, dstate = check.deltanet_backward(dy, cache, dstate)
    c, params = cache, cache.params
    do, dx, grads = msr_output_backward(dy, c.output)                # (M.3)-(M.5)
    _, delta_rule_backward = delta_rule_forms()[c.form]
    dq, dk, dv, dbeta, dlog_decay, dstate_prev = delta_rule_backward(do, c.core, dstate)
    dz = np.swapaxes(dbeta * c.beta * (1.0 - c.beta), 1, 2)          # sigmoid', (B, T, h)
    grads["Wb"] = weight_gradient(c.x, dz)
    grads["bb"] = dz.sum(axis=(0, 1))
    dx = dx + dz @ params["Wb"].T
    if dlog_decay is not None:                                       # gated DeltaNet (GR.10)
        dx_gates, gate_grads = gated_msr_gates_backward(dlog_decay, c.x, c.a, params, c.tau)
        dx = dx + dx_gates
        grads.update(gate_grads)
    for name, dhead in (("Wq", l2_normalize_backward(dq, c.q_norm)),   # (DR.12)
                        ("Wk", l2_normalize_backward(dk, c.k_norm)), ("Wv", dv)):
        dproj = merge_heads(dhead)
        grads[name] = weight_gradient(c.x, dproj)
        dx = dx + dproj @ params[name].T
    return dx, {key: grads[key] for key in params}, dstate_prev


def deltanet_step(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int,
                  state: DeltaState | None = None, eps: float = 1e-5, tau: float = 1.0):
    """Decode one token: O(1) time and memory per token.

    The new token's projections, normalisations, writing strength and gate, one step of the
    delta rule (DR.1) for every head, written out for the one token (read, correct, write, read
    out: four small products per head), then the output part (M.3)-(M.5). Equal to the matching
    row of [`deltanet_forward`][minirnn.deltanet.deltanet_forward].

    Parameters
    ----------
    x : ndarray, shape (B, D)
    params : dict
    n_heads : int
    state : DeltaState, optional
    eps, tau : float, optional

    Returns
    -------
    y : ndarray, shape (B, D)
    state : DeltaState
    """
    x, params, state = check.deltanet_step(x, params, n_heads, state, eps, tau)
    B, D = x.shape
    if state is None:
        state = DeltaState.zeros(B, n_heads, D // n_heads, params["gn_w"].shape[1], x.dtype)
    xt = x[:, None]                                                  # a sequence of one token
    q, _ = l2_normalize(split_heads(xt @ params["Wq"], n_heads))     # (DR.11), (B, h, 1, d)
    k, _ = l2_normalize(split_heads(xt @ params["Wk"], n_heads))
    v = split_heads(xt @ params["Wv"], n_heads)                      # (B, h, 1, dv)
    z = x @ params["Wb"] + params["bb"]                              # (B, h)
    beta = (0.5 + 0.5 * np.tanh(0.5 * z))[..., None, None]           # sigmoid, (B, h, 1, 1)
    S = state.S                                                      # S_{t-1}, (B, h, d, dv)
    if "Wa" in params:                                               # gated DeltaNet (GR.9)
        log_decay, _ = gated_msr_gates(xt, params, tau)              # (B, h, 1)
        S = np.exp(log_decay.astype(np.float64)).astype(S.dtype)[..., None] * S   # alpha_t S
    u = beta * (v - k @ S)                                           # the correction  (DR.1)
    S = S + np.einsum("bhxd,bhxe->bhde", k, u)                       # write k_t^T u_t
    o = float(1.0 / np.sqrt(q.shape[-1])) * (q @ S)                  # o_t = scale q_t S_t
    out, _ = msr_output(o, xt, params, eps)                          # (M.3)-(M.5)
    return out[:, 0], DeltaState(S=S, position=state.position + 1)
