"""Nine tiny language models built from the library's pieces, with whole-model backward.

- [`RNNLM`][minirnn.models.RNNLM]: embedding -> Elman RNN -> linear head.
- [`LSTMLM`][minirnn.models.LSTMLM], [`GRULM`][minirnn.models.GRULM] and
  [`MinGRULM`][minirnn.models.MinGRULM]: the same with an LSTM, a GRU or a minGRU.
- [`TransformerLM`][minirnn.models.TransformerLM]: token + learned position embedding ->
  pre-LN blocks of causal multi-head attention and feed-forward -> final layer norm -> head.
- [`RetNetLM`][minirnn.models.RetNetLM]: embedding -> pre-LN blocks of multi-scale retention
  and feed-forward -> final layer norm -> head (no position embedding: rotation and decay
  carry position).
- [`GatedLM`][minirnn.models.GatedLM]: RetNetLM with multi-scale *gated* retention, whose
  decays are gates computed from the tokens.
- [`DeltaNetLM`][minirnn.models.DeltaNetLM] and
  [`GatedDeltaNetLM`][minirnn.models.GatedDeltaNetLM]: the same blocks with the DeltaNet layer,
  whose memory overwrites the value of a key it already holds (the delta rule).

The last five of the list are the block stack of [`minirnn.blocks`][minirnn.blocks] with a
different token mixer. Every model has the same methods: ``init(seed)``, ``forward(params,
tokens)``, ``backward(dlogits, cache)``, ``loss_and_grads(params, tokens, targets)``, and for
generation ``start(params, prompt)`` (logits of the prompt and a decoding state) and
``step(params, token, state)`` (logits of one more token). Parameters are one flat dict with
dotted names (``"blocks.0.mix.Wq"``), which optimisers and checkpoints treat uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import models as check
from .attention import init_mha_params, mha_backward, mha_forward, mha_step
from .blocks import (
    Mixer,
    Model,
    blocks_backward,
    blocks_forward,
    blocks_step,
    init_blocks,
    normal,
    put_params,
    sub_params,
)
from .deltanet import deltanet_backward, deltanet_forward, deltanet_step, init_deltanet_params
from .gated_msr import (
    gated_msr_backward,
    gated_msr_forward,
    gated_msr_step,
    init_gated_msr_params,
)
from .gru import gru_backward, gru_forward, gru_step_forward, init_gru_params
from .layers import (
    IGNORE_INDEX,
    cross_entropy,
    embedding_backward,
    embedding_forward,
    linear_backward,
    linear_forward,
)
from .lstm import init_lstm_params, lstm_backward, lstm_forward, lstm_step_forward
from .minrnn import init_mingru_params, mingru_backward, mingru_forward
from .msr import init_msr_params, msr_backward, msr_forward, msr_step
from .rnn import init_rnn_params, rnn_backward, rnn_forward, rnn_step_forward
from .states import KVCache, LSTMState

__all__ = [
    "GRULM",
    "LANGUAGE_MODELS",
    "LSTMLM",
    "RNNLM",
    "DeltaNetConfig",
    "DeltaNetLM",
    "GRUConfig",
    "GatedConfig",
    "GatedDeltaNetConfig",
    "GatedDeltaNetLM",
    "GatedLM",
    "LSTMConfig",
    "LanguageModel",
    "MinGRUConfig",
    "MinGRULM",
    "RNNConfig",
    "RetNetConfig",
    "RetNetLM",
    "TransformerConfig",
    "TransformerLM",
]


# --- configurations ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RNNConfig:
    """Size of an [`RNNLM`][minirnn.models.RNNLM]."""

    vocab_size: int
    d_model: int = 32        # embedding width D
    hidden: int = 64         # hidden width H

    kind = "rnn"


@dataclass(frozen=True)
class LSTMConfig:
    """Size of an [`LSTMLM`][minirnn.models.LSTMLM]."""

    vocab_size: int
    d_model: int = 32        # embedding width D
    hidden: int = 64         # hidden width H (the cell has the same width)

    kind = "lstm"


@dataclass(frozen=True)
class GRUConfig:
    """Size of a [`GRULM`][minirnn.models.GRULM] and its reset convention."""

    vocab_size: int
    d_model: int = 32
    hidden: int = 64
    reset: str = "after"     # "after" (PyTorch) or "before" (Cho et al. 2014 v3)

    kind = "gru"


@dataclass(frozen=True)
class MinGRUConfig:
    """Size of a [`MinGRULM`][minirnn.models.MinGRULM]; ``form`` chooses how training
    computes the scan (the gradients are the same for both)."""

    vocab_size: int
    d_model: int = 32
    hidden: int = 64
    form: str = "sequential"  # or "parallel"

    kind = "mingru"


@dataclass(frozen=True)
class TransformerConfig:
    """Size of a [`TransformerLM`][minirnn.models.TransformerLM]."""

    vocab_size: int
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    d_ff: int = 64
    max_len: int = 256       # positions with a learned embedding

    kind = "transformer"


@dataclass(frozen=True)
class RetNetConfig:
    """Size of a [`RetNetLM`][minirnn.models.RetNetLM]; ``form`` and ``chunk_size`` choose how
    training computes
    retention (the gradients are the same for every form)."""

    vocab_size: int
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    dv: int = 16             # value width per head
    d_ff: int = 64
    form: str = "chunkwise"
    chunk_size: int = 32
    eps: float = 1e-5        # group-norm epsilon

    kind = "retnet"


@dataclass(frozen=True)
class GatedConfig:
    """Size of a [`GatedLM`][minirnn.models.GatedLM]; as ``RetNetConfig`` plus the gate's
    temperature ``tau`` (GR.9)."""

    vocab_size: int
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    dv: int = 16
    d_ff: int = 64
    form: str = "chunkwise"
    chunk_size: int = 32
    eps: float = 1e-5
    tau: float = 1.0

    kind = "gated"


@dataclass(frozen=True)
class DeltaNetConfig:
    """Size of a [`DeltaNetLM`][minirnn.models.DeltaNetLM]; ``form`` and ``chunk_size`` choose
    how training computes the delta rule (the gradients are the same for every form)."""

    vocab_size: int
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    dv: int = 16
    d_ff: int = 64
    form: str = "chunkwise"
    chunk_size: int = 32
    eps: float = 1e-5

    kind = "delta"


@dataclass(frozen=True)
class GatedDeltaNetConfig:
    """Size of a [`GatedDeltaNetLM`][minirnn.models.GatedDeltaNetLM]; as ``DeltaNetConfig``
    plus the gate's temperature ``tau`` (GR.9)."""

    vocab_size: int
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    dv: int = 16
    d_ff: int = 64
    form: str = "chunkwise"
    chunk_size: int = 32
    eps: float = 1e-5
    tau: float = 1.0

    kind = "gated-delta"

