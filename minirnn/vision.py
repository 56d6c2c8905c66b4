"""Vision: from pixels to patch tokens, and retention in two dimensions (ViT, RMT, ViR).

Images are (B, Y, X, C) float arrays, channels last; patches are taken in raster order. The
equations are numbered as on ``derivations/vision.md``::

    patch n = y n_x + x holds x[y p + ybar, x p + xbar, c] at (ybar p + xbar) C + c      (V.1)
    patch embedding Z = X_patch W_e + b, a stride-p, p x p convolution                    (V.2)
    front end z_0 = [x_cls; Z] + E_pos (the class token first, last, or none)             (V.3)
    Manhattan decay Gamma[n, m] = gamma^(|y_n - y_m| + |x_n - x_m|)
                            = (Gamma^y kron Gamma^x)[n, m]                           (V.4)
    decayed attention, paper: O = (softmax(Q K^T / sqrt d) * Gamma) V                         (V.5)
    decayed attention, code:  O = softmax(Q K^T / sqrt d + ln Gamma) V  = (V.5) renormalised  (V.6)
    decomposed MaSA: a row pass with Gamma^x, then a column pass with Gamma^y         (V.7)
    softmax-free 2-D retention O = (Q K^T * Gamma) V                                       (V.8)
    its scan form:  U_n = k_n^T v_n, S = F_H F_W U, o_n = q_n S_n, where
    F sums gamma^|i - j| u_j with two 1-D scans: forward + backward - u                   (V.9)

Images are (B, Y, X, C): ``Y`` rows and ``X`` columns of pixels, ``C`` channels; the patch size
``p`` divides both. Shapes: ``q``, ``k`` (B, h, N, d), ``v`` (B, h, N, dv) with ``N = n_y n_x``
tokens of a grid of ``n_y`` rows and ``n_x`` columns in raster order (token ``n`` at row
``y_n``, column ``x_n``); ``gamma`` (h,), one decay per head.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import vision as check
from .attention import attention_backward, attention_forward, softmax_backward, softmax_forward
from .layers import merge_heads, split_heads, weight_gradient
from .retention import retention_parallel, retention_parallel_backward

__all__ = [
    "DecayedAttentionCache",
    "MixCache",
    "Retention2dCache",
    "VisionEmbedCache",
    "bidirectional_scan",
    "decayed_attention_backward",
    "decayed_attention_forward",
    "manhattan_decay_mask",
    "masa_backward",
    "masa_decomposed_backward",
    "masa_decomposed_forward",
    "masa_forward",
    "patchify",
    "retention_2d_parallel",
    "retention_2d_parallel_backward",
    "retention_2d_scan",
    "retention_2d_scan_backward",
    "unpatchify",
    "vision_cores",
    "vision_embed_backward",
    "vision_embed_forward",
    "vision_mix_backward",
    "vision_mix_forward",
]


# --- from pixels to tokens -----------------------------------------------------------------------

def patchify(images: np.ndarray, patch_size: int) -> np.ndarray:
    """Cut images into non-overlapping ``p x p`` patches, in raster order, eq. (V.1).

    A reshape and a transpose: no number is computed. Patch ``n = y n_x + x`` (grid row ``y``,
    column ``x``) holds the pixels of rows ``y p .. y p + p - 1`` and columns
    ``x p .. x p + p - 1``, flattened in the order (row in the patch, column in the patch,
    channel).

    Parameters
    ----------
    images : ndarray, shape (B, Y, X, C)
    patch_size : int
        ``p``, which must divide ``Y`` and ``X``.

    Returns
    -------
    ndarray, shape (B, N, p*p*C) with ``N = (Y/p) (X/p)``
    """
    images, patch_size = check.patchify(images, patch_size)
    B, Y, X, C = images.shape
    p = patch_size
    grid = images.reshape(B, Y // p, p, X // p, p, C)                # (B, y, ybar, x, xbar, c)
    return grid.transpose(0, 1, 3, 2, 4, 5).reshape(B, (Y // p) * (X // p), p * p * C)


def unpatchify(patches: np.ndarray, image_shape, patch_size: int) -> np.ndarray:
    """Put patches back into images: the exact inverse of
    [`patchify`][minirnn.vision.patchify] (and its transpose, so it is also its backward).

    Parameters
    ----------
    patches : ndarray, shape (B, N, p*p*C)
    image_shape : tuple of int
        ``(Y, X, C)``.
    patch_size : int

    Returns
    -------
    ndarray, shape (B, Y, X, C)
    """
    patches, (Y, X, C), patch_size = check.unpatchify(patches, image_shape, patch_size)
    p = patch_size
    grid = patches.reshape(patches.shape[0], Y // p, X // p, p, p, C)   # (B, y, x, ybar, xbar, c)
    return grid.transpose(0, 1, 3, 2, 4, 5).reshape(patches.shape[0], Y, X, C)


class VisionEmbedCache(NamedTuple):
    """What [`vision_embed_backward`][minirnn.vision.vision_embed_backward] needs."""

    patches: np.ndarray    # (B, N, p*p*C) the patch matrix X_patch
    W: np.ndarray          # (p*p*C, D) the patch embedding W_e
    image_shape: tuple     # (Y, X, C)
    patch_size: int
    cls_position: str | None
    keys: tuple            # the parameter names the forward used


def vision_embed_forward(images: np.ndarray, params: dict[str, np.ndarray], patch_size: int,
                         cls_position: str | None = "first"):
    """The front end: patches, their embedding, a class token and learned positions.

    Implements eqs. (V.2) and (V.3): ``Z = patchify(x) W_e + b`` (a stride-``p`` convolution
    with a ``p x p`` kernel, written as one matrix product), then the class token ``cls`` is
    put first or last (or left out) and the position embedding ``pos`` is added (when
    ``params`` has one).

    Parameters
    ----------
    images : ndarray, shape (B, Y, X, C)
    params : dict
        ``W`` (p*p*C, D), ``b`` (D,); optional ``cls`` (D,) and ``pos`` (N or N+1, D).
    patch_size : int
    cls_position : {"first", "last", None}, optional
        Where the class token goes (``None``: no class token, ``params`` must not hold one).

    Returns
    -------
    z : ndarray, shape (B, N (+1), D)
    cache : VisionEmbedCache
    """
    images, params, patch_size = check.vision_embed_forward(images, params, patch_size,
                                                            cls_position)
    patches = patchify(images, patch_size)                           # (V.1)
    z = patches @ params["W"] + params["b"]                          # (V.2): (B, N, D)
    if cls_position is not None:
        cls = np.broadcast_to(params["cls"], (z.shape[0], 1, z.shape[2]))
        z = np.concatenate([cls, z] if cls_position == "first" else [z, cls], axis=1)   # (V.3)
    if "pos" in params:
        z = z + params["pos"]
    return z, VisionEmbedCache(patches=patches, W=params["W"], image_shape=images.shape[1:],
                               patch_size=patch_size, cls_position=cls_position,
                               keys=tuple(params))


def vision_embed_backward(dz: np.ndarray, cache: VisionEmbedCache):
    """Backward of [`vision_embed_forward`][minirnn.vision.vision_embed_forward], down to the
    pixels: ``dpos = sum over the batch of dz``, ``dcls`` is the class token's row,
    ``dW_e = X_patch^T dZ``, ``db = sum dZ`` and ``dx = unpatchify(dZ W_e^T)``.

    Parameters
    ----------
    dz : ndarray, shape (B, N (+1), D)
    cache : VisionEmbedCache

    Returns
    -------
    dimages : ndarray, shape (B, Y, X, C)
        The gradient of every pixel: one backward call gives a saliency map.
    grads : dict
        ``W``, ``b`` and, when used, ``cls`` and ``pos``.
    """
    dz = check.vision_embed_backward(dz, cache)
    grads = {}
    if "pos" in cache.keys:
        grads["pos"] = dz.sum(axis=0)
    if cache.cls_position == "first":
        grads["cls"], dZ = dz[:, 0].sum(axis=0), dz[:, 1:]
    elif cache.cls_position == "last":
        grads["cls"], dZ = dz[:, -1].sum(axis=0), dz[:, :-1]
    else:
        dZ = dz
    grads["W"] = weight_gradient(cache.patches, dZ)
    grads["b"] = dZ.sum(axis=(0, 1))
    dimages = unpatchify(dZ @ cache.W.T, cache.image_shape, cache.patch_size)
    return dimages, {key: grads[key] for key in cache.keys}


# --- the Manhattan decay -------------------------------------------------------------------------

def manhattan_decay_mask(n_y: int, n_x: int, gamma) -> np.ndarray:
    """The 2-D decay ``Gamma[n, m] = gamma^(|y_n - y_m| + |x_n - x_m|)`` of RMT, eq. (V.4).

    Token ``n`` sits at row ``y_n = n // n_x`` and column ``x_n = n % n_x`` of the grid. Only the
    powers ``gamma^0 .. gamma^(n_y + n_x - 2)`` are computed (never a negative one) and every
    entry is looked up by its distance. ``Gamma`` equals the Kronecker product
    ``Gamma^y kron Gamma^x`` of the two 1-D masks ``gamma^|i - j|`` (a grid of one row gives
    ``Gamma^x``).

    Parameters
    ----------
    n_y, n_x : int
        Rows and columns of the token grid.
    gamma : float or ndarray of shape (h,)
        Decay per head, in ``[0, 1]``.

    Returns
    -------
    ndarray, float64, shape (N, N) for a scalar gamma or (h, N, N), ``N = n_y n_x``
    """
    gammas, n_y, n_x = check.manhattan_decay_mask(n_y, n_x, gamma)
    # --- exercise: manhattan_decay_mask ---
    y, x = np.divmod(np.arange(n_y * n_x), n_x)                      # raster order
    distance = np.abs(y[:, None] - y[None, :]) + np.abs(x[:, None] - x[None, :])
    powers = gammas[:, None] ** np.arange(n_y + n_x - 1)             # gamma^0 .. gamma^(n_y+n_x-2)
    Gamma = powers[:, distance]                                      # (h, N, N)       (V.4)
    # --- end ---
    return Gamma[0] if np.ndim(gamma) == 0 else Gamma


# --- attention with a decay (RMT's MaSA) ---------------------------------------------------------

class DecayedAttentionCache(NamedTuple):
    q: np.ndarray          # (..., N, d)
    k: np.ndarray
    v: np.ndarray
    Gamma: np.ndarray      # the decay, broadcastable to (..., N, N)
    softmax: tuple         # SoftmaxCache of the scores
    A: np.ndarray          # (..., N, N) the weights that multiply V
    scale: float
    variant: str


def decayed_attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, Gamma: np.ndarray,
                              variant: str = "code"):
    """Softmax attention over the last token axis with a decay, in either of RMT's two forms.

    ``variant="paper"`` implements eq. (V.5), ``A = softmax(Q K^T / sqrt(d)) * Gamma``, as the RMT
    paper prints it (rows of ``A`` sum to less than 1). ``variant="code"`` implements eq.
    (V.6), ``A = softmax(Q K^T / sqrt(d) + ln Gamma)``, as RMT's released code computes it: the
    paper's weights renormalised per row. Then ``O = A V``.

    Parameters
    ----------
    q, k : ndarray, shape (..., N, d)
    v : ndarray, shape (..., N, dv)
    Gamma : ndarray, broadcastable to (..., N, N)
        The decay; every entry in ``[0, 1]`` (a zero gets no weight in both variants).
    variant : {"code", "paper"}, optional

    Returns
    -------
    out : ndarray, shape (..., N, dv)
    cache : DecayedAttentionCache
    """
    q, k, v, Gamma, variant = check.decayed_attention_forward(q, k, v, Gamma, variant)
    scale = float(1.0 / np.sqrt(q.shape[-1]))
    E = (q @ np.swapaxes(k, -1, -2)) * scale                         # scores
    if variant == "code":
        with np.errstate(divide="ignore"):                           # ln 0 = -inf: no weight
            A, sm = softmax_forward(E + np.log(Gamma), axis=-1)      # (V.6)
    else:
        P, sm = softmax_forward(E, axis=-1)
        A = P * Gamma                                                # (V.5)
    return A @ v, DecayedAttentionCache(q=q, k=k, v=v, Gamma=Gamma, softmax=sm, A=A,
                                        scale=scale, variant=variant)


def decayed_attention_backward(dout: np.ndarray, cache: DecayedAttentionCache):
    """Backward of [`decayed_attention_forward`][minirnn.vision.decayed_attention_forward]:
    ``dV = A^T dO``, ``dA = dO V^T``; the paper's form multiplies by ``Gamma`` on the way to the
    softmax (the code form's ``ln Gamma`` is a constant added to the scores); then the softmax
    backward (A.2) and ``dQ = dE K / sqrt(d)``, ``dK = dE^T Q / sqrt(d)``.

    Parameters
    ----------
    dout : ndarray, shape (..., N, dv)
    cache : DecayedAttentionCache

    Returns
    -------
    dq, dk : ndarray, shape (..., N, d)
    dv : ndarray, shape (..., N, dv)
    """
    dout = check.decayed_attention_backward(dout, cache)
    c = cache
    dv = np.swapaxes(c.A, -1, -2) @ dout
    dA = dout @ np.swapaxes(c.v, -1, -2)
    dP = dA if c.variant == "code" else dA * c.Gamma                # through (V.5)'s product
    dE = softmax_backward(dP, c.softmax)                             # (A.2)
    return (dE @ c.k) * c.scale, (np.swapaxes(dE, -1, -2) @ c.q) * c.scale, dv


def masa_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, grid, gamma,
                 variant: str = "code"):
    """RMT's Manhattan self-attention (MaSA) in its full form: every token attends to every
    token of the grid with the decay of eq. (V.4), eq. (V.5) or (V.6).

    Cost: O(N^2 d) per head, like attention.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, N, d)
    v : ndarray, shape (B, h, N, dv)
    grid : tuple of int
        ``(n_y, n_x)`` with ``n_y n_x = N``.
    gamma : float or ndarray of shape (h,)
    variant : {"code", "paper"}, optional

    Returns
    -------
    out : ndarray, shape (B, h, N, dv)
    cache : DecayedAttentionCache
    """
    q, k, v, gammas, (n_y, n_x) = check.masa_forward(q, k, v, grid, gamma, variant)
    Gamma = manhattan_decay_mask(n_y, n_x, gammas).astype(q.dtype)   # (h, N, N)    (V.4)
    return decayed_attention_forward(q, k, v, Gamma, variant)            # (V.5) / (V.6)


def masa_backward(dout: np.ndarray, cache: DecayedAttentionCache):
    """Backward of [`masa_forward`][minirnn.vision.masa_forward].

    Returns
    -------
    dq, dk, dv : ndarray
    """
    dout = check.masa_backward(dout, cache)
    return decayed_attention_backward(dout, cache)


class Masa2Cache(NamedTuple):
    """What [`masa_decomposed_backward`][minirnn.vision.masa_decomposed_backward] needs."""

    rows: DecayedAttentionCache     # the row pass, (B, h, n_y, n_x, .)
    columns: DecayedAttentionCache  # the column pass, (B, h, n_x, n_y, .)
    grid: tuple                     # (n_y, n_x)


def masa_decomposed_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, grid, gamma,
                            variant: str = "code"):
    """RMT's decomposed MaSA, eq. (V.7): attention within every row with the 1-D decay
    ``Gamma^x``, then attention within every column with ``Gamma^y`` on the row pass's output
    (with the same queries and keys).

    Output ``(y, x)`` gets pixel ``(y', x')`` through the one intermediate pixel ``(y', x)``
    with the decay ``gamma^|y - y'| gamma^|x - x'|``: the 2-D decay is kept exactly, the
    content weights are not (they are a product of two 1-D softmaxes). Cost:
    O(n_y n_x (n_y + n_x) d) per head, which is O(N^1.5) for a square grid, not linear.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, N, d)
    v : ndarray, shape (B, h, N, dv)
    grid : tuple of int
    gamma : float or ndarray of shape (h,)
    variant : {"code", "paper"}, optional

    Returns
    -------
    out : ndarray, shape (B, h, N, dv)
    cache : Masa2Cache
    """
    q, k, v, gammas, (n_y, n_x) = check.masa_decomposed_forward(q, k, v, grid, gamma, variant)
    B, h = q.shape[:2]
    qr, kr, vr = (a.reshape(B, h, n_y, n_x, a.shape[-1]) for a in (q, k, v))   # grid rows
    Gamma_x = manhattan_decay_mask(1, n_x, gammas)[:, None].astype(q.dtype)   # (h, 1, n_x, n_x)
    Gamma_y = manhattan_decay_mask(1, n_y, gammas)[:, None].astype(q.dtype)   # (h, 1, n_y, n_y)
    mid, rows = decayed_attention_forward(qr, kr, vr, Gamma_x, variant)   # within every row
    qc, kc, midc = (np.swapaxes(a, 2, 3) for a in (qr, kr, mid))     # columns: (B, h, n_x, n_y)
    out, columns = decayed_attention_forward(qc, kc, midc, Gamma_y, variant)   # (V.7)
    return np.swapaxes(out, 2, 3).reshape(B, h, n_y * n_x, -1), Masa2Cache(
        rows=rows, columns=columns, grid=(n_y, n_x))


def masa_decomposed_backward(dout: np.ndarray, cache: Masa2Cache):
    """Backward of [`masa_decomposed_forward`][minirnn.vision.masa_decomposed_forward]: the
    column pass, then the row pass; ``q`` and ``k`` collect from both.

    Returns
    -------
    dq, dk, dv : ndarray
    """
    dout = check.masa_decomposed_backward(dout, cache)
    (n_y, n_x), B, h = cache.grid, dout.shape[0], dout.shape[1]
    doutc = np.swapaxes(dout.reshape(B, h, n_y, n_x, -1), 2, 3)      # (B, h, n_x, n_y, dv)
    dqc, dkc, dmidc = decayed_attention_backward(doutc, cache.columns)
    dqr, dkr, dvr = decayed_attention_backward(np.swapaxes(dmidc, 2, 3), cache.rows)
    dq = dqr + np.swapaxes(dqc, 2, 3)
    dk = dkr + np.swapaxes(dkc, 2, 3)
    return tuple(a.reshape(B, h, n_y * n_x, -1) for a in (dq, dk, dvr))


# --- softmax-free 2-D retention and its scan form -----------------------------------------------

class Retention2dCache(NamedTuple):
    """What the backward of either form of 2-D retention needs."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    gamma: np.ndarray      # (h,)
    grid: tuple
    R: np.ndarray | None   # (B, h, N, N) scores (parallel form)
    S: np.ndarray | None   # (B, h, N, d, dv) state field (scan form)


