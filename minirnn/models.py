"""Three tiny language models built from the library's pieces, with whole-model backward.

- [`RNNLM`][minirnn.models.RNNLM]: embedding -> Elman RNN -> linear head.
- [`TransformerLM`][minirnn.models.TransformerLM]: token + learned position embedding ->
  pre-LN blocks of causal multi-head attention and feed-forward -> final layer norm -> head.
- [`RetNetLM`][minirnn.models.RetNetLM]: embedding -> pre-LN blocks of multi-scale retention
  and feed-forward -> final layer norm -> head (no position embedding: rotation and decay
  carry position).
- [`GatedLM`][minirnn.models.GatedLM]: RetNetLM with multi-scale *gated* retention, whose
  decays are gates computed from the tokens.

Every model has the same methods: ``init(seed)``, ``forward(params, tokens)``,
``backward(dlogits, cache)``, ``loss_and_grads(params, tokens, targets)``, and for generation
``start(params, prompt)`` (logits of the prompt and a decoding state) and
``step(params, token, state)`` (logits of one more token). Parameters are one flat dict with
dotted names (``"blocks.0.attn.Wq"``), which optimisers and checkpoints treat uniformly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from . import _checks as check
from .attention import init_kv_cache, init_mha_params, mha_backward, mha_forward, mha_step
from .gated_msr import (
    gated_msr_backward,
    gated_msr_forward,
    gated_msr_step,
    init_gated_msr_params,
)
from .layers import (
    cross_entropy,
    embedding_backward,
    embedding_forward,
    ffn_backward,
    ffn_forward,
    layer_norm_backward,
    layer_norm_forward,
    linear_backward,
    linear_forward,
)
from .msr import init_msr_params, msr_backward, msr_forward, msr_step
from .rnn import init_rnn_params, rnn_backward, rnn_forward, rnn_step_forward

__all__ = [
    "RNNLM",
    "GatedConfig",
    "GatedLM",
    "RNNConfig",
    "RetNetConfig",
    "RetNetLM",
    "TransformerConfig",
    "TransformerLM",
    "build_model",
    "count_parameters",
    "init",
]


# --- configurations -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RNNConfig:
    """Size of an [`RNNLM`][minirnn.models.RNNLM]."""

    vocab_size: int
    d_model: int = 32        # embedding width D
    hidden: int = 64         # hidden width H

    kind = "rnn"


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


CONFIGS = {c.kind: c for c in (RNNConfig, TransformerConfig, RetNetConfig, GatedConfig)}


def config_to_dict(config) -> dict:
    """A JSON-ready description of ``config`` (with its ``kind``)."""
    return {"kind": config.kind, **asdict(config)}


def config_from_dict(data: dict):
    """Inverse of ``config_to_dict``; raises ValueError for an unknown kind or field."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in CONFIGS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(CONFIGS)}")
    try:
        return CONFIGS[kind](**data)
    except TypeError as err:
        raise ValueError(f"invalid {kind} config {data}: {err}") from None


# --- parameter-dict helpers ---------------------------------------------------------------------

def _sub(params: dict, prefix: str) -> dict:
    """The entries of ``params`` under ``prefix.``, with the prefix removed."""
    n = len(prefix) + 1
    return {key[n:]: value for key, value in params.items() if key.startswith(prefix + ".")}


def _put(grads: dict, prefix: str, sub: dict) -> None:
    grads.update({f"{prefix}.{key}": value for key, value in sub.items()})


def count_parameters(params: dict) -> int:
    """Total number of scalars in a parameter dict."""
    if not isinstance(params, Mapping):
        raise TypeError(f"count_parameters: params must be a dict of arrays, "
                        f"got {type(params).__name__}")
    for key, value in params.items():
        if not isinstance(value, np.ndarray):
            raise TypeError(f"count_parameters: params[{key!r}] must be an array, "
                            f"got {type(value).__name__}")
    return int(sum(v.size for v in params.values()))


def _normal(rng, shape, std, dtype):
    return (std * rng.standard_normal(shape)).astype(dtype)


