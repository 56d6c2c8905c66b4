"""Tiny image tasks drawn by the library from a seed (nothing is downloaded).

- ``shapes``: a horizontal bar, a vertical bar, a diagonal, an anti-diagonal or a box outline,
  at a random place and size, in noise. Five classes.
- ``relation``: two bright squares in the same row, in the same column, or neither. Three
  classes. It separates inductive biases: a decay along the raster order (ViR) sees rows as
  near and columns as far, the Manhattan decay (RMT) treats both alike.

Every task gives ``(images, labels)`` batches: images (B, S, S, 1) float32 with values around
0 and 1 plus Gaussian noise of standard deviation 0.3, labels (B, 1) integers, so the training
loop of the language models trains the classifiers unchanged.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["RelationTask", "ShapesTask"]

NOISE = 0.3


def _noisy(rng, clean: np.ndarray) -> np.ndarray:
    return (clean + NOISE * rng.standard_normal(clean.shape)).astype(np.float32)[..., None]


class _ImageTask:
    """What the two image tasks share: sizes, and batches drawn image by image."""

    classes: tuple = ()
    size: int

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple:
        return (self.size, self.size, 1)

    def draw(self, rng: np.random.Generator, label: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def batch(self, rng: np.random.Generator, batch_size: int):
        """``(images, labels)``: (batch_size, S, S, 1) float32 and (batch_size, 1) int."""
        labels = rng.integers(0, self.n_classes, batch_size)
        clean = np.stack([self.draw(rng, int(c)) for c in labels])
        return _noisy(rng, clean), labels[:, None]


@dataclass(frozen=True)
class ShapesTask(_ImageTask):
    """Five shapes at random places and sizes in ``size x size`` noisy grey images."""

    size: int = 16

    name = "shapes"
    classes = ("horizontal bar", "vertical bar", "diagonal", "anti-diagonal", "box")

    def __post_init__(self):
        if self.size < 4:
            raise ValueError(f"shapes task: size must be at least 4, got {self.size}")

    def draw(self, rng: np.random.Generator, label: int) -> np.ndarray:
        """One clean image (size, size) of class ``label``."""
        S = self.size
        img = np.zeros((S, S))
        L = int(rng.integers(max(3, S // 3), S + 1))                 # length of the shape
        y0, x0 = (int(v) for v in rng.integers(0, S - L + 1, 2))
        t = np.arange(L)
        if label == 0:
            img[rng.integers(S), x0 + t] = 1.0
        elif label == 1:
            img[y0 + t, rng.integers(S)] = 1.0
        elif label == 2:
            img[y0 + t, x0 + t] = 1.0
        elif label == 3:
            img[y0 + t, x0 + L - 1 - t] = 1.0
        else:
            img[[y0, y0 + L - 1], x0:x0 + L] = 1.0
            img[y0:y0 + L, [x0, x0 + L - 1]] = 1.0
        return img

@dataclass(frozen=True)
class RelationTask(_ImageTask):
    """Two bright squares: in the same row, in the same column, or neither.

    The image is a grid of ``cell x cell`` squares (``cell`` divides ``size``); two different
    squares light up. With ``cell`` equal to a model's patch size every square is one patch
    token, so the task asks how two tokens of the grid relate: a decay along the raster order
    (ViR) makes neighbours in a row close and neighbours in a column ``size / cell`` tokens
    apart, the Manhattan decay (RMT) treats both alike.
    """

    size: int = 12
    cell: int = 4

    name = "relation"
    classes = ("same row", "same column", "neither")

    def __post_init__(self):
        if self.size % self.cell or self.size // self.cell < 2:
            raise ValueError(f"relation task: cell = {self.cell} must divide size = {self.size} "
                             f"at least twice")

    def draw(self, rng: np.random.Generator, label: int) -> np.ndarray:
        """One clean image (size, size) of class ``label``."""
        G = self.size // self.cell                                   # squares per side
        a, b = rng.choice(G, 2, replace=False)                       # two different values
        y, x = (int(v) for v in rng.integers(0, G, 2))
        if label == 0:
            squares = [(y, a), (y, b)]
        elif label == 1:
            squares = [(a, x), (b, x)]
        else:
            c, e = rng.choice(G, 2, replace=False)
            squares = [(a, c), (b, e)]
        img = np.zeros((self.size, self.size))
        for gy, gx in squares:
            img[gy * self.cell:(gy + 1) * self.cell, gx * self.cell:(gx + 1) * self.cell] = 1.0
        return img


def save_png(path, *panels: np.ndarray, scale: int = 8) -> None:
    """Write grey images side by side to a PNG file (NumPy and the standard library only).

    Each panel (H, W) is stretched to 0..255 on its own range and enlarged ``scale`` times so
    that a 16 x 16 image is visible; a white column separates the panels.

    Parameters
    ----------
    path : str or path
    *panels : ndarray, shape (H, W)
    scale : int, optional
    """
    columns = []
    for panel in panels:
        p = np.asarray(panel, dtype=np.float64)
        span = p.max() - p.min()
        p = (p - p.min()) / (span if span > 0 else 1.0)
        columns += [np.kron(p, np.ones((scale, scale))), np.ones((p.shape[0] * scale, scale))]
    pixels = (255 * np.concatenate(columns[:-1], axis=1)).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)            # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
