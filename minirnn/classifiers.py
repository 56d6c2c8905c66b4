"""Three tiny image classifiers built from the library's pieces: ViT, an RMT-style model and a
ViR-style model.

All three cut the image into patches
([`vision_embed_forward`][minirnn.vision.vision_embed_forward]), run pre-LN blocks of a token
mixer and a feed-forward layer (the blocks of the language models), and read the class from one
vector:

- [`ViT`][minirnn.classifiers.ViT] (Dosovitskiy et al. 2021): a class token first, learned
  positions, softmax attention where every token sees every token; the class token's output.
- [`RMT`][minirnn.classifiers.RMT] (Fan et al. 2024): no class token and no position embedding,
  Manhattan self-attention (MaSA) on the patch grid, whose 2-D decay carries the positions; the
  mean of the patch outputs.
- [`ViR`][minirnn.classifiers.ViR] (Hatamizadeh et al. 2023): learned positions, causal
  retention over the patches in raster order, the class token **last** (so that its causal
  view takes in every patch; the last patch token sees every patch too); the class token's
  output.

They are built like the language models (a [`Model`][minirnn.blocks.Model] on the block stack of
[`minirnn.blocks`][minirnn.blocks]) and train the same way: ``init``, ``forward(params, images)``
returning scores (B, 1, K), ``backward``, ``loss_and_grads(params, images, labels)``; so
[`train`][minirnn.train.train], checkpoints and resuming work unchanged. ``predict`` gives class
probabilities and ``saliency`` the gradient of a class score with respect to every pixel. A
classifier does not generate text: it has no ``start`` or ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import classifiers as check
from .blocks import (
    Mixer,
    Model,
    blocks_backward,
    blocks_forward,
    init_blocks,
    normal,
    put_params,
    sub_params,
)
from .layers import cross_entropy
from .vision import (
    vision_embed_backward,
    vision_embed_forward,
    vision_mix_backward,
    vision_mix_forward,
)

__all__ = ["CLASSIFIERS", "RMT", "Classifier", "RMTConfig", "ViR", "ViRConfig", "ViT",
           "ViTConfig"]


@dataclass(frozen=True)
class ImageModelSize:
    """The sizes the three classifiers share."""

    n_classes: int
    image_size: int = 16
    channels: int = 1
    patch_size: int = 4
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    d_ff: int = 64


@dataclass(frozen=True)
class ViTConfig(ImageModelSize):
    """Size of a [`ViT`][minirnn.classifiers.ViT]."""

    kind = "vit"


@dataclass(frozen=True)
class RMTConfig(ImageModelSize):
    """Size of an [`RMT`][minirnn.classifiers.RMT]; ``form`` is MaSA's full or decomposed form."""

    form: str = "full"

    kind = "rmt"


@dataclass(frozen=True)
class ViRConfig(ImageModelSize):
    """Size of a [`ViR`][minirnn.classifiers.ViR]."""

    kind = "vir"


# --- reading one vector from the tokens ----------------------------------------------------------

def _pool(x: np.ndarray, cls_position: str | None) -> np.ndarray:
    """The vector the head reads: the class token's output (``"first"`` or ``"last"``), or the
    mean of every token (``None``).

    Parameters
    ----------
    x : ndarray, shape (B, N, D)
    cls_position : {"first", "last", None}

    Returns
    -------
    ndarray, shape (B, D)
    """
    if cls_position is None:
        return x.mean(axis=1)
    return x[:, 0 if cls_position == "first" else -1]


def _pool_backward(dpooled: np.ndarray, n_tokens: int, cls_position: str | None) -> np.ndarray:
    """Backward of ``_pool``: the class token's row gets the whole
    gradient, or every token an equal share of it.

    Returns
    -------
    ndarray, shape (B, N, D)
    """
    if cls_position is None:
        return np.repeat(dpooled[:, None] / n_tokens, n_tokens, axis=1)
    dx = np.zeros((dpooled.shape[0], n_tokens, dpooled.shape[1]), dtype=dpooled.dtype)
    dx[:, 0 if cls_position == "first" else -1] = dpooled
    return dx


# --- the classifiers -----------------------------------------------------------------------------

class _ClassifierCache(NamedTuple):
    embed: tuple
    stack: tuple           # the StackCache of the blocks
    pooled: np.ndarray     # (B, D) the vector the head reads
    head_W: np.ndarray
    tokens: int            # how many tokens the blocks ran on


