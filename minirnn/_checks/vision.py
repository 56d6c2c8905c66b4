"""Checks for [`minirnn.vision`][minirnn.vision]: one function per public function, same name."""

from __future__ import annotations

import numpy as np

from .core import Shapes, active, check_cache, check_int, gradient, lead, same_dtype
from .retention import gamma_per_head

VARIANTS = ("code", "paper")
MIXERS = ("attention", "masa", "masa_decomposed", "retention")


def _patch(s: Shapes, patch_size, Y, X):
    patch_size = check_int(s.func, "patch_size", patch_size, 1)
    if Y % patch_size or X % patch_size:
        s.fail(f"patch_size = {patch_size} must divide the height and width of the images, got "
               f"Y = {Y}, X = {X}")
    return patch_size


def patchify(images, patch_size):
    if not active():
        return images, patch_size
    s = Shapes("patchify")
    x = s.array("images", images, "B Y X C")
    return x, _patch(s, patch_size, x.shape[1], x.shape[2])


def unpatchify(patches, image_shape, patch_size):
    if not active():
        return patches, image_shape, patch_size
    s = Shapes("unpatchify")
    patches = s.array("patches", patches, "B N F")
    if not (isinstance(image_shape, (tuple, list)) and len(image_shape) == 3):
        s.fail(f"image_shape must be (Y, X, C), got {image_shape!r}", TypeError)
    Y, X, C = (check_int(s.func, "image_shape", n, 1) for n in image_shape)
    p = _patch(s, patch_size, Y, X)
    want = ((Y // p) * (X // p), p * p * C)
    if patches.shape[1:] != want:
        s.fail(f"patches of shape {patches.shape} do not make images of shape "
               f"{(Y, X, C)} with patch_size {p}: expected (B, {want[0]}, {want[1]})")
    return patches, (Y, X, C), p


def vision_embed_forward(images, params, patch_size, cls_position):
    if not active():
        return images, params, patch_size
    s = Shapes("vision_embed_forward")
    x = s.array("images", images, "B Y X C")
    p = _patch(s, patch_size, x.shape[1], x.shape[2])
    if cls_position not in ("first", "last", None):
        s.fail(f"cls_position must be 'first', 'last' or None, got {cls_position!r}")
    s.bind("F", p * p * x.shape[3], f"patch_size {p} and the C = {x.shape[3]} channels of "
                                    f"images")
    s.bind("T", (x.shape[1] // p) * (x.shape[2] // p) + (cls_position is not None),
           f"images of shape {x.shape} cut into patches of {p} (plus the class token)")
    axes = {"W": "F D", "b": "D", "cls": "D", "pos": "T D"}
    optional = {"pos"} | ({"cls"} if cls_position is None else set())
    if cls_position is None and isinstance(params, dict) and "cls" in params:
        s.fail("params has a class token 'cls' but cls_position is None")
    checked = s.params(params, "params", axes if cls_position is not None else
                       {k: v for k, v in axes.items() if k != "cls"}, optional)
    x, *arrays = same_dtype(x, *checked.values())
    return x, dict(zip(checked, arrays)), p


def vision_embed_backward(dz, cache):
    if not active():
        return dz
    check_cache("vision_embed_backward", cache, "VisionEmbedCache", "vision_embed_forward")
    Y, X, _ = cache.image_shape
    p = cache.patch_size
    T = (Y // p) * (X // p) + (cache.cls_position is not None)
    s = Shapes("vision_embed_backward")
    s.bind_all("B T D", (cache.patches.shape[0], T, cache.W.shape[1]), "the forward's output")
    return s.array("dz", dz, "B T D")


def manhattan_decay_mask(n_y, n_x, gamma):
    n_y = check_int("manhattan_decay_mask", "n_y", n_y, 1)
    n_x = check_int("manhattan_decay_mask", "n_x", n_x, 1)
    if not active():
        return gamma, n_y, n_x
    return gamma_per_head("manhattan_decay_mask", gamma, None), n_y, n_x


def decayed_attention_forward(q, k, v, Gamma, variant):
    if variant not in VARIANTS:
        raise ValueError(f"decayed_attention_forward: variant must be one of {VARIANTS}, "
                         f"got {variant!r}")
    if not active():
        return q, k, v, Gamma, variant
    s = Shapes("decayed_attention_forward")
    if not np.ndim(q) == np.ndim(k) == np.ndim(v):
        s.fail(f"q, k and v must have the same leading axes (..., N, d), got q of shape "
               f"{np.shape(q)}, k {np.shape(k)}, v {np.shape(v)}")
    q = s.array("q", q, lead(np.ndim(q), "N d"))
    k = s.array("k", k, lead(q.ndim, "Nk d"))            # the same leading axes as q
    v = s.array("v", v, lead(q.ndim, "Nk dv"))
    Gamma = s.array("Gamma", Gamma, " ".join([f"m{i}" for i in range(np.ndim(Gamma) - 2)]
                                             + ["Nq", "Nk"]))    # broadcast, not bound
    if Gamma.shape[-2:] != (q.shape[-2], k.shape[-2]) or np.any((Gamma < 0) | (Gamma > 1)):
        s.fail(f"Gamma must be (..., N, N) = (..., {q.shape[-2]}, {k.shape[-2]}) (the tokens "
               f"of q and of k) with every entry in [0, 1], got shape {Gamma.shape}")
    try:
        np.broadcast_shapes(Gamma.shape, (*q.shape[:-1], k.shape[-2]))
    except ValueError:
        s.fail(f"Gamma of shape {Gamma.shape} does not broadcast to the scores "
               f"{(*q.shape[:-1], k.shape[-2])}")
    return (*same_dtype(q, k, v), Gamma, variant)


def decayed_attention_backward(dout, cache):
    if not active():
        return dout
    check_cache("decayed_attention_backward", cache, "DecayedAttentionCache",
                "decayed_attention_forward")
    return gradient("decayed_attention_backward", "dout", dout, cache, "DecayedAttentionCache",
                    "decayed_attention_forward", "v", lead(cache.v.ndim, ""))


def _grid_qkv(func, q, k, v, grid, gamma, checking):
    if not checking:
        return q, k, v, gamma, grid
    s = Shapes(func)
    q = s.array("q", q, "B h N d")
    k = s.array("k", k, "B h N d")
    v = s.array("v", v, "B h N dv")
    if not (isinstance(grid, (tuple, list)) and len(grid) == 2):
        s.fail(f"grid must be (n_y, n_x), got {grid!r}", TypeError)
    n_y, n_x = (check_int(func, "grid", n, 1) for n in grid)
    if n_y * n_x != q.shape[2]:
        s.fail(f"grid (n_y, n_x) = ({n_y}, {n_x}) has {n_y * n_x} tokens, but q has "
               f"N = {q.shape[2]}")
    return (*same_dtype(q, k, v), gamma_per_head(func, gamma, q.shape[1]), (n_y, n_x))


def _variant(func, variant):
    if variant not in VARIANTS:
        raise ValueError(f"{func}: variant must be one of {VARIANTS}, got {variant!r}")


def masa_forward(q, k, v, grid, gamma, variant):
    _variant("masa_forward", variant)
    return _grid_qkv("masa_forward", q, k, v, grid, gamma, active())


def masa_decomposed_forward(q, k, v, grid, gamma, variant):
    _variant("masa_decomposed_forward", variant)
    return _grid_qkv("masa_decomposed_forward", q, k, v, grid, gamma, active())


def retention_2d_parallel(q, k, v, grid, gamma):
    return _grid_qkv("retention_2d_parallel", q, k, v, grid, gamma, active())


def retention_2d_scan(q, k, v, grid, gamma):
    return _grid_qkv("retention_2d_scan", q, k, v, grid, gamma, active())


def _backward(func, forward, dout, cache, cls_name, field, axes):
    return gradient(func, "dout", dout, cache, cls_name, forward, field, axes)


def masa_backward(dout, cache):
    if not active():
        return dout
    return _backward("masa_backward", "masa_forward", dout, cache, "DecayedAttentionCache",
                     "v", "B h N dv")


def masa_decomposed_backward(dout, cache):
    if not active():
        return dout
    check_cache("masa_decomposed_backward", cache, "Masa2Cache", "masa_decomposed_forward")
    s = Shapes("masa_decomposed_backward")
    B, h, n_y, n_x, dv = cache.rows.v.shape
    s.bind_all("B h N dv", (B, h, n_y * n_x, dv), "the forward's output")
    return s.array("dout", dout, "B h N dv")


def retention_2d_parallel_backward(dout, cache):
    if not active():
        return dout
    return _backward("retention_2d_parallel_backward", "retention_2d_parallel", dout, cache,
                     "Retention2dCache", "v", "B h N dv")


def retention_2d_scan_backward(dout, cache):
    if not active():
        return dout
    return _backward("retention_2d_scan_backward", "retention_2d_scan", dout, cache,
                     "Retention2dCache", "v", "B h N dv")


def bidirectional_scan(u, gamma, axis):
    if not active():
        return u, gamma, axis
    s = Shapes("bidirectional_scan")
    if np.ndim(u) < 3:
        s.fail(f"u must have at least 3 dimensions (B, h, ...), got shape {np.shape(u)}")
    u = s.array("u", u, " ".join(["B", "h"] + [f"n{i}" for i in range(np.ndim(u) - 2)]))
    axis = check_int("bidirectional_scan", "axis", axis, 2)
    if axis >= u.ndim:
        s.fail(f"axis must be one of u's axes after (B, h), got {axis} for shape {u.shape}")
    return u, gamma_per_head("bidirectional_scan", gamma, u.shape[1]), axis


def vision_mix_forward(x, params, n_heads, mixer, grid, gamma):
    func = "vision_mix_forward"
    if mixer not in MIXERS:
        raise ValueError(f"{func}: mixer must be one of {MIXERS}, got {mixer!r}")
    if not active():
        return x, params, gamma
    s = Shapes(func)
    x = s.array("x", x, "B N D")
    n_heads = check_int(func, "n_heads", n_heads, 1)
    if x.shape[2] % n_heads:
        s.fail(f"n_heads = {n_heads} must divide the width D = {x.shape[2]}")
    p = s.params(params, "params", {"Wq": "D D", "Wk": "D D", "Wv": "D D", "Wo": "D D"})
    if mixer != "attention" or gamma is not None:    # attention ignores it, but not a bad one
        gamma = gamma_per_head(func, gamma, n_heads)
    if mixer.startswith("masa"):
        if not (isinstance(grid, (tuple, list)) and len(grid) == 2
                and grid[0] * grid[1] == x.shape[1]):
            s.fail(f"the MaSA mixers need grid = (n_y, n_x) with n_y n_x = N = {x.shape[1]}, "
                   f"got {grid!r}")
    x, *arrays = same_dtype(x, *p.values())
    return x, dict(zip(p, arrays)), gamma


def vision_mix_backward(dy, cache):
    if not active():
        return dy
    return gradient("vision_mix_backward", "dy", dy, cache, "MixCache", "vision_mix_forward", "x",
                    "B N D")
