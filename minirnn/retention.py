"""Retention (RetNet) in its three forms: parallel, recurrent and chunkwise, forward and backward.

One function, computed three ways with identical results (to rounding), also with the paper's
normalisations switched on. Equations are numbered as on ``derivations/retention.md``::

    D[n, m] = gamma^(n - m) if n >= m else 0                                  (R.1)
    parallel, plain:    O = (Q K^T * D) V                                     (R.2)
    recurrent, plain:   S_n = gamma S_{n-1} + k_n^T v_n,   o_n = q_n S_n      (R.3)
    chunkwise, plain:   O_[i] = (Q_[i] K_[i]^T * D) V_[i] + xi * (Q_[i] S_prev)
                        S = gamma^L S_prev + K_[i]^T (zeta * V_[i])           (R.4)
    normalisations:     q' = q / sqrt(d),  s_n = sum_{m<=n} D[n, m],
                        a_n = 1 / sqrt(s_n),  c_n = max(|r_n|, 1)             (R.5)
    parallel:   R = (Q' K^T) * D * a,  r = rowsum(R),  O = (R V) / c          (R.6)
    recurrent:  S_n, z_n = gamma z_{n-1} + k_n, s_n = gamma s_{n-1} + 1,
                o_n = a_n q'_n S_n / c_n,  r_n = a_n q'_n . z_n                (R.7)
    chunkwise:  (R.4) for S, z and s, with the global s_n of every row         (R.8)
    backward:   score normaliser (R.9), parallel (R.10), recurrent (R.11),
                chunkwise (R.12)

Shapes: ``q``, ``k`` (B, h, T, d); ``v`` (B, h, T, dv); ``gamma`` (h,), one decay per head.
The carried state holds ``S`` (B, h, d, dv), ``z`` (B, h, d), ``s`` (h,) and the position.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import Shapes, check_cache, check_int

__all__ = [
    "ChunkwiseCache",
    "ParallelCache",
    "RecurrentCache",
    "RetentionState",
    "RetentionStateGrad",
    "decay_mask",
    "retention_chunkwise",
    "retention_chunkwise_backward",
    "retention_final_state",
    "retention_parallel",
    "retention_parallel_backward",
    "retention_recurrent",
    "retention_recurrent_backward",
]


class RetentionState(NamedTuple):
    """What retention carries from one token (or chunk, or call) to the next."""

    S: np.ndarray   # (B, h, d, dv)  decayed sum of k_m^T v_m                     (R.3)
    z: np.ndarray   # (B, h, d)      decayed sum of k_m, for the score normaliser  (R.7)
    s: np.ndarray   # (h,) float64   decayed count sum_m gamma^(n-m), for a_n      (R.7)
    position: int   # tokens seen so far (the absolute position of the next token)


class RetentionStateGrad(NamedTuple):
    """Gradient of the loss with respect to a :class:`RetentionState` (``s`` has none)."""

    S: np.ndarray   # (B, h, d, dv)
    z: np.ndarray   # (B, h, d)


class ParallelCache(NamedTuple):
    q: np.ndarray        # (B, h, T, d) queries, already multiplied by scale
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    decay: np.ndarray    # (h, T, T) D * a: the decay mask with the row factor folded in
    R: np.ndarray        # (B, h, T, T) retention scores
    r: np.ndarray        # (B, h, T) row sums of R
    c: np.ndarray        # (B, h, T) score normaliser max(|r|, 1) (ones when not normalising)
    out: np.ndarray      # (B, h, T, dv)
    scale: float
    normalize: bool


class RecurrentCache(NamedTuple):
    q: np.ndarray        # (B, h, T, d) scaled queries
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    gamma: np.ndarray    # (h,)
    S: np.ndarray        # (B, h, T, d, dv) state after every token
    z: np.ndarray        # (B, h, T, d)
    a: np.ndarray        # (h, T) row factors 1 / sqrt(s_n)
    r: np.ndarray        # (B, h, T)
    c: np.ndarray        # (B, h, T)
    out: np.ndarray      # (B, h, T, dv)
    scale: float
    normalize: bool


class ChunkwiseCache(NamedTuple):
    q: np.ndarray        # (B, h, T, d) scaled queries
    k: np.ndarray        # (B, h, T, d)
    v: np.ndarray        # (B, h, T, dv)
    gamma: np.ndarray    # (h,)
    bounds: list         # [(start, stop), ...] of every chunk
    S_prev: list         # state S before each chunk, (B, h, d, dv) each
    z_prev: list         # state z before each chunk, (B, h, d) each
    s_prev: list         # state s before each chunk, (h,) each
    r: np.ndarray        # (B, h, T)
    c: np.ndarray        # (B, h, T)
    out: np.ndarray      # (B, h, T, dv)
    scale: float
    normalize: bool


# --- decay factors (always built in float64: gamma = 1 - 2^-12 must not round to 1) ----------

def decay_mask(gamma, T: int) -> np.ndarray:
    """The decay mask ``D[n, m] = gamma^(n - m)`` for ``n >= m``, else 0.

    Implements eq. (R.1). Only the ``T`` powers ``gamma^0 .. gamma^(T-1)`` are computed: ``D``
    is constant along its diagonals (a lower-triangular Toeplitz matrix), so row ``n`` is the
    reversed powers ``gamma^n .. gamma^0`` followed by zeros. No negative power of gamma is
    ever formed (``0^-1`` is infinite) and masking never relies on ``gamma^inf == 0`` (false
    for ``gamma == 1``); the zeros are written, not computed.

    Parameters
    ----------
    gamma : float or ndarray of shape (h,)
        Decay per head, each in ``[0, 1]``.
    T : int
        Sequence length.

    Returns
    -------
    ndarray, float64, shape (T, T) for a scalar gamma or (h, T, T)
        A read-only view of ``O(h T)`` numbers (every row is a window of the same vector);
        ``np.array(D)`` makes a writable copy.
    """
    T = check_int("decay_mask", "T", T, 1)
    g = _check_gamma("decay_mask", gamma, None)
    powers = g[:, None] ** np.arange(T)                              # (h, T), 0^0 = 1
    # [gamma^(T-1) .. gamma^1, gamma^0, 0 .. 0]: the window starting at T-1-n is row n
    padded = np.concatenate([powers[:, ::-1], np.zeros((g.size, T - 1))], axis=1)
    D = np.lib.stride_tricks.sliding_window_view(padded, T, axis=1)[:, ::-1]
    return D[0] if np.ndim(gamma) == 0 else D


def _powers(gamma: np.ndarray, L: int) -> np.ndarray:
    """gamma^0 .. gamma^L per head, shape (h, L + 1), float64 (0^0 = 1)."""
    return gamma[:, None] ** np.arange(L + 1)


def _row_counts(gamma: np.ndarray, s_prev: np.ndarray, L: int) -> np.ndarray:
    """Global s_n of L rows after a state with count s_prev (h,), shape (h, L).

    s_n = gamma^(j+1) s_prev + sum_{i<=j} gamma^i for local row j.
    """
    p = _powers(gamma, L)
    return p[:, 1:] * s_prev[:, None] + np.cumsum(p[:, :L], axis=1)


# --- the score normaliser and the state update, shared by the forms -------------------------

def _score_normaliser(r: np.ndarray, normalize: bool) -> np.ndarray:
    """c = max(|r|, 1) of eq. (R.5), or ones without normalisation."""
    return np.maximum(np.abs(r), 1.0) if normalize else np.ones_like(r)


def _score_normaliser_backward(dout, out, r, c, normalize):
    """Eq. (R.9): from dO to (dP, dr) for O = P / c with c = max(|r|, 1).

    dP = dO / c. Where |r| > 1, c = |r| depends on r: dc = -(dO . O) / c, dr = dc sign(r).
    Where |r| < 1, c = 1 is constant and dr = 0. (|r| = 1 exactly is a kink; either side's
    formula is a valid subgradient, this one takes dr = 0.)
    """
    if not normalize:
        return dout, np.zeros_like(r)
    dP = dout / c[..., None]
    dc = -np.sum(dout * out, axis=-1) / c
    return dP, np.where(np.abs(r) > 1.0, dc * np.sign(r), 0.0)


def _advance(S, z, s, k, v, gamma, dtype):
    """State after L more tokens: the chunk update of eq. (R.4), for S, z and s."""
    # --- exercise: retention_chunkwise ---
    L = k.shape[2]
    p = _powers(gamma, L)
    zeta = p[:, L - 1::-1]                                   # zeta_j = gamma^(L-1-j), (h, L)
    gL = p[:, L].astype(dtype)
    kz = k * zeta.astype(dtype)[None, :, :, None]
    S = gL[None, :, None, None] * S + np.swapaxes(kz, -1, -2) @ v
    z = gL[None, :, None] * z + kz.sum(axis=2)
    return S, z, p[:, L] * s + p[:, :L].sum(axis=1)
    # --- end ---


def retention_final_state(k: np.ndarray, v: np.ndarray, gamma,
                          state: RetentionState | None = None) -> RetentionState:
    """The state after a whole sequence, in one closed-form step.

    Implements the state update of eq. (R.4) with the whole sequence as one chunk:
    ``S = gamma^T S_0 + sum_m gamma^(T-1-m) k_m^T v_m`` (and the same for ``z`` and ``s``). It
    is what the parallel form would hand to a recurrent continuation, and it must equal the
    final state of :func:`retention_recurrent` and :func:`retention_chunkwise`.

    Parameters
    ----------
    k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
    state : RetentionState, optional
        State before the sequence (zeros when omitted).

    Returns
    -------
    RetentionState
    """
    s = Shapes("retention_final_state")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    g = _check_gamma(s.func, gamma, s.sizes["h"])
    S0, z0, s0, pos = _check_state(s, state, np.result_type(k, v))
    S, z, count = _advance(S0, z0, s0, k, v, g, S0.dtype)
    return RetentionState(S, z, count, pos + k.shape[2])


# --- input checks ---------------------------------------------------------------------------

def _check_gamma(func: str, gamma, h: int | None) -> np.ndarray:
    raw = np.asarray(gamma)
    if raw.dtype.kind not in "fiu":
        raise TypeError(f"{func}: gamma must be a float or an array of real numbers of shape "
                        f"(h,), got {type(gamma).__name__} of dtype {raw.dtype}")
    g = raw.astype(np.float64)
    if g.ndim == 0:
        g = np.full(1 if h is None else h, float(g))
    elif g.ndim != 1 or g.shape[0] == 0 or (h is not None and g.shape[0] != h):
        want = "(h,)" if h is None else f"(h,) = ({h},)"
        raise ValueError(f"{func}: gamma must be a float or have shape {want}, "
                         f"one decay per head, got shape {g.shape}")
    if not np.all((g >= 0) & (g <= 1)):   # also rejects NaN
        raise ValueError(f"{func}: every gamma must lie in [0, 1], got {g.tolist()}")
    return g


def _check_state(s: Shapes, state, dtype):
    """Validate an incoming state against the bound sizes; zeros when None."""
    B, h, d, dv = (s.sizes[x] for x in ("B", "h", "d", "dv"))
    if state is None:
        return (np.zeros((B, h, d, dv), dtype=dtype), np.zeros((B, h, d), dtype=dtype),
                np.zeros(h), 0)
    if not isinstance(state, RetentionState):
        s.fail(f"state must be a RetentionState or None, got {type(state).__name__}", TypeError)
    S = s.array("state.S", state.S, "B h d dv")
    z = s.array("state.z", state.z, "B h d")
    count = np.asarray(state.s, dtype=np.float64)
    if count.shape != (h,):
        s.fail(f"state.s must have shape (h,) = ({h},), got {count.shape}")
    check_int(s.func, "state.position", state.position, 0)
    return S.astype(dtype, copy=False), z.astype(dtype, copy=False), count, state.position


def _check_qkv(func: str, q, k, v, gamma, normalize):
    s = Shapes(func)
    q = s.array("q", q, "B h T d")
    k = s.array("k", k, "B h T d")
    v = s.array("v", v, "B h T dv")
    g = _check_gamma(func, gamma, s.sizes["h"])
    if not isinstance(normalize, (bool, np.bool_)):
        s.fail(f"normalize must be True or False, got {normalize!r}", TypeError)
    dtype = np.result_type(q, k, v)
    scale = float(1.0 / np.sqrt(q.shape[-1])) if normalize else 1.0
    return s, (q * scale).astype(dtype, copy=False), k, v, g, dtype, scale


def _check_dout(func: str, dout, out):
    s = Shapes(func)
    for letter, size in zip(("B", "h", "T", "dv"), out.shape):
        s.bind(letter, size, "cache.out")
    return s.array("dout", dout, "B h T dv")


def _check_dstate(func: str, dstate, S_like, z_like):
    if dstate is None:
        return np.zeros_like(S_like), np.zeros_like(z_like)
    if not isinstance(dstate, RetentionStateGrad):
        raise TypeError(f"{func}: dstate must be a RetentionStateGrad or None, "
                        f"got {type(dstate).__name__}")
    s = Shapes(func)
    for letter, size in zip(("B", "h", "d", "dv"), S_like.shape):
        s.bind(letter, size, "the final state")
    return s.array("dstate.S", dstate.S, "B h d dv"), s.array("dstate.z", dstate.z, "B h d")


# --- parallel form ----------------------------------------------------------------------------

def retention_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray, gamma,
                       normalize: bool = True) -> tuple[np.ndarray, ParallelCache]:
    """Retention in parallel form: every output at once, like masked attention.

    With ``normalize=False`` implements eq. (R.2), ``O = (Q K^T * D) V``. With
    ``normalize=True`` (default) implements eq. (R.6): queries scaled by ``1/sqrt(d)``, row
    ``n`` of the decay mask divided by ``sqrt(s_n)``, and each output row divided by
    ``c_n = max(|r_n|, 1)`` where ``r_n`` is the row sum of the scores.

    Cost: O(T^2 (d + dv)) time and O(T^2) memory per head.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
        Decay per head, in ``[0, 1]``.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    cache : ParallelCache
    """
    _, q, k, v, g, dtype, scale = _check_qkv("retention_parallel", q, k, v, gamma, normalize)
    D = decay_mask(g, q.shape[2])                                   # (h, T, T), (R.1)
    if normalize:
        D = D / np.sqrt(D.sum(axis=-1, keepdims=True))              # D[n, m] / sqrt(s_n)
    D = D.astype(dtype)
    R = (q @ np.swapaxes(k, -1, -2)) * D                            # (R.6)
    r = R.sum(axis=-1)
    c = _score_normaliser(r, normalize)
    out = (R @ v) / c[..., None]
    return out, ParallelCache(q, k, v, D, R, r, c, out, scale, bool(normalize))


def retention_parallel_backward(dout: np.ndarray, cache: ParallelCache):
    """Backward of :func:`retention_parallel`.

    Implements eq. (R.10): through the score normaliser (R.9), then ``P = R V`` and
    ``R = (Q' K^T) * D`` like attention without the softmax.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : ParallelCache

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    """
    check_cache("retention_parallel_backward", cache, ParallelCache, "retention_parallel")
    dout = _check_dout("retention_parallel_backward", dout, cache.out)
    # --- exercise: retention_parallel_backward ---
    dP, dr = _score_normaliser_backward(dout, cache.out, cache.r, cache.c, cache.normalize)
    dv = np.swapaxes(cache.R, -1, -2) @ dP
    dR = dP @ np.swapaxes(cache.v, -1, -2) + dr[..., None]
    dA = dR * cache.decay                                           # gradient of Q' K^T
    dq = (dA @ cache.k) * cache.scale
    dk = np.swapaxes(dA, -1, -2) @ cache.q
    return dq, dk, dv
    # --- end ---


# --- recurrent form ---------------------------------------------------------------------------

def retention_recurrent(q: np.ndarray, k: np.ndarray, v: np.ndarray, gamma,
                        state: RetentionState | None = None, normalize: bool = True):
    """Retention in recurrent form: one token at a time with a constant-size state.

    With ``normalize=False`` implements eq. (R.3). With ``normalize=True`` implements eq.
    (R.7), carrying ``z`` and ``s`` beside ``S`` so that the normalisers are exactly those of
    the parallel form. Passing the returned state to the next call continues the sequence.

    Cost: O(T d dv) time; the state is O(d dv) per head whatever T is (this implementation
    keeps every state for the backward: O(T d dv) memory when training).

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
    state : RetentionState, optional
        State after earlier tokens; zeros (a fresh sequence) when omitted.
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : RetentionState
        State after the last token.
    cache : RecurrentCache
    """
    s, q, k, v, g, dtype, scale = _check_qkv("retention_recurrent", q, k, v, gamma, normalize)
    S, z, count, position = _check_state(s, state, dtype)
    B, h, T, d = q.shape
    gd = g.astype(dtype)
    S_all = np.empty((B, h, T, d, v.shape[-1]), dtype=dtype)
    z_all = np.empty((B, h, T, d), dtype=dtype)
    a = np.ones((h, T), dtype=dtype)
    r = np.empty((B, h, T), dtype=dtype)
    out = np.empty((B, h, T, v.shape[-1]), dtype=dtype)
    # --- exercise: retention_recurrent ---
    for n in range(T):                                              # the recurrence (R.7)
        S = gd[:, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]
        z = gd[:, None] * z + k[:, :, n]
        count = g * count + 1.0
        if normalize:
            a[:, n] = 1.0 / np.sqrt(count)
        qn = q[:, :, n]
        out[:, :, n] = a[:, n, None] * np.einsum("bhd,bhde->bhe", qn, S)
        r[:, :, n] = a[:, n] * np.sum(qn * z, axis=-1)
        S_all[:, :, n], z_all[:, :, n] = S, z
    # --- end ---
    c = _score_normaliser(r, normalize)
    out /= c[..., None]
    final = RetentionState(S, z, count, position + T)
    return out, final, RecurrentCache(q, k, v, gd, S_all, z_all, a, r, c, out, scale,
                                      bool(normalize))


def retention_recurrent_backward(dout: np.ndarray, cache: RecurrentCache,
                                 dstate: RetentionStateGrad | None = None):
    """Backpropagation through time for :func:`retention_recurrent`.

    Implements eq. (R.11), walking backwards: the gradient reaching ``S_n`` is what output
    ``n`` sends plus ``gamma`` times what reaches ``S_{n+1}`` (the same for ``z``).

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : RecurrentCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned final state (when a later call used it).

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dstate_in : RetentionStateGrad
        Gradient with respect to the incoming ``state``.
    """
    check_cache("retention_recurrent_backward", cache, RecurrentCache, "retention_recurrent")
    dout = _check_dout("retention_recurrent_backward", dout, cache.out)
    c = cache
    dS, dz = _check_dstate("retention_recurrent_backward", dstate, c.S[:, :, -1], c.z[:, :, -1])
    dS, dz = dS.copy(), dz.copy()
    dP, dr = _score_normaliser_backward(dout, c.out, c.r, c.c, c.normalize)
    dq, dk, dv = np.empty_like(c.q), np.empty_like(c.k), np.empty_like(c.v)
    g = c.gamma
    for n in reversed(range(c.q.shape[2])):
        dPh = c.a[:, n, None] * dP[:, :, n]                         # (B, h, dv)
        drh = c.a[:, n] * dr[:, :, n]                               # (B, h)
        qn = c.q[:, :, n]
        dS += qn[..., :, None] * dPh[..., None, :]                  # total gradient on S_n
        dz += drh[..., None] * qn
        dq[:, :, n] = np.einsum("bhe,bhde->bhd", dPh, c.S[:, :, n]) + drh[..., None] * c.z[:, :, n]
        dk[:, :, n] = np.einsum("bhde,bhe->bhd", dS, c.v[:, :, n]) + dz
        dv[:, :, n] = np.einsum("bhd,bhde->bhe", c.k[:, :, n], dS)
        dS *= g[:, None, None]                                      # on to S_{n-1}
        dz *= g[:, None]
    return dq * c.scale, dk, dv, RetentionStateGrad(dS, dz)


# --- chunkwise form ---------------------------------------------------------------------------

def _chunk_terms(c: ChunkwiseCache, i: int):
    """Recompute the per-chunk quantities of eq. (R.8) for chunk ``i``."""
    # --- exercise: retention_chunkwise ---
    start, stop = c.bounds[i]
    L = stop - start
    dtype = c.q.dtype
    p = _powers(c.gamma, L)
    xi = p[:, 1:].astype(dtype)                                      # gamma^(j+1), (h, L)
    a = (1.0 / np.sqrt(_row_counts(c.gamma, c.s_prev[i], L)) if c.normalize
         else np.ones((len(c.gamma), L))).astype(dtype)
    qc, kc, vc = (x[:, :, start:stop] for x in (c.q, c.k, c.v))
    inner = (qc @ np.swapaxes(kc, -1, -2)) * decay_mask(c.gamma, L).astype(dtype)
    return start, stop, qc, kc, vc, xi, a, inner
    # --- end ---


def retention_chunkwise(q: np.ndarray, k: np.ndarray, v: np.ndarray, gamma, chunk_size: int,
                        state: RetentionState | None = None, normalize: bool = True):
    """Retention in chunkwise form: parallel inside each chunk, recurrent across chunks.

    With ``normalize=False`` implements eq. (R.4); with ``normalize=True`` eq. (R.8), where
    every row uses its *global* count ``s_n`` (not one local to the chunk), so the result
    equals the parallel and recurrent forms exactly. ``chunk_size`` need not divide ``T``: the
    last chunk is simply shorter (no padding, which would wrongly decay the state).

    Cost: O(T C (d + dv) + T d dv) time for chunk size C, O(C^2) memory per head for scores.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, T, d)
    v : ndarray, shape (B, h, T, dv)
    gamma : float or ndarray of shape (h,)
    chunk_size : int
        Tokens per chunk, at least 1 (1 behaves like the recurrent form, >= T like the
        parallel form).
    state : RetentionState, optional
    normalize : bool, optional

    Returns
    -------
    out : ndarray, shape (B, h, T, dv)
    state : RetentionState
    cache : ChunkwiseCache
    """
    s, q, k, v, g, dtype, scale = _check_qkv("retention_chunkwise", q, k, v, gamma, normalize)
    chunk_size = check_int("retention_chunkwise", "chunk_size", chunk_size, 1)
    S, z, count, position = _check_state(s, state, dtype)
    B, h, T, _ = q.shape
    bounds = [(t, min(t + chunk_size, T)) for t in range(0, T, chunk_size)]
    c = ChunkwiseCache(q, k, v, g, bounds, [], [], [], np.empty((B, h, T), dtype=dtype),
                       None, np.empty((B, h, T, v.shape[-1]), dtype=dtype), scale,
                       bool(normalize))
    for i in range(len(bounds)):                                     # recurrence over chunks
        c.S_prev.append(S)
        c.z_prev.append(z)
        c.s_prev.append(count)
        # --- exercise: retention_chunkwise ---
        start, stop, qc, kc, vc, xi, a, inner = _chunk_terms(c, i)
        cross = xi[None, :, :, None] * (qc @ S)                      # (B, h, L, dv)
        c.out[:, :, start:stop] = a[None, :, :, None] * (inner @ vc + cross)
        c.r[:, :, start:stop] = a * (inner.sum(axis=-1) + xi * np.einsum("bhjd,bhd->bhj", qc, z))
        S, z, count = _advance(S, z, count, kc, vc, g, dtype)
        # --- end ---
    cn = _score_normaliser(c.r, normalize)
    c.out[...] /= cn[..., None]
    cache = c._replace(c=cn)
    return c.out, RetentionState(S, z, count, position + T), cache


def retention_chunkwise_backward(dout: np.ndarray, cache: ChunkwiseCache,
                                 dstate: RetentionStateGrad | None = None):
    """Backward of :func:`retention_chunkwise`, chunk by chunk in reverse.

    Implements eq. (R.12): inside a chunk, the parallel backward (R.10) for the inner part and
    the cross term; across chunks, the gradients ``G`` and ``g_z`` of the carried state are
    decayed by ``gamma^L`` and collect each chunk's contribution.

    Parameters
    ----------
    dout : ndarray, shape (B, h, T, dv)
    cache : ChunkwiseCache
    dstate : RetentionStateGrad, optional
        Gradient with respect to the returned final state.

    Returns
    -------
    dq, dk : ndarray, shape (B, h, T, d)
    dv : ndarray, shape (B, h, T, dv)
    dstate_in : RetentionStateGrad
    """
    check_cache("retention_chunkwise_backward", cache, ChunkwiseCache, "retention_chunkwise")
    dout = _check_dout("retention_chunkwise_backward", dout, cache.out)
    c = cache
    G, gz = _check_dstate("retention_chunkwise_backward", dstate, c.S_prev[0], c.z_prev[0])
    dP, dr = _score_normaliser_backward(dout, c.out, c.r, c.c, c.normalize)
    dq, dk, dv = np.empty_like(c.q), np.empty_like(c.k), np.empty_like(c.v)
    for i in reversed(range(len(c.bounds))):
        start, stop, qc, kc, vc, xi, a, inner = _chunk_terms(c, i)
        L = stop - start
        p = _powers(c.gamma, L)
        zeta = p[:, L - 1::-1].astype(qc.dtype)[None, :, :, None]   # gamma^(L-1-j)
        gL = p[:, L].astype(qc.dtype)
        dPh = a[None, :, :, None] * dP[:, :, start:stop]             # (B, h, L, dv)
        drh = a[None] * dr[:, :, start:stop]                         # (B, h, L)
        dA = (dPh @ np.swapaxes(vc, -1, -2) + drh[..., None]) \
            * decay_mask(c.gamma, L).astype(qc.dtype)
        xdP, xdr = xi[None, :, :, None] * dPh, xi[None] * drh
        dq[:, :, start:stop] = dA @ kc + xdP @ np.swapaxes(c.S_prev[i], -1, -2) \
            + xdr[..., None] * c.z_prev[i][:, :, None, :]
        dk[:, :, start:stop] = np.swapaxes(dA, -1, -2) @ qc \
            + zeta * (vc @ np.swapaxes(G, -1, -2) + gz[:, :, None, :])
        dv[:, :, start:stop] = np.swapaxes(inner, -1, -2) @ dPh + zeta * (kc @ G)
        G = gL[None, :, None, None] * G + np.swapaxes(qc, -1, -2) @ xdP
        gz = gL[None, :, None] * gz + np.einsum("bhjd,bhj->bhd", qc, xdr)
    return dq * c.scale, dk, dv, RetentionStateGrad(G, gz)
