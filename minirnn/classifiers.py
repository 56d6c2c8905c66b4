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
  retention over the patches in raster order, the class token **last** (the only position that
  sees every patch); the class token's output.

They share the language models' interface: ``init``, ``forward(params, images)`` returning
logits (B, 1, K), ``backward``, ``loss_and_grads(params, images, labels)``; so
[`train`][minirnn.train.train], checkpoints and resuming work unchanged. ``predict`` gives class
probabilities and ``saliency`` the gradient of a class score with respect to every pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import _checks as check
from . import models
from .layers import cross_entropy
from .models import _BlockStack, _normal, _put, _sub
from .vision import (
    vision_embed_backward,
    vision_embed_forward,
    vision_mix_backward,
    vision_mix_forward,
)

__all__ = ["RMT", "RMTConfig", "ViR", "ViRConfig", "ViT", "ViTConfig"]


@dataclass(frozen=True)
class _ImageModelSize:
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
class ViTConfig(_ImageModelSize):
    """Size of a [`ViT`][minirnn.classifiers.ViT]."""

    kind = "vit"


@dataclass(frozen=True)
class RMTConfig(_ImageModelSize):
    """Size of an [`RMT`][minirnn.classifiers.RMT]; ``form`` is MaSA's full or decomposed form."""

    form: str = "full"

    kind = "rmt"


@dataclass(frozen=True)
class ViRConfig(_ImageModelSize):
    """Size of a [`ViR`][minirnn.classifiers.ViR]."""

    kind = "vir"


class _ClassifierCache(NamedTuple):
    embed: tuple
    blocks: list
    ln_f: tuple
    pooled: np.ndarray     # (B, D) the vector the head reads
    head_W: np.ndarray
    tokens: int            # how many tokens the blocks ran on


class _Classifier(_BlockStack):
    """Patches -> blocks -> one vector -> class scores."""

    cls_position: str | None = "first"     # where the class token goes (None: mean pooling)
    mixer = "attention"

    @property
    def grid(self) -> tuple:
        c = self.config
        return (c.image_size // c.patch_size, c.image_size // c.patch_size)

    def decays(self) -> np.ndarray | None:
        """The per-head decays of the mixer (None for attention)."""
        return None

    def init(self, seed: int = 0, dtype=np.float32) -> dict:
        """Parameters: ``embed.*`` (patch embedding ``E``, ``b``; ``cls`` and ``pos`` where the
        model has them), the blocks, ``ln_f`` and ``head`` (D, K)."""
        c = self.config
        rng = np.random.default_rng(seed)
        F, N = c.patch_size ** 2 * c.channels, self.grid[0] * self.grid[1]
        params = {"embed.E": _normal(rng, (F, c.d_model), 1 / np.sqrt(F), dtype),
                  "embed.b": np.zeros(c.d_model, dtype=dtype)}
        if self.cls_position is not None:
            params["embed.cls"] = _normal(rng, (c.d_model,), 0.1, dtype)
            params["embed.pos"] = _normal(rng, (N + 1, c.d_model), 0.1, dtype)

        def mix(layer):
            r = np.random.default_rng(seed + 10 + layer)
            return {k: _normal(r, (c.d_model, c.d_model), 1 / np.sqrt(c.d_model), dtype)
                    for k in ("Wq", "Wk", "Wv", "Wo")}

        return self._init_blocks(rng, params, mix, dtype, head_out=c.n_classes)

    def _mix_forward(self, params, x, prefix):
        return vision_mix_forward(x, _sub(params, prefix), self.config.n_heads, self.mixer,
                                  self.grid, self.decays())

    def _mix_backward(self, dy, cache):
        return vision_mix_backward(dy, cache)

    def forward(self, params: dict, images: np.ndarray):
        """Class scores (B, 1, K) for images (B, S, S, C), and the cache for ``backward``."""
        images = check.classifier_images(self, "forward", images, params)
        z, embed = vision_embed_forward(images, _sub(params, "embed"), self.config.patch_size,
                                        self.cls_position)             # (V.2), (V.3)
        x, blocks, ln_f = self._blocks_forward(params, z)
        if self.cls_position == "first":
            pooled = x[:, 0]
        elif self.cls_position == "last":
            pooled = x[:, -1]
        else:
            pooled = x.mean(axis=1)
        logits = pooled @ params["head.W"] + params["head.b"]
        return logits[:, None], _ClassifierCache(embed, blocks, ln_f, pooled, params["head.W"],
                                                 x.shape[1])

    def backward(self, dlogits: np.ndarray, cache: _ClassifierCache, pixels: bool = False):
        """Gradients of every parameter from the gradient of the scores (B, 1, K); with
        ``pixels=True`` also the gradient of every pixel (returns ``(grads, dimages)``)."""
        dlogits = check.classifier_backward(self, dlogits, cache)
        d = dlogits[:, 0]
        grads = {"head.W": cache.pooled.T @ d, "head.b": d.sum(axis=0)}
        dpooled = d @ cache.head_W.T
        dx = np.zeros((d.shape[0], cache.tokens, dpooled.shape[1]), dtype=dpooled.dtype)
        if self.cls_position == "first":
            dx[:, 0] = dpooled
        elif self.cls_position == "last":
            dx[:, -1] = dpooled
        else:
            dx[:] = dpooled[:, None] / cache.tokens
        dz = self._blocks_backward(dx, cache.blocks, cache.ln_f, grads)
        dimages, g = vision_embed_backward(dz, cache.embed)
        _put(grads, "embed", g)
        return (grads, dimages) if pixels else grads

    def loss_and_grads(self, params: dict, images: np.ndarray, labels: np.ndarray):
        """Mean cross-entropy of the labels (B, 1) and its gradient for every parameter."""
        images, labels = check.classifier_loss(self, params, images, labels)
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

    def start(self, params, prompt):            # not a language model
        raise TypeError(f"{type(self).__name__} classifies images; use predict, not generate")

    step = start


class ViT(_Classifier):
    """Vision transformer: class token first, learned positions, softmax attention (A.5)."""

    config_class = ViTConfig


class RMT(_Classifier):
    """RMT-style: Manhattan self-attention (V.6) on the patch grid, no class token and no
    position embedding (the 2-D decay carries position), mean pooling. Decays per head
    ``1 - 2^(-2 - 4 i / h)`` (RMT's first stage: 0.75, 0.875, ...)."""

    config_class = RMTConfig
    cls_position = None

    @property
    def mixer(self):
        return "masa" if self.config.form == "full" else "masa_decomposed"

    def decays(self):
        h = self.config.n_heads
        return 1.0 - 2.0 ** (-2.0 - 4.0 * np.arange(h) / h)


class ViR(_Classifier):
    """ViR-style: learned positions, causal retention (R.6) over the patches in raster order,
    the class token last. Decays per head ``1 - exp(linspace(ln 1/32, ln 1/512, h))``."""

    config_class = ViRConfig
    cls_position = "last"
    mixer = "retention"

    def decays(self):
        return 1.0 - np.exp(np.linspace(np.log(1 / 32), np.log(1 / 512), self.config.n_heads))


CLASSIFIERS = (ViT, RMT, ViR)

# Join the language models' registries, so that build_model and checkpoints know the classifiers.
models.CONFIGS.update({model.config_class.kind: model.config_class for model in CLASSIFIERS})
models.MODELS.update({model.config_class.kind: model for model in CLASSIFIERS})
