"""The LSTM, one step and a whole sequence, forward and backward, in CS231n's conventions.

Rows are examples; the four blocks come from one matrix product, in the order **i, f, o, c_bar**
(CS231n's ``rnn_layers.py`` order i, f, o, g; PyTorch stores i, f, g, o). The candidate cell is
``c_bar`` here (CS231n's ``g``: minirnn keeps ``g`` for nothing, see the notation page).
Equations, numbered as on the docs page ``derivations/lstm-gru.md``::

    a = x_t Wx + h_{t-1} Wh + b,   split into four (B, H) blocks a_i, a_f, a_o, a_c   (LSTM.1)
    i = sigmoid(a_i), f = sigmoid(a_f), o = sigmoid(a_o), c_bar = tanh(a_c)          (LSTM.2)
    c_t = f * c_{t-1} + i * c_bar,   h_t = o * tanh(c_t)                              (LSTM.3)

    dc = dc_next + dh * o * (1 - tanh(c_t)^2)     (the cell's two sources, added)     (LSTM.4)
    do = dh * tanh(c_t), di = dc * c_bar, df = dc * c_{t-1}, dc_bar = dc * i,
    dc_{t-1} = dc * f                               (the carousel: no matrix, no tanh') (LSTM.5)
    da = [di i(1-i), df f(1-f), do o(1-o), dc_bar (1-c_bar^2)]  (derivatives at the
                                                     pre-activation,
                                                         written with the activated values) (LSTM.6)
    dx = da Wx^T,  dh_{t-1} = da Wh^T,  dWx = x^T da,  dWh = h_{t-1}^T da,  db = sum da (LSTM.7)

Shapes: ``x`` (B, T, D), hidden and cell states (B, T, H), ``Wx`` (D, 4H), ``Wh`` (H, 4H),
``b`` (4H,).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import lstm as check
from .layers import matmul_few_rows, weight_gradient

__all__ = [
    "LSTMCache",
    "LSTMStepCache",
    "init_lstm_params",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "sigmoid",
]


class LSTMStepCache(NamedTuple):
    """What [`lstm_step_backward`][minirnn.lstm.lstm_step_backward] needs from one step."""

    x: np.ndarray       # (B, D) input at this step
    h_prev: np.ndarray  # (B, H) previous hidden state
    c_prev: np.ndarray  # (B, H) previous cell
    i: np.ndarray       # (B, H) input gate
    f: np.ndarray       # (B, H) forget gate
    o: np.ndarray       # (B, H) output gate
    c_bar: np.ndarray   # (B, H) candidate cell tanh(a_c)
    c: np.ndarray       # (B, H) new cell c_t
    tanh_c: np.ndarray  # (B, H) tanh(c_t)
    Wx: np.ndarray      # (D, 4H)
    Wh: np.ndarray      # (H, 4H)


class LSTMCache(NamedTuple):
    """What [`lstm_backward`][minirnn.lstm.lstm_backward] needs from a whole sequence."""

    x: np.ndarray       # (B, T, D) inputs
    h0: np.ndarray      # (B, H) initial hidden state
    c0: np.ndarray      # (B, H) initial cell
    h: np.ndarray       # (B, T, H) every hidden state h_1 .. h_T
    c: np.ndarray       # (B, T, H) every cell c_1 .. c_T
    gates: np.ndarray   # (B, T, 4H) i, f, o, c_bar of every step (activated)
    Wx: np.ndarray      # (D, 4H)
    Wh: np.ndarray      # (H, 4H)


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-a))``, right for every ``a``.

    Written as the equation. For very negative ``a`` (below about -88 in float32, -709 in
    float64) ``exp(-a)`` overflows to ``inf`` and ``1 / (1 + inf)`` is ``0``: the correct limit,
    so NumPy's overflow warning is silenced here. Down to the smallest normal number the value
    keeps full relative precision, far out on the negative side too (``(1 + tanh(a / 2)) / 2``
    would lose it there: ``1 + tanh`` cancels). It is also faster than picking between two
    branches by the sign of ``a``, which matters inside a recurrent loop.

    Parameters
    ----------
    a : ndarray, any shape

    Returns
    -------
    ndarray, same shape and dtype
    """
    a = check.sigmoid(a)
    with np.errstate(over="ignore"):                               # exp(-a) = inf gives 0
        return 1.0 / (1.0 + np.exp(-a))


