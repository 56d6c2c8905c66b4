"""The GRU, one step and a whole sequence, forward and backward, in both reset conventions.

PyTorch's conventions: gate order **r, z, n**, two bias vectors, and
``h_t = (1 - z) * n + z * h_{t-1}`` (``z`` near 1 *keeps* the old state). PyTorch's candidate
``n`` is ``h_bar`` here (``n`` counts positions in minirnn), and the recurrent pre-activation of
the candidate is ``a_hh``. The two conventions differ only in where the reset gate acts, and
they are different functions (no weight mapping makes one equal the other; see
``derivations/lstm-gru.md``). Equations::

    ax = x_t Wx + bx,  ah = h_{t-1} Wh + bh,   each split into (B, H) blocks r, z, h    (GRU.1)
    r = sigmoid(ax_r + ah_r),  z = sigmoid(ax_z + ah_z)                                 (GRU.2)
    reset="after"  (PyTorch, cuDNN, Cho et al. v1):
        a_hh = h_{t-1} Wh_h + bh_h,   h_bar = tanh(ax_h + r * a_hh)           (GRU.3, after)
    reset="before" (Cho et al. 2014 v3, d2l):
        h_bar = tanh(ax_h + (r * h_{t-1}) Wh_h + bh_h)                         (GRU.3, before)
    h_t = (1 - z) * h_bar + z * h_{t-1}                                                 (GRU.4)

    dh_bar = dh (1 - z),  dz = dh (h_{t-1} - h_bar),  dh_{t-1} = dh z  (direct path)   (GRU.5)
    da_h = dh_bar (1 - h_bar^2)                                                         (GRU.6)
    after:  dr = da_h * a_hh,  dah_h = da_h * r  (to Wh_h, bh_h, h_{t-1})    (GRU.7, after)
    before: d(r h) = da_h Wh_h^T,  dr = d(r h) * h_{t-1},
            dh_{t-1} += d(r h) * r                                            (GRU.7, before)
    da_r = dr r (1 - r),  da_z = dz z (1 - z)                                           (GRU.8)
    dax = [da_r, da_z, da_h],  dx = dax Wx^T,  dWx = x^T dax,  dbx = sum dax            (GRU.9)
    dah = [da_r, da_z, dah_h]: dWh = [h_{t-1}, h_{t-1}, hh_in]^T dah,  dbh = sum dah,
    dh_{t-1} += dah Wh^T (the candidate's block only for "after")                       (GRU.10)

Shapes: ``x`` (B, T, D), hidden states (B, T, H), ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``bx`` and
``bh`` (3H,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import gru as check
from .layers import matmul_few_rows, weight_gradient
from .lstm import sigmoid

__all__ = [
    "GRUCache",
    "GRUStepCache",
    "gru_backward",
    "gru_forward",
    "gru_step_backward",
    "gru_step_forward",
    "init_gru_params",
]


class GRUStepCache(NamedTuple):
    """What [`gru_step_backward`][minirnn.gru.gru_step_backward] needs from one step."""

    x: np.ndarray       # (B, D)
    h_prev: np.ndarray  # (B, H)
    r: np.ndarray       # (B, H) reset gate
    z: np.ndarray       # (B, H) update gate
    h_bar: np.ndarray   # (B, H) candidate (PyTorch's n)
    a_hh: np.ndarray    # (B, H) h_prev Wh_h + bh_h (what r multiplies in "after")
    Wx: np.ndarray      # (D, 3H)
    Wh: np.ndarray      # (H, 3H)
    reset: str          # "after" or "before"


class GRUCache(NamedTuple):
    """What [`gru_backward`][minirnn.gru.gru_backward] needs from a whole sequence: the inputs,
    every hidden state, and the gates, candidates and ``a_hh`` of every step (a step's backward
    needs those of its own step)."""

    x: np.ndarray       # (B, T, D)
    h0: np.ndarray      # (B, H)
    h: np.ndarray       # (B, T, H) every hidden state h_1 .. h_T
    r: np.ndarray       # (B, T, H) reset gate of every step
    z: np.ndarray       # (B, T, H) update gate of every step
    h_bar: np.ndarray   # (B, T, H) candidate of every step
    a_hh: np.ndarray    # (B, T, H) h_{t-1} Wh_h + bh_h of every step
    Wx: np.ndarray      # (D, 3H)
    Wh: np.ndarray      # (H, 3H)
    reset: str          # "after" or "before"

    def step(self, t: int) -> GRUStepCache:
        """The cache of step ``t`` (0-based) alone, as
        [`gru_step_forward`][minirnn.gru.gru_step_forward] returns it."""
        h_prev = self.h0 if t == 0 else self.h[:, t - 1]
        return GRUStepCache(x=self.x[:, t], h_prev=h_prev, r=self.r[:, t], z=self.z[:, t],
                            h_bar=self.h_bar[:, t], a_hh=self.a_hh[:, t], Wx=self.Wx,
                            Wh=self.Wh, reset=self.reset)


def init_gru_params(D: int, H: int, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """Initial parameters of a GRU: ``Wx`` normal with standard deviation ``1/sqrt(D)``, each
    ``H x H`` block of ``Wh`` orthogonal, biases zero (``z = 0.5`` at the start: the new state
    is half old, half new).

    Returns
    -------
    dict
        ``{"Wx": (D, 3H), "Wh": (H, 3H), "bx": (3H,), "bh": (3H,)}``,
        gate order r, z, h_bar (PyTorch's r, z, n).
    """
    rng = np.random.default_rng(seed)
    Wx = rng.standard_normal((D, 3 * H)) / np.sqrt(D)
    blocks = []
    for _ in range(3):
        q, r = np.linalg.qr(rng.standard_normal((H, H)))
        blocks.append(q * np.sign(np.diag(r)))
    return {"Wx": Wx.astype(dtype), "Wh": np.concatenate(blocks, axis=1).astype(dtype),
            "bx": np.zeros(3 * H, dtype=dtype), "bh": np.zeros(3 * H, dtype=dtype)}


def gru_step_forward(x: np.ndarray, h_prev: np.ndarray, params: dict[str, np.ndarray],
                     reset: str = "after"):
    """One GRU step.

    Implements eqs. (GRU.1)-(GRU.4), with (GRU.3, after) for ``reset="after"`` (equal to
    ``torch.nn.GRU`` with ``Wx = weight_ih.T``, ``Wh = weight_hh.T``, ``bx = bias_ih``,
    ``bh = bias_hh``) or (GRU.3, before) for ``reset="before"``.

    Parameters
    ----------
    x : ndarray, shape (B, D)
    h_prev : ndarray, shape (B, H)
    params : dict
        ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``bx`` (3H,), ``bh`` (3H,),
        gate order r, z, h_bar (PyTorch's r, z, n).
    reset : {"after", "before"}
        Where the reset gate acts.

    Returns
    -------
    h : ndarray, shape (B, H)
    cache : GRUStepCache
    """
    x, h_prev, params, reset = check.gru_step_forward(x, h_prev, params, reset)
    H = h_prev.shape[1]
    Wh = params["Wh"]
    ax = x @ params["Wx"] + params["bx"]                              # (GRU.1)
    ah_rz = h_prev @ Wh[:, :2 * H] + params["bh"][:2 * H]
    r = sigmoid(ax[:, :H] + ah_rz[:, :H])                             # (GRU.2)
    z = sigmoid(ax[:, H:2 * H] + ah_rz[:, H:])
    a_hh = h_prev @ Wh[:, 2 * H:] + params["bh"][2 * H:]              # ah of the candidate
    if reset == "after":
        h_bar = np.tanh(ax[:, 2 * H:] + r * a_hh)                     # (GRU.3) after
    else:
        h_bar = np.tanh(ax[:, 2 * H:] + (r * h_prev) @ Wh[:, 2 * H:]
                        + params["bh"][2 * H:])                      # (GRU.3) before
    h = (1.0 - z) * h_bar + z * h_prev                                # (GRU.4)
    return h, GRUStepCache(x=x, h_prev=h_prev, r=r, z=z, h_bar=h_bar, a_hh=a_hh,
                           Wx=params["Wx"], Wh=Wh, reset=reset)


def gru_step_backward(dh: np.ndarray, cache: GRUStepCache):
    """Backward of one GRU step (either convention).

    Implements eqs. (GRU.5)-(GRU.10). The gradient reaches ``h_{t-1}`` by three roads: directly
    through ``z * h_{t-1}`` (GRU.5), through the candidate's recurrent product (GRU.7), and
    through the two gates' recurrent products (GRU.10).

    Parameters
    ----------
    dh : ndarray, shape (B, H)
        All the gradient reaching the step's ``h``.
    cache : GRUStepCache

    Returns
    -------
    dx : ndarray, shape (B, D)
    dh_prev : ndarray, shape (B, H)
    grads : dict
        ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``bx`` (3H,), ``bh`` (3H,).
    """
    dh = check.gru_step_backward(dh, cache)
    r, z, h_bar, h_prev = cache.r, cache.z, cache.h_bar, cache.h_prev
    H = h_prev.shape[1]
    Wh_h = cache.Wh[:, 2 * H:]
    # --- exercise: gru_step_backward ---
    dh_bar = dh * (1.0 - z)                                           # (GRU.5)
    dz = dh * (h_prev - h_bar)
    dh_prev = dh * z
    da_h = dh_bar * (1.0 - h_bar ** 2)                                # (GRU.6)
    if cache.reset == "after":                                        # (GRU.7, after)
        dr = da_h * cache.a_hh
        dah_h = da_h * r                                              # d a_hh
        hh_in = h_prev                                                # what Wh_h multiplies
        dh_prev = dh_prev + dah_h @ Wh_h.T
    else:                                                             # (GRU.7, before)
        drh = da_h @ Wh_h.T
        dr = drh * h_prev
        dah_h = da_h
        hh_in = r * h_prev
        dh_prev = dh_prev + drh * r
    da_r = dr * r * (1.0 - r)                                         # (GRU.8)
    da_z = dz * z * (1.0 - z)
    dax = np.concatenate([da_r, da_z, da_h], axis=1)                  # (GRU.9)
    dah_rz = np.concatenate([da_r, da_z], axis=1)
    dh_prev = dh_prev + dah_rz @ cache.Wh[:, :2 * H].T                # (GRU.10)
    grads = {"Wx": cache.x.T @ dax, "bx": dax.sum(axis=0),
             "Wh": np.concatenate([h_prev.T @ dah_rz, hh_in.T @ dah_h], axis=1),
             "bh": np.concatenate([dah_rz.sum(axis=0), dah_h.sum(axis=0)])}
    return dax @ cache.Wx.T, dh_prev, grads
    # --- end ---


def gru_forward(x: np.ndarray, h0: np.ndarray, params: dict[str, np.ndarray],
                reset: str = "after"):
    """Run the GRU over a whole sequence: eqs. (GRU.1)-(GRU.4) for ``t = 1 .. T``, equal to
    ``T`` calls of [`gru_step_forward`][minirnn.gru.gru_step_forward].

    The input half of (GRU.1), ``x_t Wx + bx``, is computed for every step at once before the
    loop; only ``h_{t-1} Wh`` and the gates loop over time.

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    h0 : ndarray, shape (B, H)
    params : dict
        ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``bx`` (3H,), ``bh`` (3H,).
    reset : {"after", "before"}

    Returns
    -------
    h : ndarray, shape (B, T, H)
        Every hidden state ``h_1 .. h_T``.
    cache : GRUCache
    """
    x, h0, params, reset = check.gru_forward(x, h0, params, reset)
    B, T, _ = x.shape
    H = h0.shape[1]
    Wh, bh = params["Wh"], params["bh"]
    dtype = np.result_type(x, h0, *(params[k] for k in ("Wx", "Wh", "bx", "bh")))   # float64 wins
    ax = np.matmul(x, params["Wx"], dtype=dtype)                      # (GRU.1), (B, T, 3H)
    ax += params["bx"]                                                # in place: ax is large
    h, r, z, h_bar, a_hh = (np.empty((B, T, H), dtype=dtype) for _ in range(5))
    h_t = h0
    for t in range(T):
        h_prev = h_t
        ah = matmul_few_rows(h_prev, Wh) + bh                         # (GRU.1), (B, 3H)
        r_t = sigmoid(ax[:, t, :H] + ah[:, :H])                       # (GRU.2)
        z_t = sigmoid(ax[:, t, H:2 * H] + ah[:, H:2 * H])
        a_hh_t = ah[:, 2 * H:]                                        # ah of the candidate
        if reset == "after":
            h_bar_t = np.tanh(ax[:, t, 2 * H:] + r_t * a_hh_t)        # (GRU.3) after
        else:
            h_bar_t = np.tanh(ax[:, t, 2 * H:] + (r_t * h_prev) @ Wh[:, 2 * H:]
                              + bh[2 * H:])                           # (GRU.3) before
        h_t = (1.0 - z_t) * h_bar_t + z_t * h_prev                    # (GRU.4)
        h[:, t], r[:, t], z[:, t], h_bar[:, t], a_hh[:, t] = h_t, r_t, z_t, h_bar_t, a_hh_t
    return h, GRUCache(x=x, h0=h0, h=h, r=r, z=z, h_bar=h_bar, a_hh=a_hh, Wx=params["Wx"],
                       Wh=Wh, reset=reset)


def gru_backward(dh: np.ndarray, cache: GRUCache):
    """Backpropagation through time for [`gru_forward`][minirnn.gru.gru_forward].

    Walks ``t = T .. 1``: the gradient reaching ``h_t`` is ``dh[:, t]`` plus what step ``t + 1``
    sent back, and eqs. (GRU.5)-(GRU.10) of [`gru_step_backward`][minirnn.gru.gru_step_backward]
    turn it into the step's ``dax`` and ``dah``. Only what flows back to ``h_{t-1}`` must wait
    for the step after; the weight gradients are sums over the steps, one contraction each
    after the loop.

    Parameters
    ----------
    dh : ndarray, shape (B, T, H)
    cache : GRUCache

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    dh0 : ndarray, shape (B, H)
    grads : dict
        ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``bx`` (3H,), ``bh`` (3H,).
    """
    dh = check.gru_backward(dh, cache)
    r, z, h_bar = cache.r, cache.z, cache.h_bar
    H = cache.h0.shape[1]
    h_prev = np.concatenate([cache.h0[:, None], cache.h[:, :-1]], axis=1)   # h_0 .. h_{T-1}
    after = cache.reset == "after"
    dax = np.empty((*r.shape[:2], 3 * H), dtype=np.result_type(r, dh))   # (B, T, 3H)
    dah = np.empty_like(dax)
    Wh_T = np.ascontiguousarray(cache.Wh.T)           # a stored W^T: BLAS is faster than on a view
    # (GRU.10): the carry goes back through the gates' blocks of Wh, and for "after" through the
    # candidate's block too ("before" sends the candidate's part back in (GRU.7) instead)
    through_Wh = 3 * H if after else 2 * H
    dh_next = np.zeros_like(cache.h0, dtype=dax.dtype)
    for t in reversed(range(r.shape[1])):
        delta = dh[:, t] + dh_next                                    # all that reaches h_t
        dh_bar = delta * (1.0 - z[:, t])                              # (GRU.5)
        dz = delta * (h_prev[:, t] - h_bar[:, t])
        dh_prev = delta * z[:, t]
        da_h = dh_bar * (1.0 - h_bar[:, t] ** 2)                      # (GRU.6)
        if after:                                                     # (GRU.7, after)
            dr = da_h * cache.a_hh[:, t]
            dah_h = da_h * r[:, t]
        else:                                                         # (GRU.7, before)
            drh = da_h @ Wh_T[2 * H:]
            dr = drh * h_prev[:, t]
            dah_h = da_h
            dh_prev = dh_prev + drh * r[:, t]
        da_r = dr * r[:, t] * (1.0 - r[:, t])                         # (GRU.8)
        da_z = dz * z[:, t] * (1.0 - z[:, t])
        dax[:, t] = np.concatenate([da_r, da_z, da_h], axis=1)        # (GRU.9)
        dah[:, t] = np.concatenate([da_r, da_z, dah_h], axis=1)       # (GRU.10)
        dh_next = dh_prev + matmul_few_rows(dah[:, t, :through_Wh],          # (GRU.10)
                                            Wh_T[:through_Wh])
    hh_in = h_prev if after else r * h_prev                           # what Wh_h multiplies
    grads = {"Wx": weight_gradient(cache.x, dax),                     # (GRU.9)
             "bx": dax.sum(axis=(0, 1)),
             "Wh": np.concatenate([weight_gradient(h_prev, dah[..., :2 * H]),
                                   weight_gradient(hh_in, dah[..., 2 * H:])], axis=1),  # (GRU.10)
             "bh": dah.sum(axis=(0, 1))}
    return dax @ cache.Wx.T, dh_next, grads