# --- what every language model shares ------------------------------------------------------------

class LanguageModel(Model):
    """Tokens in, logits of the next token out; a head on top of a body the subclass supplies."""

    def loss_and_grads(self, params: dict, tokens: np.ndarray, targets: np.ndarray):
        """Mean cross-entropy of next-token predictions and its gradient for every parameter.

        Parameters
        ----------
        params : dict
        tokens : ndarray of int, shape (B, T)
            Input tokens.
        targets : ndarray of int, shape (B, T)
            The token to predict at each position, or ``IGNORE_INDEX`` where nothing is scored.

        Returns
        -------
        loss : float
        grads : dict
            Same keys and shapes as ``params``.
        """
        tokens, targets, params = check.model_loss(self, params, tokens, targets, IGNORE_INDEX)
        logits, cache = self.forward(params, tokens)
        loss, dlogits = cross_entropy(logits, targets)
        return loss, self.backward(dlogits, cache)

    def _init_head(self, rng, width, dtype):
        V = self.config.vocab_size
        return {"W": normal(rng, (width, V), 1 / np.sqrt(width), dtype),
                "b": np.zeros(V, dtype=dtype)}


def _logits_shape(head_cache) -> tuple:
    """Shape (B, T, V) of the logits whose head cache is ``head_cache``."""
    return head_cache.x.shape[:-1] + head_cache.W.shape[1:]


# --- the Elman RNN -------------------------------------------------------------------------------

class _RNNCache(NamedTuple):
    embed: tuple
    rnn: tuple
    head: tuple