def retention_2d_parallel(q: np.ndarray, k: np.ndarray, v: np.ndarray, grid, gamma):
    """Softmax-free 2-D retention in parallel form, eq. (V.8): ``O = (Q K^T * Gamma) V`` with the
    Manhattan decay. Cost: O(N^2 (d + dv)) per head.

    Parameters
    ----------
    q, k : ndarray, shape (B, h, N, d)
    v : ndarray, shape (B, h, N, dv)
    grid : tuple of int
    gamma : float or ndarray of shape (h,)

    Returns
    -------
    out : ndarray, shape (B, h, N, dv)
    cache : Retention2dCache
    """
    q, k, v, gammas, (n_y, n_x) = check.retention_2d_parallel(q, k, v, grid, gamma)
    Gamma = manhattan_decay_mask(n_y, n_x, gammas).astype(q.dtype)   # (V.4)
    R = (q @ np.swapaxes(k, -1, -2)) * Gamma                         # (V.8)
    return R @ v, Retention2dCache(q=q, k=k, v=v, gamma=gammas, grid=(n_y, n_x), R=R, S=None)


def retention_2d_parallel_backward(dout: np.ndarray, cache: Retention2dCache):
    """Backward of [`retention_2d_parallel`][minirnn.vision.retention_2d_parallel]:
    ``dV = R^T dO``, ``dA = (dO V^T) * Gamma``, ``dQ = dA K``, ``dK = dA^T Q``.

    Returns
    -------
    dq, dk, dv : ndarray
    """
    dout = check.retention_2d_parallel_backward(dout, cache)
    n_y, n_x = cache.grid
    Gamma = manhattan_decay_mask(n_y, n_x, cache.gamma).astype(dout.dtype)
    dv = np.swapaxes(cache.R, -1, -2) @ dout
    dA = (dout @ np.swapaxes(cache.v, -1, -2)) * Gamma
    return dA @ cache.k, np.swapaxes(dA, -1, -2) @ cache.q, dv