def init_lstm_params(D: int, H: int, seed: int = 0, dtype=np.float64,
                     forget_bias: float = 1.0) -> dict[str, np.ndarray]:
    """Initial parameters of an LSTM, with the forget gate's bias at ``forget_bias`` (+1).

    ``Wx`` has normal entries of standard deviation ``1/sqrt(D)``; each of the four ``H x H``
    blocks of ``Wh`` is a random orthogonal matrix (as for the Elman RNN). The biases are zero
    except the forget gate's, which starts at +1: then ``f = sigmoid(1) = 0.73`` at the start of
    training, so the cell keeps most of what it holds and gradients reach far back from the
    first update on. With a zero bias ``f = 0.5`` halves the cell at every step and the gradient
    along the carousel shrinks like ``0.5^T``. Gers et al. (2000) introduced the forget gate and
    noted it must start open; Jozefowicz et al. (2015) found that a bias of 1 closes most of
    the gap between the LSTM and the GRU (see references).

    Parameters
    ----------
    D, H : int
        Input width and hidden width.
    seed : int, optional
    dtype : numpy dtype, optional
    forget_bias : float, optional
        Initial bias of the forget gate (1.0).

    Returns
    -------
    dict
        ``{"Wx": (D, 4H), "Wh": (H, 4H), "b": (4H,)}``, gate order i, f, o, c_bar.
    """
    rng = np.random.default_rng(seed)
    Wx = rng.standard_normal((D, 4 * H)) / np.sqrt(D)
    blocks = []
    for _ in range(4):
        q, r = np.linalg.qr(rng.standard_normal((H, H)))
        blocks.append(q * np.sign(np.diag(r)))
    b = np.zeros(4 * H)
    b[H:2 * H] = forget_bias                                  # the forget gate's block
    return {"Wx": Wx.astype(dtype), "Wh": np.concatenate(blocks, axis=1).astype(dtype),
            "b": b.astype(dtype)}


def lstm_step_forward(x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray,
                      params: dict[str, np.ndarray]):
    """One LSTM step.

    Implements eqs. (LSTM.1) to (LSTM.3).

    Parameters
    ----------
    x : ndarray, shape (B, D)
    h_prev, c_prev : ndarray, shape (B, H)
        Hidden state and cell of the previous step.
    params : dict
        ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,), gate order i, f, o, c_bar.

    Returns
    -------
    h, c : ndarray, shape (B, H)
        The new hidden state and cell.
    cache : LSTMStepCache
    """
    x, h_prev, c_prev, params = check.lstm_step_forward(x, h_prev, c_prev, params)
    H = h_prev.shape[1]
    a = x @ params["Wx"] + h_prev @ params["Wh"] + params["b"]     # (LSTM.1)
    i = sigmoid(a[:, :H])                                          # (LSTM.2)
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    c_bar = np.tanh(a[:, 3 * H:])
    c = f * c_prev + i * c_bar                                         # (LSTM.3)
    tanh_c = np.tanh(c)
    h = o * tanh_c
    return h, c, LSTMStepCache(x=x, h_prev=h_prev, c_prev=c_prev, i=i, f=f, o=o, c_bar=c_bar,
                               c=c, tanh_c=tanh_c, Wx=params["Wx"], Wh=params["Wh"])


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, cache: LSTMStepCache):
    """Backward of one LSTM step.

    Implements eqs. (LSTM.4) to (LSTM.7). ``dh`` is all the gradient reaching ``h_t`` (its own
    loss plus what step ``t + 1`` sends back); ``dc`` is the gradient step ``t + 1`` sends to the
    cell directly. The cell's total gradient is their sum (LSTM.4).

    Parameters
    ----------
    dh, dc : ndarray, shape (B, H)
        Gradients with respect to the step's ``h`` and ``c``.
    cache : LSTMStepCache
        From [`lstm_step_forward`][minirnn.lstm.lstm_step_forward].

    Returns
    -------
    dx : ndarray, shape (B, D)
    dh_prev, dc_prev : ndarray, shape (B, H)
    grads : dict
        ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,).
    """
    dh, dc = check.lstm_step_backward(dh, dc, cache)
    i, f, o, c_bar = cache.i, cache.f, cache.o, cache.c_bar
    # --- exercise: lstm_step_backward ---
    dc_total = dc + dh * o * (1.0 - cache.tanh_c ** 2)             # (LSTM.4): two sources
    do = dh * cache.tanh_c                                         # (LSTM.5)
    di = dc_total * c_bar
    df = dc_total * cache.c_prev
    dc_bar = dc_total * i
    dc_prev = dc_total * f
    da = np.concatenate([di * i * (1.0 - i), df * f * (1.0 - f),   # (LSTM.6)
                         do * o * (1.0 - o), dc_bar * (1.0 - c_bar ** 2)], axis=1)
    dx = da @ cache.Wx.T                                           # (LSTM.7)
    dh_prev = da @ cache.Wh.T
    grads = {"Wx": cache.x.T @ da, "Wh": cache.h_prev.T @ da, "b": da.sum(axis=0)}
    return dx, dh_prev, dc_prev, grads
    # --- end ---


