"""What each sequence model carries from one token to the next: the ground floor of minirnn.

A language model that writes one token at a time must remember the tokens before it. The
memories of this library differ exactly in *what* they keep, and this file shows it side by side:

| memory | holds, per sequence and head | size after ``T`` tokens |
|---|---|---|
| `KVCache` (attention) | every key and value so far | ``2 T d`` numbers: grows with ``T`` |
| `RetentionState` | ``S`` (d x dv), ``z`` (d) | ``d dv + d``, whatever ``T`` is |
| `GatedState` | ``S``, ``z`` and a count ``s`` | ``d dv + d + 1``, whatever ``T`` is |
| `DeltaState` (DeltaNet) | ``S`` (d x dv) | ``d dv``, whatever ``T`` is |
| `MLSTMState` (mLSTM) | ``S`` (d x dv), ``z`` (d), the stabiliser ``mu`` | ``d dv + d + 1`` |
| (the LSTM) | the hidden vector ``h`` and the cell ``c`` | ``2 H`` numbers (two arrays) |
| (the Elman RNN) | the hidden vector ``h`` | ``H`` numbers (a plain array) |

Softmax attention must keep every key because the softmax of a new query re-weights all of
them; retention's exponential decay lets the whole past be folded into one ``d x dv`` matrix
(derivations/retention.md, (R.3)). The gradients of the fixed-size states, which a backward
pass hands from a later call to an earlier one, live here too.

Every state is a ``NamedTuple`` (or, for the growing cache, a small dataclass) built by keyword,
with a ``zeros`` (``empty``) constructor: the state before the first token. The math modules
build their initial states with it, one way everywhere. This module imports nothing from the rest
of the library, so everything can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["DeltaState", "DeltaStateGrad", "GatedState", "GatedStateGrad", "KVCache",
           "LSTMState", "MLSTMState", "MLSTMStateGrad", "RetentionState", "RetentionStateGrad"]


# --- softmax attention: a cache that grows --------------------------------------------------------

@dataclass
class KVCache:
    """Keys and values of every token decoded so far, for [`mha_step`][minirnn.attention.mha_step].

    The buffers are preallocated with room for ``capacity`` tokens and doubled when full, so
    appending a token costs O(1) amortised. Only the first ``length`` positions are valid.
    [`mha_step`][minirnn.attention.mha_step] updates the cache **in place** (and also returns it).

    Memory: ``2 * B * T * D`` numbers after ``T`` tokens; it grows with the context.
    """

    k: np.ndarray   # (B, h, capacity, d)
    v: np.ndarray   # (B, h, capacity, d)
    length: int = 0

    @classmethod
    def empty(cls, B: int, h: int, d: int, capacity: int = 64, dtype=np.float64) -> KVCache:
        """A cache with room for ``capacity`` tokens and none stored yet."""
        return cls(k=np.zeros((B, h, capacity, d), dtype=dtype),
                   v=np.zeros((B, h, capacity, d), dtype=dtype), length=0)

    @property
    def keys(self) -> np.ndarray:
        """Valid keys, shape (B, h, length, d) (a view, not a copy)."""
        return self.k[:, :, :self.length]

    @property
    def values(self) -> np.ndarray:
        """Valid values, shape (B, h, length, d) (a view, not a copy)."""
        return self.v[:, :, :self.length]

    def append(self, k_new: np.ndarray, v_new: np.ndarray) -> None:
        """Store ``T_new`` more keys and values, each (B, h, T_new, d), growing if needed."""
        end = self.length + k_new.shape[2]
        if end > self.k.shape[2]:
            capacity = max(end, 2 * self.k.shape[2])
            grow = [(0, 0), (0, 0), (0, capacity - self.k.shape[2]), (0, 0)]
            self.k, self.v = np.pad(self.k, grow), np.pad(self.v, grow)
        self.k[:, :, self.length:end] = k_new
        self.v[:, :, self.length:end] = v_new
        self.length = end


# --- retention: a fixed-size state ---------------------------------------------------------------

class RetentionState(NamedTuple):
    """What retention carries from one token (or chunk, or call) to the next."""

    S: np.ndarray   # (B, h, d, dv)  decayed sum of k_m^T v_m                     (R.3)
    z: np.ndarray   # (B, h, d)      decayed sum of k_m, for the score normaliser  (R.7)
    s: np.ndarray   # (h,) float64   decayed count s_n = sum_m gamma^(n-m), for kappa_n
    position: int   # tokens seen so far (the absolute position of the next token)

    @classmethod
    def zeros(cls, B: int, h: int, d: int, dv: int, dtype=np.float64) -> RetentionState:
        """The state before the first token: nothing stored, count 0, position 0."""
        return cls(S=np.zeros((B, h, d, dv), dtype=dtype), z=np.zeros((B, h, d), dtype=dtype),
                   s=np.zeros(h), position=0)


class RetentionStateGrad(NamedTuple):
    """Gradient of the loss with respect to a [`RetentionState`][minirnn.states.RetentionState].

    The count ``s`` depends only on the decays, so its gradient matters only when they are
    learned ([`retention_decay_gradient`][minirnn.gated.retention_decay_gradient]); the
    backward passes leave it ``None``."""

    S: np.ndarray   # (B, h, d, dv)
    z: np.ndarray   # (B, h, d)
    s: np.ndarray | None = None   # (h,)

    @classmethod
    def zeros_like(cls, state: RetentionState) -> RetentionStateGrad:
        """No gradient reaches ``state`` (nothing after it used it)."""
        return cls(S=np.zeros_like(state.S), z=np.zeros_like(state.z))


# --- gated retention: a fixed-size state with a count per sequence -------------------------------

class GatedState(NamedTuple):
    """What gated retention carries from one token (or chunk, or call) to the next."""

    S: np.ndarray   # (B, h, d, dv)  gated sum of k_m^T v_m                           (GR.2)
    z: np.ndarray   # (B, h, d)      gated sum of k_m, for the score normaliser
    s: np.ndarray   # (B, h) float64 gated count s_n = sum_m Gamma^g[n, m], for kappa_n
    position: int   # tokens seen so far

    @classmethod
    def zeros(cls, B: int, h: int, d: int, dv: int, dtype=np.float64) -> GatedState:
        """The state before the first token."""
        return cls(S=np.zeros((B, h, d, dv), dtype=dtype), z=np.zeros((B, h, d), dtype=dtype),
                   s=np.zeros((B, h)), position=0)


class GatedStateGrad(NamedTuple):
    """Gradient of the loss with respect to a [`GatedState`][minirnn.states.GatedState]. The
    count ``s`` has one too: it depends on the gates, so a gradient flows through it."""

    S: np.ndarray   # (B, h, d, dv)
    z: np.ndarray   # (B, h, d)
    s: np.ndarray   # (B, h)

    @classmethod
    def zeros_like(cls, state: GatedState) -> GatedStateGrad:
        """No gradient reaches ``state``."""
        return cls(S=np.zeros_like(state.S), z=np.zeros_like(state.z), s=np.zeros_like(state.s))


# --- the delta rule: a fixed-size state that is corrected, not only added to -------------------

class DeltaState(NamedTuple):
    """What DeltaNet (and gated DeltaNet) carries from one token (or chunk, or call) to the next:
    the fast-weight matrix ``S``, which maps a key to the value last written for it."""

    S: np.ndarray   # (B, h, d, dv)  the associative memory                          (DR.1)
    position: int   # tokens seen so far

    @classmethod
    def zeros(cls, B: int, h: int, d: int, dv: int, dtype=np.float64) -> DeltaState:
        """The state before the first token: an empty memory."""
        return cls(S=np.zeros((B, h, d, dv), dtype=dtype), position=0)


class DeltaStateGrad(NamedTuple):
    """Gradient of the loss with respect to a [`DeltaState`][minirnn.states.DeltaState]."""

    S: np.ndarray   # (B, h, d, dv)

    @classmethod
    def zeros_like(cls, state: DeltaState) -> DeltaStateGrad:
        """No gradient reaches ``state``."""
        return cls(S=np.zeros_like(state.S))


# --- the LSTM: a hidden vector and a cell ------------------------------------------------------

class LSTMState(NamedTuple):
    """What an LSTM carries from one token to the next: the hidden state ``h`` (what the rest
    of the model reads) and the cell ``c`` (the memory the gates write and keep)."""

    h: np.ndarray   # (B, H)                                                         (LSTM.3)
    c: np.ndarray   # (B, H)

    @classmethod
    def zeros(cls, B: int, H: int, dtype=np.float64) -> LSTMState:
        """The state before the first token."""
        return cls(h=np.zeros((B, H), dtype=dtype), c=np.zeros((B, H), dtype=dtype))


# --- xLSTM's mLSTM: a matrix memory stored scaled by its stabiliser ------------------------------

class MLSTMState(NamedTuple):
    """What the mLSTM carries from one token (or call) to the next: the paper's memory ``C``
    and normaliser state ``n`` are retention's ``S`` and ``z``. Both are stored scaled by
    ``exp(-mu)``, where ``mu`` is the stabiliser: the true memory is ``S exp(mu)``. Any ``mu``
    describes the same memory (scale ``S`` and ``z`` to match), and the outputs do not depend on
    which (derivations/min-rnn.md)."""

    S: np.ndarray   # (B, h, d, dv)  the matrix memory C, times exp(-mu)               (ML.2)
    z: np.ndarray   # (B, h, d)      the normaliser state n, times exp(-mu)
    mu: np.ndarray  # (B, h) float64 the stabiliser (a running maximum of log-weights)
    position: int   # tokens seen so far

    @classmethod
    def zeros(cls, B: int, h: int, d: int, dv: int, dtype=np.float64) -> MLSTMState:
        """The state before the first token: an empty memory, stabiliser 0."""
        return cls(S=np.zeros((B, h, d, dv), dtype=dtype), z=np.zeros((B, h, d), dtype=dtype),
                   mu=np.zeros((B, h)), position=0)


class MLSTMStateGrad(NamedTuple):
    """Gradient of the loss with respect to the stored (scaled) ``S`` and ``z`` of an
    [`MLSTMState`][minirnn.states.MLSTMState]; the stabiliser gets none (the outputs do not
    depend on it)."""

    S: np.ndarray   # (B, h, d, dv)
    z: np.ndarray   # (B, h, d)

    @classmethod
    def zeros_like(cls, state: MLSTMState) -> MLSTMStateGrad:
        """No gradient reaches ``state``."""
        return cls(S=np.zeros_like(state.S), z=np.zeros_like(state.z))