def _ln_params(D, dtype):
    return {"g": np.ones(D, dtype=dtype), "b": np.zeros(D, dtype=dtype)}


def _ffn_params(rng, D, F, dtype):
    return {"W1": _normal(rng, (D, F), 1 / np.sqrt(D), dtype), "b1": np.zeros(F, dtype=dtype),
            "W2": _normal(rng, (F, D), 0.5 / np.sqrt(F), dtype), "b2": np.zeros(D, dtype=dtype)}


def _logits_shape(head_cache) -> tuple:
    """Shape (B, T, V) of the logits whose head cache is ``head_cache``."""
    return head_cache.x.shape[:-1] + head_cache.W.shape[1:]


# --- the shared skeleton ------------------------------------------------------------------------

class LanguageModel:
    """Common code of the three models; subclasses supply the body between embedding and head."""

    config_class: type = object

    def __init__(self, config):
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config

    def check_params(self, params, func: str = "forward") -> None:
        """Check that ``params`` has exactly the keys and shapes ``init`` gives.

        ``forward``, ``start`` and [`train`][minirnn.train.train] call it; ``step`` trusts
        the parameters ``start`` saw.

        Parameters
        ----------
        params : dict of str to ndarray
            Every array float32 or float64, finite, with the shape ``init`` gives its key.
        func : str, optional
            The method named in error messages.

        Raises
        ------
        TypeError
            If ``params`` is not a dict or an array has the wrong dtype.
        ValueError
            If a key is missing or unknown, a shape differs, or a value is NaN or inf.
        """
        check.model_params(self, params, func)

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
        tokens, targets = check.model_loss(self, params, tokens, targets)
        logits, cache = self.forward(params, tokens)
        loss, dlogits = cross_entropy(logits, targets)
        return loss, self.backward(dlogits, cache)

    def _head(self, params, x):
        """Final projection to the vocabulary."""
        return linear_forward(x, _sub(params, "head"))

    def _head_backward(self, dlogits, cache, grads):
        dx, g = linear_backward(dlogits, cache)
        _put(grads, "head", g)
        return dx


class _BlockCache(NamedTuple):
    ln1: tuple
    mix: tuple          # attention or retention cache
    ln2: tuple
    ffn: tuple


class _StackCache(NamedTuple):
    embed: tuple
    blocks: list
    ln_f: tuple
    head: tuple