class Classifier(Model):
    """Patches -> blocks -> one vector -> class scores.

    Attributes
    ----------
    cls_position : {"first", "last", None}
        Where the class token goes, a class attribute each model sets (ViT and RMT ``"first"``,
        ViR ``"last"``); ``None`` reads the mean of every token instead. Setting it on an
        instance (``model.cls_position = "first"``) changes only that model.
    core : str
        The mixer's core, a key of ``minirnn.vision.vision_cores``.
    """

    cls_position: str | None = "first"     # where the class token goes (None: mean pooling)
    core = "attention"                     # the mixer's core (minirnn.vision.vision_cores)

    @property
    def grid(self) -> tuple:
        c = self.config
        return (c.image_size // c.patch_size, c.image_size // c.patch_size)

    def gammas(self) -> np.ndarray | None:
        """The per-head decays of the mixer (None for attention)."""
        return None

    def mixer(self) -> Mixer:
        c = self.config

        def init(seed, layer, dtype):
            rng = np.random.default_rng(seed + 10 + layer)
            return {k: normal(rng, (c.d_model, c.d_model), 1 / np.sqrt(c.d_model), dtype)
                    for k in ("Wq", "Wk", "Wv", "Wo")}

        def forward(x, p, state):
            y, cache = vision_mix_forward(x, p, c.n_heads, self.core, self.grid, self.gammas())
            return y, None, cache

        return Mixer(init=init, forward=forward, backward=vision_mix_backward)

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed.*`` (patch embedding ``W``, ``b``; ``cls`` and ``pos`` where the
        model has them), the blocks, ``ln_f`` and ``head`` (D, K)."""
        c = self.config
        rng = np.random.default_rng(seed)
        F, N = c.patch_size ** 2 * c.channels, self.grid[0] * self.grid[1]
        params = {"embed.W": normal(rng, (F, c.d_model), 1 / np.sqrt(F), dtype),
                  "embed.b": np.zeros(c.d_model, dtype=dtype)}
        if self.cls_position is not None:
            params["embed.cls"] = normal(rng, (c.d_model,), 0.1, dtype)
            params["embed.pos"] = normal(rng, (N + 1, c.d_model), 0.1, dtype)
        params.update(init_blocks(rng, c.n_layers, c.d_model, c.d_ff, self.mixer(), seed, dtype))
        put_params(params, "head", {
            "W": normal(rng, (c.d_model, c.n_classes), 1 / np.sqrt(c.d_model), dtype),
            "b": np.zeros(c.n_classes, dtype=dtype)})
        return params

    def forward(self, params: dict, images: np.ndarray):
        """Class scores (B, 1, K) for images (B, S, S, C), and the cache for ``backward``."""
        images, params = check.classifier_images(self, "forward", images, params)
        z, embed = vision_embed_forward(images, sub_params(params, "embed"),
                                        self.config.patch_size, self.cls_position)  # (V.2), (V.3)
        x, _, stack = blocks_forward(params, z, self.config.n_layers, self.mixer())
        pooled = _pool(x, self.cls_position)
        logits = pooled @ params["head.W"] + params["head.b"]
        return logits[:, None], _ClassifierCache(embed=embed, stack=stack, pooled=pooled,
                                                 head_W=params["head.W"], tokens=x.shape[1])

    def backward(self, dlogits: np.ndarray, cache: _ClassifierCache, pixels: bool = False):
        """Gradients of every parameter from the gradient of the scores (B, 1, K); with
        ``pixels=True`` also the gradient of every pixel (returns ``(grads, dimages)``)."""
        dlogits = check.classifier_backward(self, dlogits, cache)
        d = dlogits[:, 0]
        grads = {"head.W": cache.pooled.T @ d, "head.b": d.sum(axis=0)}
        dx = _pool_backward(d @ cache.head_W.T, cache.tokens, self.cls_position)
        dz = blocks_backward(dx, cache.stack, self.mixer(), grads)
        dimages, layer_grads = vision_embed_backward(dz, cache.embed)
        put_params(grads, "embed", layer_grads)
        return (grads, dimages) if pixels else grads

    def loss_and_grads(self, params: dict, images: np.ndarray, labels: np.ndarray):
        """Mean cross-entropy of the labels (B, 1) and its gradient for every parameter."""
        images, labels, params = check.classifier_loss(self, params, images, labels)
        logits, cache = self.forward(params, images)
        loss, dlogits = cross_entropy(logits, labels)
        return loss, self.backward(dlogits, cache)

    def predict(self, params: dict, images: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (B, K)."""
        logits, _ = self.forward(params, images)
        e = np.exp(logits[:, 0] - logits[:, 0].max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def saliency(self, params: dict, images: np.ndarray, label=None) -> np.ndarray:
        """The gradient of the score of ``label`` (default: the predicted class) with respect
        to every pixel, shape (B, S, S, C): one backward call down to the pixels."""
        logits, cache = self.forward(params, images)
        label = logits[:, 0].argmax(axis=-1) if label is None else \
            np.broadcast_to(np.asarray(label), (logits.shape[0],))
        dlogits = np.zeros_like(logits)
        dlogits[np.arange(logits.shape[0]), 0, label] = 1.0
        return self.backward(dlogits, cache, pixels=True)[1]


class ViT(Classifier):
    """Vision transformer: class token first, learned positions, softmax attention (A.5)."""

    config_class = ViTConfig


class RMT(Classifier):
    """RMT-style: Manhattan self-attention (V.6) on the patch grid, no class token and no
    position embedding (the 2-D decay carries position), mean pooling. Decays per head
    ``1 - 2^(-2 - 4 i / h)`` (RMT's first stage; for the default 2 heads: 0.75 and 0.9375)."""

    config_class = RMTConfig
    cls_position = None

    @property
    def core(self):
        return "masa" if self.config.form == "full" else "masa_decomposed"

    def gammas(self):
        h = self.config.n_heads
        return 1.0 - 2.0 ** (-2.0 - 4.0 * np.arange(h) / h)


class ViR(Classifier):
    """ViR-style: learned positions, causal retention (R.6) over the patches in raster order,
    the class token last (``cls_position = "last"``: under a causal mask only the last token
    reads every patch). Decays per head ``1 - exp(linspace(ln 1/32, ln 1/512, h))``."""

    config_class = ViRConfig
    cls_position = "last"
    core = "retention"

    def gammas(self):
        return 1.0 - np.exp(np.linspace(np.log(1 / 32), np.log(1 / 512), self.config.n_heads))


CLASSIFIERS = {model.config_class.kind: model for model in (ViT, RMT, ViR)}