class RNNLM(LanguageModel):
    """Embedding -> Elman RNN -> linear head. The decoding state is the hidden vector."""

    config_class = RNNConfig

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed`` (V, D), ``rnn.Wx`` (D, H), ``rnn.Wh``, ``rnn.b``, ``head.*``."""
        c = self.config
        rng = np.random.default_rng(seed)
        params = {"embed": normal(rng, (c.vocab_size, c.d_model), 1.0, dtype)}
        put_params(params, "rnn", init_rnn_params(c.d_model, c.hidden, seed=seed + 1,
                                                  dtype=dtype))
        put_params(params, "head", self._init_head(rng, c.hidden, dtype))
        return params

    def forward(self, params: dict, tokens: np.ndarray):
        """Logits (B, T, V) and the cache."""
        tokens, params = check.model_tokens(self, "forward", tokens, params)
        x, embed = embedding_forward(tokens, params["embed"])
        h0 = np.zeros((tokens.shape[0], self.config.hidden), dtype=x.dtype)
        h, rnn = rnn_forward(x, h0, sub_params(params, "rnn"))
        logits, head = linear_forward(h, sub_params(params, "head"))
        return logits, _RNNCache(embed=embed, rnn=rnn, head=head)

    def backward(self, dlogits: np.ndarray, cache: _RNNCache) -> dict:
        """Gradients of every parameter (BPTT through the whole sequence)."""
        dlogits = check.model_backward(self, dlogits, cache, _logits_shape(cache.head))
        grads: dict = {}
        dh, layer_grads = linear_backward(dlogits, cache.head)
        put_params(grads, "head", layer_grads)
        dx, _, layer_grads = rnn_backward(dh, cache.rnn)
        put_params(grads, "rnn", layer_grads)
        grads["embed"] = embedding_backward(dx, cache.embed)
        return grads

    def start(self, params: dict, prompt: np.ndarray):
        """Logits of the prompt (B, T, V) and the final hidden state."""
        prompt, params = check.model_tokens(self, "start", prompt, params)
        logits, cache = self.forward(params, prompt)
        return logits, cache.rnn.h[:, -1]

    def step(self, params: dict, token: np.ndarray, state):
        """Logits (B, V) of the next position after one more token (B,); O(D H + H^2)."""
        token = check.model_step(self, token)
        x = params["embed"][token]
        h, _ = rnn_step_forward(x, state, sub_params(params, "rnn"))
        return linear_forward(h, sub_params(params, "head"))[0], h


# --- the LSTM, the GRU and minGRU: the same model with another cell -----------------------------

class _CellLMCache(NamedTuple):
    embed: tuple
    cell: tuple
    head: tuple


class CellLM(LanguageModel):
    """Embedding -> a recurrent cell -> linear head; subclasses choose the cell with four
    small methods (``_cell_init``, ``_cell_forward``, ``_cell_backward``, ``_cell_step``)."""

    prefix = "cell"

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed`` (V, D), the cell's (``lstm.*``, ``gru.*``, ``mingru.*``),
        ``head.*``."""
        c = self.config
        rng = np.random.default_rng(seed)
        params = {"embed": normal(rng, (c.vocab_size, c.d_model), 1.0, dtype)}
        put_params(params, self.prefix, self._cell_init(seed + 1, dtype))
        put_params(params, "head", self._init_head(rng, c.hidden, dtype))
        return params

    def forward(self, params: dict, tokens: np.ndarray):
        """Logits (B, T, V) and the cache."""
        tokens, params = check.model_tokens(self, "forward", tokens, params)
        x, embed = embedding_forward(tokens, params["embed"])
        h0 = np.zeros((tokens.shape[0], self.config.hidden), dtype=x.dtype)
        h, cell = self._cell_forward(x, h0, sub_params(params, self.prefix))
        logits, head = linear_forward(h, sub_params(params, "head"))
        return logits, _CellLMCache(embed=embed, cell=cell, head=head)

    def backward(self, dlogits: np.ndarray, cache: _CellLMCache) -> dict:
        """Gradients of every parameter (BPTT through the whole sequence)."""
        dlogits = check.model_backward(self, dlogits, cache, _logits_shape(cache.head))
        grads: dict = {}
        dh, layer_grads = linear_backward(dlogits, cache.head)
        put_params(grads, "head", layer_grads)
        dx, layer_grads = self._cell_backward(dh, cache.cell)
        put_params(grads, self.prefix, layer_grads)
        grads["embed"] = embedding_backward(dx, cache.embed)
        return grads

    def start(self, params: dict, prompt: np.ndarray):
        """Logits of the prompt (B, T, V) and the decoding state after it."""
        prompt, params = check.model_tokens(self, "start", prompt, params)
        logits, cache = self.forward(params, prompt)
        return logits, self._final_state(cache.cell)

    def step(self, params: dict, token: np.ndarray, state):
        """Logits (B, V) of the next position after one more token (B,), and the new state."""
        token = check.model_step(self, token)
        h, state = self._cell_step(params["embed"][token], state,
                                   sub_params(params, self.prefix))
        return linear_forward(h, sub_params(params, "head"))[0], state