class _BlockStack(LanguageModel):
    """Pre-LN residual blocks ``x + mix(LN(x))``, ``x + FFN(LN(x))``, then LN and head."""

    def _mix_forward(self, params, x, prefix):           # pragma: no cover - abstract
        raise NotImplementedError

    def _mix_backward(self, dy, cache):                  # pragma: no cover - abstract
        raise NotImplementedError

    def _embed(self, params, tokens):
        return embedding_forward(tokens, params["embed"])

    def _embed_backward(self, dx, cache, grads):
        grads["embed"] = embedding_backward(dx, cache)

    def forward(self, params: dict, tokens: np.ndarray):
        """Logits for every position, shape (B, T, V), and the cache for ``backward``."""
        tokens = check.model_tokens(self, "forward", tokens, params)
        x, embed_cache = self._embed(params, tokens)
        x, blocks, ln_f = self._blocks_forward(params, x)
        logits, head = self._head(params, x)
        return logits, _StackCache(embed_cache, blocks, ln_f, head)

    def _blocks_forward(self, params, x):
        """Every block, then the final layer norm: (x, block caches, ln_f cache)."""
        blocks = []
        for layer in range(self.config.n_layers):
            pre = f"blocks.{layer}"
            a, ln1 = layer_norm_forward(x, _sub(params, f"{pre}.ln1"))
            y, mix = self._mix_forward(params, a, f"{pre}.mix")
            x = x + y
            a, ln2 = layer_norm_forward(x, _sub(params, f"{pre}.ln2"))
            y, ffn = ffn_forward(a, _sub(params, f"{pre}.ffn"))
            x = x + y
            blocks.append(_BlockCache(ln1, mix, ln2, ffn))
        x, ln_f = layer_norm_forward(x, _sub(params, "ln_f"))
        return x, blocks, ln_f

    def backward(self, dlogits: np.ndarray, cache: _StackCache) -> dict:
        """Gradients of every parameter from the gradient of the logits (B, T, V)."""
        dlogits = check.model_backward(self, dlogits, cache, _logits_shape(cache.head))
        grads: dict = {}
        dx = self._head_backward(dlogits, cache.head, grads)
        dx = self._blocks_backward(dx, cache.blocks, cache.ln_f, grads)
        self._embed_backward(dx, cache.embed, grads)
        return grads

    def _blocks_backward(self, dx, blocks, ln_f, grads):
        """Backward of ``_blocks_forward``: fills ``grads``, returns the gradient of its input."""
        dx, g = layer_norm_backward(dx, ln_f)
        _put(grads, "ln_f", g)
        for layer in reversed(range(self.config.n_layers)):
            pre, c = f"blocks.{layer}", blocks[layer]
            da, g = ffn_backward(dx, c.ffn)                       # residual: dx flows on too
            _put(grads, f"{pre}.ffn", g)
            da, g = layer_norm_backward(da, c.ln2)
            _put(grads, f"{pre}.ln2", g)
            dx = dx + da
            da, g = self._mix_backward(dx, c.mix)
            _put(grads, f"{pre}.mix", g)
            da, g = layer_norm_backward(da, c.ln1)
            _put(grads, f"{pre}.ln1", g)
            dx = dx + da
        return dx

    def _init_blocks(self, rng, params, mix_params, dtype, head_out=None):
        c = self.config
        for layer in range(c.n_layers):
            pre = f"blocks.{layer}"
            _put(params, f"{pre}.ln1", _ln_params(c.d_model, dtype))
            _put(params, f"{pre}.mix", mix_params(layer))
            _put(params, f"{pre}.ln2", _ln_params(c.d_model, dtype))
            _put(params, f"{pre}.ffn", _ffn_params(rng, c.d_model, c.d_ff, dtype))
        _put(params, "ln_f", _ln_params(c.d_model, dtype))
        out = head_out or c.vocab_size
        _put(params, "head", {"W": _normal(rng, (c.d_model, out), 1 / np.sqrt(c.d_model), dtype),
                              "b": np.zeros(out, dtype=dtype)})
        return params

    def _decode_blocks(self, params, x, states, step_mix):
        """Run one new token (B, D) through every block with a per-layer decoding state."""
        for layer in range(self.config.n_layers):
            pre = f"blocks.{layer}"
            a, _ = layer_norm_forward(x, _sub(params, f"{pre}.ln1"))
            y, states[layer] = step_mix(_sub(params, f"{pre}.mix"), a, states[layer])
            x = x + y
            a, _ = layer_norm_forward(x, _sub(params, f"{pre}.ln2"))
            x = x + ffn_forward(a, _sub(params, f"{pre}.ffn"))[0]
        x, _ = layer_norm_forward(x, _sub(params, "ln_f"))
        return self._head(params, x)[0], states


# --- the three models ---------------------------------------------------------------------------

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
        params = {"embed": _normal(rng, (c.vocab_size, c.d_model), 1.0, dtype)}
        _put(params, "rnn", init_rnn_params(c.d_model, c.hidden, seed=seed + 1, dtype=dtype))
        _put(params, "head", {"W": _normal(rng, (c.hidden, c.vocab_size),
                                           1 / np.sqrt(c.hidden), dtype),
                              "b": np.zeros(c.vocab_size, dtype=dtype)})
        return params

    def forward(self, params: dict, tokens: np.ndarray):
        """Logits (B, T, V) and the cache."""
        tokens = check.model_tokens(self, "forward", tokens, params)
        x, embed = embedding_forward(tokens, params["embed"])
        h0 = np.zeros((tokens.shape[0], self.config.hidden), dtype=x.dtype)
        h, rnn = rnn_forward(x, h0, _sub(params, "rnn"))
        logits, head = self._head(params, h)
        return logits, _RNNCache(embed, rnn, head)

    def backward(self, dlogits: np.ndarray, cache: _RNNCache) -> dict:
        """Gradients of every parameter (BPTT through the whole sequence)."""
        dlogits = check.model_backward(self, dlogits, cache, _logits_shape(cache.head))
        grads: dict = {}
        dh = self._head_backward(dlogits, cache.head, grads)
        dx, _, g = rnn_backward(dh, cache.rnn)
        _put(grads, "rnn", g)
        grads["embed"] = embedding_backward(dx, cache.embed)
        return grads

    def start(self, params: dict, prompt: np.ndarray):
        """Logits of the prompt (B, T, V) and the final hidden state."""
        prompt = check.model_tokens(self, "start", prompt, params)
        logits, cache = self.forward(params, prompt)
        return logits, cache.rnn.h[:, -1]

    def step(self, params: dict, token: np.ndarray, state):
        """Logits (B, V) of the next position after one more token (B,); O(D H + H^2)."""
        token = check.model_step(self, token)
        x = params["embed"][token]
        h, _ = rnn_step_forward(x, state, _sub(params, "rnn"))
        return self._head(params, h)[0], h