def lstm_forward(x: np.ndarray, h0: np.ndarray, params: dict[str, np.ndarray],
                 c0: np.ndarray | None = None):
    """Run the LSTM over a whole sequence.

    Eqs. (LSTM.1) to (LSTM.3) for ``t = 1 .. T``; the input projection ``x_t Wx + b`` is
    computed for every step at once, only ``h_{t-1} Wh`` and the cell loop over time.

    Parameters
    ----------
    x : ndarray, shape (B, T, D)
    h0 : ndarray, shape (B, H)
    params : dict
        ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,).
    c0 : ndarray, shape (B, H), optional
        Initial cell; zeros when ``None`` (CS231n's choice).

    Returns
    -------
    h : ndarray, shape (B, T, H)
        Every hidden state ``h_1 .. h_T``.
    cache : LSTMCache
        For [`lstm_backward`][minirnn.lstm.lstm_backward]; ``cache.c[:, -1]`` is the final cell.
    """
    x, h0, params, c0 = check.lstm_forward(x, h0, params, c0)
    if c0 is None:
        c0 = np.zeros_like(h0)
    B, T, _ = x.shape
    H = h0.shape[1]
    dtype = np.result_type(x, h0, c0, *(params[k] for k in ("Wx", "Wh", "b")))   # float64 wins
    xw = np.matmul(x, params["Wx"], dtype=dtype)                   # (B, T, 4H)
    xw += params["b"]                                              # in place: xw is large
    h = np.empty((B, T, H), dtype=dtype)
    c = np.empty((B, T, H), dtype=dtype)
    gates = np.empty((B, T, 4 * H), dtype=dtype)
    h_t, c_t = h0, c0
    for t in range(T):                                             # (LSTM.1)-(LSTM.3)
        a = xw[:, t] + matmul_few_rows(h_t, params["Wh"])         # h_{t-1} Wh, B rows
        ifo = sigmoid(a[:, :3 * H])
        c_bar = np.tanh(a[:, 3 * H:])
        c_t = ifo[:, H:2 * H] * c_t + ifo[:, :H] * c_bar
        h_t = ifo[:, 2 * H:] * np.tanh(c_t)
        h[:, t], c[:, t], gates[:, t, :3 * H], gates[:, t, 3 * H:] = h_t, c_t, ifo, c_bar
    return h, LSTMCache(x=x, h0=h0, c0=c0, h=h, c=c, gates=gates, Wx=params["Wx"],
                        Wh=params["Wh"])


def lstm_backward(dh: np.ndarray, cache: LSTMCache):
    """Backpropagation through time for [`lstm_forward`][minirnn.lstm.lstm_forward].

    Walks ``t = T .. 1`` carrying two gradients, ``dh_next`` (through ``Wh``) and ``dc_next``
    (along the cell, times ``f``), both zero after the last step; at each step the gradient
    reaching ``h_t`` is ``dh[:, t] + dh_next`` and (LSTM.4)-(LSTM.6) give ``da_t``. The weight
    gradients (LSTM.7) are sums over time, one contraction each after the loop.

    Parameters
    ----------
    dh : ndarray, shape (B, T, H)
        Upstream gradient on every hidden state.
    cache : LSTMCache

    Returns
    -------
    dx : ndarray, shape (B, T, D)
    dh0, dc0 : ndarray, shape (B, H)
    grads : dict
        ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,).
    """
    dh = check.lstm_backward(dh, cache)
    H = cache.h0.shape[1]
    i, f, o, c_bar = (cache.gates[..., k * H:(k + 1) * H] for k in range(4))   # (B, T, H)
    c_prev = np.concatenate([cache.c0[:, None], cache.c[:, :-1]], axis=1)     # c_0 .. c_{T-1}
    tanh_c = np.tanh(cache.c)
    # What does not depend on the gradients is computed for every step at once, before the loop:
    # the factors that turn dc_total (or, for o, the gradient reaching h_t) into each gate's da.
    dc_from_dh = o * (1.0 - tanh_c ** 2)                           # (LSTM.4)
    da_i_per_dc = c_bar * i * (1.0 - i)                            # (LSTM.5)-(LSTM.6)
    da_f_per_dc = c_prev * f * (1.0 - f)
    da_o_per_dh = tanh_c * o * (1.0 - o)
    da_c_bar_per_dc = i * (1.0 - c_bar ** 2)
    da = np.empty(cache.gates.shape, dtype=np.result_type(cache.gates, dh))   # (B, T, 4H)
    Wh_T = np.ascontiguousarray(cache.Wh.T)            # a stored W^T: BLAS is faster than on a view
    dh_next = np.zeros_like(cache.h0, dtype=da.dtype)
    dc_next = np.zeros_like(dh_next)
    for t in reversed(range(cache.h.shape[1])):
        delta = dh[:, t] + dh_next                                 # all that reaches h_t
        dc_total = dc_next + delta * dc_from_dh[:, t]              # (LSTM.4)
        da[:, t, :H] = dc_total * da_i_per_dc[:, t]                # (LSTM.5)-(LSTM.6)
        da[:, t, H:2 * H] = dc_total * da_f_per_dc[:, t]
        da[:, t, 2 * H:3 * H] = delta * da_o_per_dh[:, t]
        da[:, t, 3 * H:] = dc_total * da_c_bar_per_dc[:, t]
        dc_next = dc_total * f[:, t]                               # the carousel
        dh_next = matmul_few_rows(da[:, t], Wh_T)
    h_prev = np.concatenate([cache.h0[:, None], cache.h[:, :-1]], axis=1)     # h_0 .. h_{T-1}
    grads = {"Wx": weight_gradient(cache.x, da),                      # (LSTM.7)
             "Wh": weight_gradient(h_prev, da),
             "b": da.sum(axis=(0, 1))}
    return da @ cache.Wx.T, dh_next, dc_next, grads