class LSTMLM(CellLM):
    """Embedding -> LSTM -> head. The decoding state is an
    [`LSTMState`][minirnn.states.LSTMState], the hidden vector and the cell."""

    config_class = LSTMConfig
    prefix = "lstm"

    def _cell_init(self, seed, dtype):
        return init_lstm_params(self.config.d_model, self.config.hidden, seed=seed, dtype=dtype)

    def _cell_forward(self, x, h0, p):
        return lstm_forward(x, h0, p)

    def _cell_backward(self, dh, cache):
        dx, _, _, grads = lstm_backward(dh, cache)
        return dx, grads

    def _final_state(self, cache):
        return LSTMState(h=cache.h[:, -1], c=cache.c[:, -1])

    def _cell_step(self, x, state, p):
        h, c, _ = lstm_step_forward(x, state.h, state.c, p)
        return h, LSTMState(h=h, c=c)


class GRULM(CellLM):
    """Embedding -> GRU (either reset convention) -> head. The decoding state is ``h``."""

    config_class = GRUConfig
    prefix = "gru"

    def _cell_init(self, seed, dtype):
        return init_gru_params(self.config.d_model, self.config.hidden, seed=seed, dtype=dtype)

    def _cell_forward(self, x, h0, p):
        return gru_forward(x, h0, p, self.config.reset)

    def _cell_backward(self, dh, cache):
        dx, _, grads = gru_backward(dh, cache)
        return dx, grads

    def _final_state(self, cache):
        return cache.h[:, -1]

    def _cell_step(self, x, state, p):
        h, _ = gru_step_forward(x, state, p, self.config.reset)
        return h, h


class MinGRULM(CellLM):
    """Embedding -> minGRU -> head. Training may use the parallel scan; decoding is one step
    of the recurrence, whose state is ``h``."""

    config_class = MinGRUConfig
    prefix = "mingru"

    def _cell_init(self, seed, dtype):
        return init_mingru_params(self.config.d_model, self.config.hidden, seed=seed,
                                  dtype=dtype)

    def _cell_forward(self, x, h0, p):
        return mingru_forward(x, h0, p, self.config.form)

    def _cell_backward(self, dh, cache):
        dx, _, grads = mingru_backward(dh, cache)
        return dx, grads

    def _final_state(self, cache):
        return cache.scan.h[:, -1]

    def _cell_step(self, x, state, p):
        h, _ = mingru_forward(x[:, None], state, p, "sequential")
        return h[:, 0], h[:, 0]


# --- the block stack: Transformer, RetNet, gated RetNet ------------------------------------------

class _StackLMCache(NamedTuple):
    embed: tuple
    stack: tuple        # the StackCache of the blocks
    head: tuple