def bidirectional_scan(u: np.ndarray, gamma, axis: int) -> np.ndarray:
    """``sum_j gamma^|i - j| u_j`` along one axis, with two 1-D recurrences, eq. (V.9).

    The forward scan ``f_i = gamma f_{i-1} + u_i`` sums ``j <= i``, the backward scan
    ``f<-_i = gamma f<-_{i+1} + u_i`` sums ``j >= i``; ``u_i`` is in both, so the result is
    ``f + f<- - u``. The operator is symmetric, so it is also its own backward.

    Parameters
    ----------
    u : ndarray, shape (B, h, ...)
    gamma : float or ndarray of shape (h,)
    axis : int
        The axis to scan (not 0 or 1).

    Returns
    -------
    ndarray, shape of ``u``
    """
    u, gammas, axis = check.bidirectional_scan(u, gamma, axis)
    gamma_u = gammas.astype(u.dtype).reshape((1, -1) + (1,) * (u.ndim - 3))   # one slice
    x = np.moveaxis(u, axis, 0)                                      # scanned axis first
    forward, backward = np.empty_like(x), np.empty_like(x)
    forward[0], backward[-1] = x[0], x[-1]
    for i in range(1, x.shape[0]):                                   # j <= i
        forward[i] = gamma_u * forward[i - 1] + x[i]
    for i in reversed(range(x.shape[0] - 1)):                        # j >= i
        backward[i] = gamma_u * backward[i + 1] + x[i]
    return np.moveaxis(forward + backward - x, 0, axis)


