"""Data parallelism on the cores of one machine: one batch's loss and gradients computed as
shards, in threads, at the same time.

A model's loss is the mean over the scored targets of its batch (the positions whose target is
not ``IGNORE_INDEX``; for a classifier, every label). Split the batch's rows into shards, and
let shard ``i`` score ``n_i`` targets with mean loss ``L_i``. The batch's loss is the mean over
all ``n = n_1 + ... + n_S`` of them::

    L = (n_1 L_1 + ... + n_S L_S) / n,        dL/dtheta = sum_i (n_i / n) dL_i/dtheta      (DP.1)

because a gradient is linear in the loss. Nothing else couples the rows of a batch in these
models (no batch normalisation), so (DP.1) is exact: only the rounding differs from one call
on the whole batch. A shard that scores nothing has weight 0.

Why threads help. NumPy releases Python's global interpreter lock inside its element-wise loops
and BLAS calls, so two threads each running one shard compute on two cores at once, as long as
each call is long enough that the Python between calls (which holds the lock) is a small part
of the time. That holds for the block models at the benchmarks' compute size (half a million
to two million entries per activation); it does not hold for a recurrent loop over small
per-step arrays, nor at the tutorial sizes, where one call on the whole batch is faster. The
same two cores can instead be given to BLAS (``OPENBLAS_NUM_THREADS=2``), which splits only the
matrix products: NumPy runs every element-wise operation on one core. While the shards run,
BLAS is held to one thread per shard (through ``threadpoolctl``), or the threads would compete
for the same cores.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from ._checks import parallel as check
from ._checks.core import trusted
from .layers import IGNORE_INDEX

__all__ = ["DataParallel", "shard_rows"]


def shard_rows(n_rows: int, workers: int) -> list[slice]:
    """The rows ``0 .. n_rows - 1`` cut into ``min(workers, n_rows)`` consecutive shards whose
    sizes differ by at most one (the first ones are the larger).

    Parameters
    ----------
    n_rows : int
        Rows of the batch, at least 1.
    workers : int
        At least 1.

    Returns
    -------
    list of slice
    """
    n_rows, workers = check.shard_rows(n_rows, workers)
    n_shards = min(workers, n_rows)
    size, extra = divmod(n_rows, n_shards)           # the first `extra` shards get one row more
    shards, start = [], 0
    for i in range(n_shards):
        stop = start + size + (i < extra)
        shards.append(slice(start, stop))
        start = stop
    return shards


class DataParallel:
    """``model.loss_and_grads`` of a batch, computed as ``workers`` shards in threads (DP.1).

    Use it where the model's ``loss_and_grads`` would be used (``train`` does, with
    ``TrainConfig(workers=2)``); close it, or use it in a ``with`` block, to stop its threads.
    Each shard runs in a copy of the caller's context, so an ``np.errstate`` around the call
    holds inside the threads as well.

    Parameters
    ----------
    model : a language model or image classifier
        Anything with ``loss_and_grads(params, inputs, targets)`` whose loss is the mean over
        the scored targets (every model of minirnn).
    workers : int, optional
        Threads, and shards of each batch (fewer when a batch has fewer rows). 2 by default.

    Examples
    --------
    >>> from minirnn.models import RetNetConfig, RetNetLM
    >>> model = RetNetLM(RetNetConfig(vocab_size=16))
    >>> params = model.init(0)
    >>> tokens = np.arange(32).reshape(4, 8) % 16
    >>> with DataParallel(model, workers=2) as parallel:
    ...     loss, grads = parallel.loss_and_grads(params, tokens, tokens)
    >>> bool(np.isclose(loss, model.loss_and_grads(params, tokens, tokens)[0]))
    True
    """

    def __init__(self, model, workers: int = 2):
        self.model, self.workers = check.data_parallel(model, workers)
        self._blas = ThreadpoolController()          # finds the loaded BLAS libraries, once
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="minirnn-shard")

    def loss_and_grads(self, params: dict, inputs: np.ndarray, targets: np.ndarray):
        """The batch's mean loss and its gradient for every parameter, from its shards (DP.1).

        Parameters
        ----------
        params : dict
        inputs : ndarray
            Tokens (B, T) of a language model, images (B, S, S, C) of a classifier.
        targets : ndarray of int
            (B, T) next tokens (or ``IGNORE_INDEX``), or (B, 1) labels.

        Returns
        -------
        loss : float
        grads : dict
            Same keys and shapes as ``params``.
        """
        inputs, targets, params = check.loss_inputs(self.model, params, inputs, targets,
                                                     IGNORE_INDEX)
        shards = shard_rows(len(inputs), self.workers)
        # each shard runs in a copy of the caller's context, so that settings such as
        # np.errstate hold inside the threads too
        contexts = [contextvars.copy_context() for _ in shards]
        with self._blas.limit(limits=1, user_api="blas"):          # one BLAS thread per shard
            results = list(self._pool.map(
                lambda context, rows: context.run(self._shard, params, inputs[rows],
                                                  targets[rows]), contexts, shards))
        counts = [np.count_nonzero(targets[rows] != IGNORE_INDEX) for rows in shards]   # n_i
        n = max(sum(counts), 1)                      # nothing scored: every weight is 0
        weights = [n_i / n for n_i in counts]
        loss = sum(w * loss_i for w, (loss_i, _) in zip(weights, results))           # (DP.1)
        grads = {key: sum(w * shard_grads[key] for w, (_, shard_grads) in zip(weights, results))
                 for key in results[0][1]}
        return float(loss), grads

    def _shard(self, params, inputs, targets):
        with trusted():                  # the whole batch was checked above, in the caller
            return self.model.loss_and_grads(params, inputs, targets)

    def close(self) -> None:
        """Stop the threads (waiting for a batch in progress)."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