class TransformerLM(_BlockStack):
    """Token and position embeddings -> causal attention blocks. Decoding uses KV caches."""

    config_class = TransformerConfig

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed`` (V, D), ``pos`` (max_len, D), blocks, ``ln_f``, ``head``."""
        c = self.config
        rng = np.random.default_rng(seed)
        params = {"embed": _normal(rng, (c.vocab_size, c.d_model), 1.0, dtype),
                  "pos": _normal(rng, (c.max_len, c.d_model), 0.1, dtype)}
        return self._init_blocks(rng, params, lambda layer: init_mha_params(
            c.d_model, c.n_heads, seed=seed + 10 + layer, dtype=dtype), dtype)

    def _embed(self, params, tokens):
        T = tokens.shape[1]
        x, cache = embedding_forward(tokens, params["embed"])
        return x + params["pos"][:T], cache

    def _embed_backward(self, dx, cache, grads):
        grads["embed"] = embedding_backward(dx, cache)
        grads["pos"] = np.zeros((self.config.max_len, dx.shape[-1]), dtype=dx.dtype)
        grads["pos"][:dx.shape[1]] = dx.sum(axis=0)      # position t is used by every sequence

    def _mix_forward(self, params, x, prefix):
        return mha_forward(x, _sub(params, prefix), self.config.n_heads)

    def _mix_backward(self, dy, cache):
        return mha_backward(dy, cache)

    def start(self, params: dict, prompt: np.ndarray):
        """Logits of the prompt (B, T, V) and one KV cache per layer, filled with the prompt."""
        prompt = check.model_tokens(self, "start", prompt, params)
        B, T = prompt.shape
        x, _ = self._embed(params, prompt)
        caches = [init_kv_cache(B, self.config.d_model, self.config.n_heads,
                                capacity=max(2 * T, 16), dtype=x.dtype)
                  for _ in range(self.config.n_layers)]

        def step_mix(p, a, cache):
            return mha_step(a, p, self.config.n_heads, cache)

        return self._decode_blocks(params, x, caches, step_mix)

    def step(self, params: dict, token: np.ndarray, state):
        """Logits (B, V) after one more token; attends over the cache: O(t D) at position t."""
        position = state[0].length
        token = check.model_step(self, token, position)
        x = params["embed"][token] + params["pos"][position]

        def step_mix(p, a, cache):
            return mha_step(a, p, self.config.n_heads, cache)

        return self._decode_blocks(params, x, state, step_mix)


class RetNetLM(_BlockStack):
    """Embedding -> multi-scale retention blocks. Decoding carries one state per layer: O(1)."""

    config_class = RetNetConfig

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed`` (V, D), blocks (MSR and FFN), ``ln_f``, ``head``."""
        c = self.config
        rng = np.random.default_rng(seed)
        params = {"embed": _normal(rng, (c.vocab_size, c.d_model), 1.0, dtype)}
        return self._init_blocks(rng, params, lambda layer: init_msr_params(
            c.d_model, c.n_heads, c.dv, seed=seed + 10 + layer, dtype=dtype), dtype)

    def _mix_forward(self, params, x, prefix, form=None, state=None):
        c = self.config
        y, new_state, cache = msr_forward(x, _sub(params, prefix), c.n_heads, form or c.form,
                                          chunk_size=c.chunk_size, state=state, eps=c.eps)
        return y, (cache, new_state)

    def _mix_backward(self, dy, cache):
        return msr_backward(dy, cache[0])

    def start(self, params: dict, prompt: np.ndarray):
        """Logits of the prompt (in the configured training form) and per-layer states."""
        prompt = check.model_tokens(self, "start", prompt, params)
        logits, cache = self.forward(params, prompt)
        return logits, [block.mix[1] for block in cache.blocks]

    def step(self, params: dict, token: np.ndarray, state):
        """Logits (B, V) after one more token with the recurrent form: O(1) in the position."""
        token = check.model_step(self, token)
        x = params["embed"][token]
        c = self.config

        def step_mix(p, a, layer_state):
            return msr_step(a, p, c.n_heads, layer_state, eps=c.eps)

        return self._decode_blocks(params, x, list(state), step_mix)