def retention_2d_scan(q: np.ndarray, k: np.ndarray, v: np.ndarray, grid, gamma):
    """Softmax-free 2-D retention computed with scans, eq. (V.9): equal to
    [`retention_2d_parallel`][minirnn.vision.retention_2d_parallel] without ever forming the
    ``N x N`` scores.

    The state field ``S_n = sum_m Gamma[n, m] k_m^T v_m`` is a separable filter of
    ``U_m = k_m^T v_m``: scan along the rows, then along the columns (four 1-D scans in all),
    then ``o_n = q_n S_n``. Cost: O(N d dv) per head. This second form exists in 2-D because
    the softmax is gone (with a softmax the weights do not factorise). It is not a recurrent
    form: the scans run both ways (nothing is causal) and build one ``d x dv`` state per token,
    ``N d dv`` numbers, more than the ``N^2`` scores when ``N < d dv``.

    Returns
    -------
    out : ndarray, shape (B, h, N, dv)
    cache : Retention2dCache
    """
    q, k, v, gammas, (n_y, n_x) = check.retention_2d_scan(q, k, v, grid, gamma)
    B, h, N, d = q.shape
    U = (k[..., :, None] * v[..., None, :]).reshape(B, h, n_y, n_x, d, -1)   # k_m^T v_m
    S = bidirectional_scan(bidirectional_scan(U, gammas, axis=3), gammas, axis=2)   # (V.9)
    S = S.reshape(B, h, N, d, -1)
    out = np.einsum("bhnd,bhnde->bhne", q, S)
    return out, Retention2dCache(q=q, k=k, v=v, gamma=gammas, grid=(n_y, n_x), R=None, S=S)