class BlockLM(LanguageModel):
    """Embedding -> the blocks of [`minirnn.blocks`][minirnn.blocks] with this model's token
    mixer -> head. Subclasses choose the mixer (and may add a position embedding)."""

    def mixer(self) -> Mixer:                                       # pragma: no cover
        raise NotImplementedError

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed`` (V, D) (and ``pos``), the blocks, ``ln_f``, ``head``."""
        c = self.config
        rng = np.random.default_rng(seed)
        params = {"embed": normal(rng, (c.vocab_size, c.d_model), 1.0, dtype)}
        params.update(self._init_positions(rng, dtype))
        params.update(init_blocks(rng, c.n_layers, c.d_model, c.d_ff, self.mixer(), seed, dtype))
        put_params(params, "head", self._init_head(rng, c.d_model, dtype))
        return params

    def _init_positions(self, rng, dtype) -> dict:
        return {}

    def _embed(self, params, tokens, start: int = 0):
        """Token embeddings (B, T, D) of tokens at positions ``start ...``, and the cache."""
        return embedding_forward(tokens, params["embed"])

    def _embed_backward(self, dx, cache, grads):
        grads["embed"] = embedding_backward(dx, cache)

    def forward(self, params: dict, tokens: np.ndarray):
        """Logits for every position, shape (B, T, V), and the cache for ``backward``."""
        tokens, params = check.model_tokens(self, "forward", tokens, params)
        logits, _, cache = self._forward(params, tokens)
        return logits, cache

    def _forward(self, params, tokens):
        x, embed = self._embed(params, tokens)
        x, states, stack = blocks_forward(params, x, self.config.n_layers, self.mixer())
        logits, head = linear_forward(x, sub_params(params, "head"))
        return logits, states, _StackLMCache(embed=embed, stack=stack, head=head)

    def backward(self, dlogits: np.ndarray, cache: _StackLMCache) -> dict:
        """Gradients of every parameter from the gradient of the logits (B, T, V)."""
        dlogits = check.model_backward(self, dlogits, cache, _logits_shape(cache.head))
        grads: dict = {}
        dx, layer_grads = linear_backward(dlogits, cache.head)
        put_params(grads, "head", layer_grads)
        dx = blocks_backward(dx, cache.stack, self.mixer(), grads)
        self._embed_backward(dx, cache.embed, grads)
        return grads

    def start(self, params: dict, prompt: np.ndarray):
        """Logits of the prompt (B, T, V) and the decoding state of every block (what each
        mixer returned after the prompt: a KV cache, a retention state)."""
        prompt, params = check.model_tokens(self, "start", prompt, params)
        logits, states, _ = self._forward(params, prompt)
        return logits, states

    def step(self, params: dict, token: np.ndarray, state):
        """Logits (B, V) after one more token (B,), each block continuing its state."""
        token = check.model_step(self, token, self._position(state))
        x, _ = self._embed(params, token[:, None], self._position(state))
        x, states = blocks_step(params, x[:, 0], self.mixer(), state)
        return linear_forward(x, sub_params(params, "head"))[0], states

    def _position(self, state) -> int | None:
        return None


class TransformerLM(BlockLM):
    """Token and position embeddings -> causal attention blocks. Decoding uses KV caches:
    O(t D) per token at position t."""

    config_class = TransformerConfig

    def mixer(self) -> Mixer:
        h = self.config.n_heads
        D = self.config.d_model

        def forward(x, p, state):
            y, cache = mha_forward(x, p, h)
            attn = cache.attn                                        # keys and values per head:
            return y, KVCache(k=attn.k, v=attn.v, length=x.shape[1]), cache   # the prefill

        return Mixer(init=lambda seed, layer, dtype: init_mha_params(D, h, seed=seed + 10 + layer,
                                                                     dtype=dtype),
                     forward=forward, backward=mha_backward,
                     step=lambda x, p, state: mha_step(x, p, h, state))

    def _init_positions(self, rng, dtype):
        c = self.config
        return {"pos": normal(rng, (c.max_len, c.d_model), 0.1, dtype)}

    def _embed(self, params, tokens, start=0):
        x, cache = embedding_forward(tokens, params["embed"])
        return x + params["pos"][start:start + tokens.shape[1]], cache

    def _embed_backward(self, dx, cache, grads):
        grads["embed"] = embedding_backward(dx, cache)
        grads["pos"] = np.zeros((self.config.max_len, dx.shape[-1]), dtype=dx.dtype)
        grads["pos"][:dx.shape[1]] = dx.sum(axis=0)      # position t is used by every sequence

    def _position(self, state):
        return state[0].length                                       # tokens in the KV cache


class RetNetLM(BlockLM):
    """Embedding -> multi-scale retention blocks. Decoding carries one state per layer: O(1)."""

    config_class = RetNetConfig

    def mixer(self) -> Mixer:
        c = self.config
        return Mixer(
            init=lambda seed, layer, dtype: init_msr_params(c.d_model, c.n_heads, c.dv,
                                                            seed=seed + 10 + layer, dtype=dtype),
            forward=lambda x, p, state: msr_forward(x, p, c.n_heads, c.form, c.chunk_size,
                                                    state, c.eps),
            backward=lambda dy, cache: msr_backward(dy, cache)[:2],
            step=lambda x, p, state: msr_step(x, p, c.n_heads, state, c.eps))


class GatedLM(BlockLM):
    """Embedding -> multi-scale gated retention blocks. Decoding carries one
    [`GatedState`][minirnn.states.GatedState] per layer: O(1) per token."""

    config_class = GatedConfig

    def mixer(self) -> Mixer:
        c = self.config
        return Mixer(
            init=lambda seed, layer, dtype: init_gated_msr_params(
                c.d_model, c.n_heads, c.dv, seed=seed + 10 + layer, dtype=dtype, tau=c.tau),
            forward=lambda x, p, state: gated_msr_forward(x, p, c.n_heads, c.form, c.chunk_size,
                                                          state, c.eps, c.tau),
            backward=lambda dy, cache: gated_msr_backward(dy, cache)[:2],
            step=lambda x, p, state: gated_msr_step(x, p, c.n_heads, state, c.eps, c.tau))

    def gates(self, params: dict, tokens: np.ndarray) -> np.ndarray:
        """The gates ``alpha`` of every layer, head and token, shape (layers, B, h, T): what the
        model keeps of each head's state at each token (1 keeps all, 0 forgets all)."""
        _, cache = self.forward(params, tokens)
        return np.stack([np.exp(block.mix.log_decay.astype(np.float64))
                         for block in cache.stack.blocks])