class GatedLM(RetNetLM):
    """Embedding -> multi-scale gated retention blocks. Decoding carries one
    [`GatedState`][minirnn.gated.GatedState] per layer: O(1) per token."""

    config_class = GatedConfig

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed`` (V, D), blocks (gated MSR and FFN), ``ln_f``, ``head``."""
        c = self.config
        rng = np.random.default_rng(seed)
        params = {"embed": _normal(rng, (c.vocab_size, c.d_model), 1.0, dtype)}
        return self._init_blocks(rng, params, lambda layer: init_gated_msr_params(
            c.d_model, c.n_heads, c.dv, seed=seed + 10 + layer, dtype=dtype, tau=c.tau), dtype)

    def _mix_forward(self, params, x, prefix, form=None, state=None):
        c = self.config
        y, new_state, cache = gated_msr_forward(x, _sub(params, prefix), c.n_heads,
                                                form or c.form, chunk_size=c.chunk_size,
                                                state=state, eps=c.eps, tau=c.tau)
        return y, (cache, new_state)

    def _mix_backward(self, dy, cache):
        return gated_msr_backward(dy, cache[0])

    def step(self, params: dict, token: np.ndarray, state):
        """Logits (B, V) after one more token with the recurrent form: O(1) in the position."""
        token = check.model_step(self, token)
        x = params["embed"][token]
        c = self.config

        def step_mix(p, a, layer_state):
            return gated_msr_step(a, p, c.n_heads, layer_state, eps=c.eps, tau=c.tau)

        return self._decode_blocks(params, x, list(state), step_mix)

    def gates(self, params: dict, tokens: np.ndarray) -> np.ndarray:
        """The gates ``alpha`` of every layer, head and token, shape (layers, B, h, T): what the
        model keeps of each head's state at each token (1 keeps all, 0 forgets all)."""
        _, cache = self.forward(params, tokens)
        return np.stack([np.exp(block.mix[0].core.log_decay) for block in cache.blocks])


MODELS = {"rnn": RNNLM, "transformer": TransformerLM, "retnet": RetNetLM, "gated": GatedLM}


def build_model(config) -> LanguageModel:
    """The model object for a config (``RNNConfig`` -> [`RNNLM`][minirnn.models.RNNLM], ...)."""
    for model in MODELS.values():
        if type(config) is model.config_class:
            return model(config)
    raise TypeError(f"build_model: expected the config of one of "
                    f"{sorted(m.config_class.__name__ for m in MODELS.values())}, "
                    f"got {type(config).__name__}")


def init(config, seed: int = 0, dtype=np.float32) -> dict:
    """Initial parameter dict for the model described by ``config``.

    Parameters
    ----------
    config : RNNConfig, TransformerConfig, RetNetConfig or GatedConfig
    seed : int, optional
    dtype : numpy dtype, optional
        float32 (default, for speed) or float64 (for gradient checks).

    Returns
    -------
    dict of str to ndarray
    """
    return build_model(config).init(seed, dtype)