def retention_2d_scan_backward(dout: np.ndarray, cache: Retention2dCache):
    """Backward of [`retention_2d_scan`][minirnn.vision.retention_2d_scan]: ``dq_n = dO_n S_n^T``;
    the state field's gradient ``q_n^T dO_n`` goes back through the same filter (it is
    symmetric), giving ``dU``; then ``dk_n = dU_n v_n^T`` and ``dv_n = k_n dU_n``.

    Returns
    -------
    dq, dk, dv : ndarray
    """
    dout = check.retention_2d_scan_backward(dout, cache)
    (n_y, n_x), c = cache.grid, cache
    B, h, N, d = c.q.shape
    dq = np.einsum("bhne,bhnde->bhnd", dout, c.S)
    dS = (c.q[..., :, None] * dout[..., None, :]).reshape(B, h, n_y, n_x, d, -1)
    dU = bidirectional_scan(bidirectional_scan(dS, c.gamma, axis=2), c.gamma, axis=3)
    dU = dU.reshape(B, h, N, d, -1)
    return dq, np.einsum("bhnde,bhne->bhnd", dU, c.v), np.einsum("bhnd,bhnde->bhne", c.k, dU)


# --- one mixing layer for the three classifiers --------------------------------------------------

class MixCache(NamedTuple):
    """What [`vision_mix_backward`][minirnn.vision.vision_mix_backward] needs."""

    x: np.ndarray          # (B, N, D)
    params: dict
    n_heads: int
    mixer: str
    grid: tuple | None
    gamma: np.ndarray | None
    core: tuple            # the cache of the core
    merged: np.ndarray     # (B, N, D) the heads merged, input of Wo