class DeltaNetLM(BlockLM):
    """Embedding -> DeltaNet blocks (the delta rule: each token corrects what its key reads).
    Decoding carries one [`DeltaState`][minirnn.states.DeltaState] per layer: O(1) per token."""

    config_class = DeltaNetConfig
    gated = False

    def mixer(self) -> Mixer:
        c = self.config
        tau = c.tau if self.gated else 1.0
        return Mixer(
            init=lambda seed, layer, dtype: init_deltanet_params(
                c.d_model, c.n_heads, c.dv, gated=self.gated, seed=seed + 10 + layer, dtype=dtype,
                tau=tau),
            forward=lambda x, p, state: deltanet_forward(x, p, c.n_heads, c.form, c.chunk_size,
                                                         state, c.eps, tau),
            backward=lambda dy, cache: deltanet_backward(dy, cache)[:2],
            step=lambda x, p, state: deltanet_step(x, p, c.n_heads, state, c.eps, tau))

    def memories(self, params: dict, tokens: np.ndarray) -> list:
        """The memory ``S`` of every layer after every prefix of ``tokens``.

        Parameters
        ----------
        params : dict
        tokens : ndarray of int, shape (B, T)

        Returns
        -------
        list of ndarray
            One per position t: shape (layers, B, h, d, dv), the memories after token t.
        """
        tokens, params = check.model_tokens(self, "memories", tokens, params)
        _, states = self.start(params, tokens[:, :1])
        out = [np.stack([s.S for s in states])]
        for t in range(1, tokens.shape[1]):
            _, states = self.step(params, tokens[:, t], states)
            out.append(np.stack([s.S for s in states]))
        return out


class GatedDeltaNetLM(DeltaNetLM):
    """DeltaNetLM with gated DeltaNet: a gate computed from the token first fades the whole
    memory, then the delta rule corrects it."""

    config_class = GatedDeltaNetConfig
    gated = True


LANGUAGE_MODELS = {"rnn": RNNLM, "lstm": LSTMLM, "gru": GRULM, "mingru": MinGRULM,
                   "transformer": TransformerLM, "retnet": RetNetLM,
                   "gated": GatedLM, "delta": DeltaNetLM, "gated-delta": GatedDeltaNetLM}
