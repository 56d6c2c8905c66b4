"""The Elman recurrent network, one step and a whole sequence, with backpropagation through time.

Equations (numbered as on the docs page ``derivations/rnn.md``)::

    a_t = x_t Wx + h_{t-1} Wh + b                                      (RNN.1)
    h_t = tanh(a_t)                                                    (RNN.2)

    delta_t = dh_t + da_{t+1} Wh^T     (all the gradient reaching h_t)  (RNN.3)
    da_t = delta_t * (1 - h_t^2)                                       (RNN.4)
    dWx = sum_t x_t^T da_t,  dWh = sum_t h_{t-1}^T da_t,  db = sum_t da_t   (RNN.5)
    dx_t = da_t Wx^T,  dh_0 = da_1 Wh^T                                (RNN.6)

Shapes: ``x`` (B, T, D), hidden states (B, T, H), ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import rnn as check

__all__ = [
    "RNNCache",
    "RNNStepCache",
    "init_rnn_params",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
]

class RNNStepCache(NamedTuple):
    """What [`rnn_step_backward`][minirnn.rnn.rnn_step_backward] needs from one forward step."""

    x: np.ndarray       # (B, D) input at this step
    h_prev: np.ndarray  # (B, H) previous hidden state
    h: np.ndarray       # (B, H) new hidden state tanh(a)
    Wx: np.ndarray      # (D, H)
    Wh: np.ndarray      # (H, H)


class RNNCache(NamedTuple):
    """What [`rnn_backward`][minirnn.rnn.rnn_backward] needs from a whole forward sequence."""

    x: np.ndarray       # (B, T, D) inputs
    h0: np.ndarray      # (B, H) initial hidden state
    h: np.ndarray       # (B, T, H) every hidden state h_1 .. h_T
    Wx: np.ndarray      # (D, H)
    Wh: np.ndarray      # (H, H)


def init_rnn_params(D: int, H: int, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """Initial parameters of an Elman RNN.

    ``Wx`` has independent normal entries with standard deviation ``1/sqrt(D)``, so ``x_t Wx``
    keeps roughly unit variance for unit-variance inputs. ``Wh`` is a random orthogonal matrix
    (all singular values 1), which neither shrinks nor stretches the hidden state at the start of
    training: the most forgiving choice against vanishing and exploding gradients (see the
    derivation page). ``b`` is zero.

    Parameters
    ----------
    D, H : int
        Input width and hidden width.
    seed : int, optional
        Seed of the ``np.random.Generator`` used.
    dtype : numpy dtype, optional
        float64 (default) or float32.

    Returns
    -------
    dict
        ``{"Wx": (D, H), "Wh": (H, H), "b": (H,)}``.
    """
    rng = np.random.default_rng(seed)
    Wx = rng.standard_normal((D, H)) / np.sqrt(D)
    q, r = np.linalg.qr(rng.standard_normal((H, H)))
    Wh = q * np.sign(np.diag(r))  # sign fix makes the orthogonal matrix uniformly distributed
    return {"Wx": Wx.astype(dtype), "Wh": Wh.astype(dtype), "b": np.zeros(H, dtype=dtype)}


def rnn_step_forward(x: np.ndarray, h_prev: np.ndarray,
                     params: dict[str, np.ndarray]) -> tuple[np.ndarray, RNNStepCache]:
    """One step of the Elman RNN: ``h = tanh(x Wx + h_prev Wh + b)``.

    Implements eqs. (RNN.1) and (RNN.2).

    Parameters
    ----------
    x : ndarray, shape (B, D)
        Input at this time step.
    h_prev : ndarray, shape (B, H)
        Hidden state of the previous step.
    params : dict
        ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,).

    Returns
    -------
    h : ndarray, shape (B, H)
        The new hidden state, in the promoted float dtype of the inputs.
    cache : RNNStepCache
        Saved values for [`rnn_step_backward`][minirnn.rnn.rnn_step_backward].
    """
    x, h_prev, params = check.rnn_step_forward(x, h_prev, params)
    a = x @ params["Wx"] + h_prev @ params["Wh"] + params["b"]    # (RNN.1)
    h = np.tanh(a)                                                 # (RNN.2)
    return h, RNNStepCache(x, h_prev, h, params["Wx"], params["Wh"])


def rnn_step_backward(dh: np.ndarray, cache: RNNStepCache):
    """Backward of one RNN step.

    Implements eqs. (RNN.4) to (RNN.6) for a single step (there is no later step, so the
    gradient reaching ``h`` is just ``dh``).

    Parameters
    ----------
    dh : ndarray, shape (B, H)
        Gradient of the loss with respect to the step's output ``h``.
    cache : RNNStepCache
        From [`rnn_step_forward`][minirnn.rnn.rnn_step_forward].

    Returns
    -------
    dx : ndarray, shape (B, D)
    dh_prev : ndarray, shape (B, H)
    grads : dict
        ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,).
    """
    dh = check.rnn_step_backward(dh, cache)
    # --- exercise: rnn_step_backward ---
    da = dh * (1.0 - cache.h ** 2)                       # (RNN.4): tanh'(a) = 1 - tanh(a)^2
    dx = da @ cache.Wx.T                                 # (RNN.6)
    dh_prev = da @ cache.Wh.T                            # (RNN.3) for the previous step
    grads = {"Wx": cache.x.T @ da, "Wh": cache.h_prev.T @ da, "b": da.sum(axis=0)}  # (RNN.5)
    return dx, dh_prev, grads
    # --- end ---


def rnn_forward(x: np.ndarray, h0: np.ndarray,
                params: dict[str, np.ndarray]) -> tuple[np.ndarray, RNNCache]:
    """Run the Elman RNN over a whole sequence.

    Implements eqs. (RNN.1) and (RNN.2) for ``t = 1 .. T``. The input projection ``x_t Wx + b``
    does not depend on the previous state, so it is computed for all steps at once; only the
    recurrence ``h_{t-1} Wh`` loops over time.

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
        Input sequence.
    h0 : ndarray, shape (B, H)
        Initial hidden state (zeros are a common choice).
    params : dict
        ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,).

    Returns
    -------
    h : ndarray, shape (B, T, H)
        Every hidden state ``h_1 .. h_T`` (``h[:, -1]`` is the final state).
    cache : RNNCache
        Saved values for [`rnn_backward`][minirnn.rnn.rnn_backward].
    """
    x, h0, params = check.rnn_forward(x, h0, params)
    xw = x @ params["Wx"] + params["b"]                  # (B, T, H): the non-recurrent part
    h_t, hs = h0, []
    for t in range(x.shape[1]):                          # the recurrence (RNN.1)-(RNN.2)
        h_t = np.tanh(xw[:, t] + h_t @ params["Wh"])
        hs.append(h_t)
    h = np.stack(hs, axis=1)                             # (B, T, H): h_1 .. h_T
    return h, RNNCache(x, h0, h, params["Wx"], params["Wh"])


def rnn_backward(dh: np.ndarray, cache: RNNCache):
    """Backpropagation through time for [`rnn_forward`][minirnn.rnn.rnn_forward].

    Walks the sequence backwards. At each step the gradient reaching ``h_t`` is its own upstream
    gradient plus what flows back from step ``t + 1`` through ``Wh`` (RNN.3); multiplying by
    ``tanh'`` gives ``da_t`` (RNN.4). The weight gradients are sums over time (RNN.5), computed
    after the loop in one contraction each.

    Parameters
    ----------
    dh : ndarray, shape (B, T, H)
        Upstream gradient on every hidden state (zeros where a state does not reach the loss).
    cache : RNNCache
        From [`rnn_forward`][minirnn.rnn.rnn_forward].

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    dh0 : ndarray, shape (B, H)
    grads : dict
        ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,).
    """
    dh = check.rnn_backward(dh, cache)
    h = cache.h
    da = np.empty(h.shape, dtype=np.result_type(h, dh))          # da_t of every step, (B, T, H)
    # --- exercise: rnn_backward ---
    da_next_WhT = np.zeros_like(da[:, 0])                # da_{t+1} Wh^T, zero after the last step
    for t in reversed(range(h.shape[1])):
        delta = dh[:, t] + da_next_WhT                   # all that reaches h_t  (RNN.3)
        da[:, t] = delta * (1.0 - h[:, t] ** 2)          # (RNN.4)
        da_next_WhT = da[:, t] @ cache.Wh.T
    h_prev = np.concatenate([cache.h0[:, None], h[:, :-1]], axis=1)  # h_0 .. h_{T-1}
    grads = {                                                         # (RNN.5)
        "Wx": np.einsum("btd,bth->dh", cache.x, da, optimize=True),
        "Wh": np.einsum("bti,bth->ih", h_prev, da, optimize=True),
        "b": da.sum(axis=(0, 1)),
    }
    dx = da @ cache.Wx.T                                             # (RNN.6)
    dh0 = da_next_WhT                                                # (RNN.6): da_1 Wh^T
    return dx, dh0, grads
    # --- end ---