def vision_cores(grid=None, gamma=None) -> dict:
    """The four token-mixing cores as a table ``{name: (forward, backward)}``, every
    ``forward(q, k, v) -> (o, cache)`` and every ``backward(do, cache) -> (dq, dk, dv)``:

    - ``"attention"`` (ViT): softmax attention, every token sees every token (A.5);
    - ``"masa"`` (RMT): Manhattan-decay attention on the ``grid`` (V.6);
    - ``"masa_decomposed"`` (RMT's cheaper form): (V.7);
    - ``"retention"`` (ViR): causal retention in raster order with retention's normalisations
      (R.6), from [`minirnn.retention`][minirnn.retention], each image a new sequence.

    Parameters
    ----------
    grid : tuple of int, optional
        ``(n_y, n_x)``, for the MaSA cores.
    gamma : ndarray of shape (h,), optional
        Decays, for every core but attention.

    Returns
    -------
    dict
    """
    def retention(q, k, v):
        o, _, cache = retention_parallel(q, k, v, gamma)
        return o, cache

    return {"attention": (lambda q, k, v: attention_forward(q, k, v, causal=False),
                          attention_backward),
            "masa": (lambda q, k, v: masa_forward(q, k, v, grid, gamma), masa_backward),
            "masa_decomposed": (lambda q, k, v: masa_decomposed_forward(q, k, v, grid, gamma),
                                masa_decomposed_backward),
            "retention": (retention, lambda do, cache: retention_parallel_backward(do, cache)[:3])}


def vision_mix_forward(x: np.ndarray, params: dict[str, np.ndarray], n_heads: int, mixer: str,
                       grid=None, gamma=None):
    """The token-mixing layer of the three classifiers: project, mix, project back.

    ``Q = X Wq``, ``K = X Wk``, ``V = X Wv`` split into heads, one of the four cores of
    [`vision_cores`][minirnn.vision.vision_cores], then the heads merged and multiplied by
    ``Wo``.

    Parameters
    ----------
    x : ndarray, shape (B, N, D)
    params : dict
        ``Wq``, ``Wk``, ``Wv``, ``Wo`` (D, D).
    n_heads : int
    mixer : {"attention", "masa", "masa_decomposed", "retention"}
    grid : tuple of int, optional
        ``(n_y, n_x)``, for the MaSA mixers.
    gamma : ndarray of shape (h,), optional
        Decays, for every mixer but attention.

    Returns
    -------
    y : ndarray, shape (B, N, D)
    cache : MixCache
    """
    x, params, gamma = check.vision_mix_forward(x, params, n_heads, mixer, grid, gamma)
    q, k, v = (split_heads(x @ params[name], n_heads) for name in ("Wq", "Wk", "Wv"))
    core_forward, _ = vision_cores(grid, gamma)[mixer]
    o, core = core_forward(q, k, v)
    merged = merge_heads(o)
    return merged @ params["Wo"], MixCache(x=x, params=params, n_heads=n_heads, mixer=mixer,
                                           grid=grid, gamma=gamma, core=core, merged=merged)


def vision_mix_backward(dy: np.ndarray, cache: MixCache):
    """Backward of [`vision_mix_forward`][minirnn.vision.vision_mix_forward].

    Returns
    -------
    dx : ndarray, shape (B, N, D)
    grads : dict
        ``Wq``, ``Wk``, ``Wv``, ``Wo``.
    """
    dy = check.vision_mix_backward(dy, cache)
    c, params = cache, cache.params
    grads = {"Wo": weight_gradient(c.merged, dy)}
    do = split_heads(dy @ params["Wo"].T, c.n_heads)
    _, core_backward = vision_cores(c.grid, c.gamma)[c.mixer]
    dx = np.zeros_like(c.x)
    for name, dhead in zip(("Wq", "Wk", "Wv"), core_backward(do, c.core)):
        dproj = merge_heads(dhead)
        grads[name] = weight_gradient(c.x, dproj)
        dx = dx + dproj @ params[name].T
    return dx, {key: grads[key] for key in params}
