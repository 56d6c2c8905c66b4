"""Memories without training: write key-value pairs into each kind of memory, read them back.

Tutorials 8 and 10 use these to show what each way of remembering can hold before any training.
Every memory gets *the same* stream of pairs (one seed per trial, whatever the memory):

- ``softmax attention`` keeps every pair in a cache and reads with a sharp softmax (keys scaled
  by ``sharpness``); it has no positions, so two pairs with the same key tie;
- ``linear attention``, ``retention`` and ``gated retention`` fold the pairs into
  ``S_t = alpha_t S_{t-1} + k_t^T v_t`` with ``alpha_t`` one, a fixed ``gamma``, or the gate a
  trained model could learn (``gamma`` on a pair, 1 on a distractor);
- ``DeltaNet`` and ``gated DeltaNet`` write with the delta rule,
  ``S_t = alpha_t (I - k_t^T k_t) S_{t-1} + k_t^T v_t`` (writing strength ``beta = 1``, the
  same ``alpha_t`` as the two retentions).

A stream is ``n_pairs`` pairs with random unit keys in ``d`` dimensions and values drawn from
``n_candidates`` random unit vectors; ``gap`` distractor tokens (``k = v = 0``: they only let time
pass) after every pair; then ``rounds`` more passes over the same keys, in a new order, each
with new values (a key is re-assigned). A read is right when the read-out's nearest candidate
is the key's latest value.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import memory_probe as check
from .attention import attention_forward
from .delta import delta_rule_recurrent
from .gated import gated_retention_final_state

__all__ = ["MEMORIES", "PairStream", "read_memory", "recall_accuracy", "recall_table",
           "write_pairs"]

MEMORIES = ("softmax attention", "linear attention", "retention", "gated retention", "DeltaNet",
            "gated DeltaNet")


class PairStream(NamedTuple):
    """The tokens written into a memory and the questions asked of it."""

    keys: np.ndarray        # (L, d) one row per token, zero on a distractor
    values: np.ndarray      # (L, d)
    is_pair: np.ndarray     # (L,) bool
    queries: np.ndarray     # (N, d) each distinct key once
    answers: np.ndarray     # (N,) index of each key's latest value among the candidates
    candidates: np.ndarray  # (n_candidates, d)


def write_pairs(rng: np.random.Generator, n_pairs: int, gap: int = 0, rounds: int = 0,
                d: int = 16, n_candidates: int = 64) -> PairStream:
    """A stream of ``n_pairs`` key-value pairs, ``gap`` distractors after each, the keys written
    ``1 + rounds`` times.

    Parameters
    ----------
    rng : numpy Generator
    n_pairs : int
        Distinct keys ``N``.
    gap : int, optional
        Distractor tokens after every pair.
    rounds : int, optional
        Re-assignments: every key is written again this many times, with a new value each time.
    d : int, optional
        Key and value width.
    n_candidates : int, optional
        The values are drawn from this many random unit vectors.

    Returns
    -------
    PairStream
        ``L = N (1 + rounds) (1 + gap)`` tokens.
    """
    n_pairs, gap, rounds, d, n_candidates = check.write_pairs(rng, n_pairs, gap, rounds, d,
                                                              n_candidates)

    def unit(*shape):
        x = rng.standard_normal(shape)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    candidates, queries = unit(n_candidates, d), unit(n_pairs, d)
    order = np.concatenate([rng.permutation(n_pairs) for _ in range(1 + rounds)])
    which = rng.integers(0, n_candidates, order.size)       # the value written each time
    answers = np.empty(n_pairs, dtype=int)
    answers[order] = which               # later writes of a key come later: the latest wins
    keys = np.zeros((order.size * (gap + 1), d))
    values, is_pair = np.zeros_like(keys), np.zeros(len(keys), dtype=bool)
    keys[::gap + 1], values[::gap + 1], is_pair[::gap + 1] = queries[order], candidates[which], True
    return PairStream(keys, values, is_pair, queries, answers, candidates)


def read_memory(memory: str, stream: PairStream, gamma: float = 0.9,
                sharpness: float = 40.0) -> np.ndarray:
    """Write ``stream`` into ``memory``, then read it with every distinct key.

    Parameters
    ----------
    memory : str
        One of ``MEMORIES``.
    stream : PairStream
    gamma : float, optional
        The decay of retention, and the gate of the gated memories on a pair.
    sharpness : float, optional
        Softmax attention's key scale.

    Returns
    -------
    ndarray, shape (N, d)
        What the memory returns for each key.
    """
    memory, gamma = check.read_memory(memory, MEMORIES, stream, gamma, sharpness)
    k, v, q = stream.keys[None, None], stream.values[None, None], stream.queries[None, None]
    if memory == "softmax attention":                 # the cache of every pair
        pairs = stream.is_pair
        k_pairs = sharpness * stream.keys[pairs][None, None]
        return attention_forward(q, k_pairs, stream.values[pairs][None, None],
                                 causal=False)[0][0, 0]
    log_gamma = np.log(gamma)
    log_alpha = {"linear attention": 0.0, "retention": log_gamma, "DeltaNet": 0.0}.get(
        memory, np.where(stream.is_pair, log_gamma, 0.0))       # the gated memories
    log_alpha = np.broadcast_to(log_alpha, stream.is_pair.shape)[None, None]
    if memory in ("DeltaNet", "gated DeltaNet"):
        beta = np.ones(stream.is_pair.shape)[None, None]        # a distractor's k = 0 writes 0
        S = delta_rule_recurrent(k, k, v, beta, log_decay=log_alpha)[1].S
    else:
        S = gated_retention_final_state(k, v, log_alpha).S
    return stream.queries @ S[0, 0]


def recall_accuracy(memory: str, n_pairs: int, gap: int = 0, rounds: int = 0, d: int = 16,
                    gamma: float = 0.9, trials: int = 100, n_candidates: int = 64,
                    seed: int = 0) -> float:
    """The fraction of keys whose read-out is nearest their latest value, over ``trials``
    streams (the same streams for every memory, given the seed).

    Parameters
    ----------
    memory : str
        One of ``MEMORIES``.
    n_pairs, gap, rounds, d, n_candidates : int, optional
        As for [`write_pairs`][minirnn.memory_probe.write_pairs].
    gamma : float, optional
        As for [`read_memory`][minirnn.memory_probe.read_memory].
    trials : int, optional
    seed : int, optional

    Returns
    -------
    float in [0, 1]
    """
    trials, seed = check.recall_accuracy(memory, MEMORIES, trials, seed)
    hits = 0
    for trial in range(trials):
        stream = write_pairs(np.random.default_rng([seed, trial]), n_pairs, gap, rounds, d,
                             n_candidates)
        read = read_memory(memory, stream, gamma)
        hits += np.sum(np.argmax(read @ stream.candidates.T, axis=1) == stream.answers)
    return float(hits / (trials * n_pairs))


def recall_table(vary: str, settings: list[int], memories=MEMORIES, **fixed) -> str:
    """A table of [`recall_accuracy`][minirnn.memory_probe.recall_accuracy]: one row per memory,
    one column per value of the argument ``vary``.

    Parameters
    ----------
    vary : {"n_pairs", "gap", "rounds", "d"}
    settings : list of int
        The values of ``vary``, one column each.
    memories : sequence of str, optional
    **fixed
        The other arguments of ``recall_accuracy``.

    Returns
    -------
    str
        The table, a header line and one line per memory.
    """
    vary, settings, memories = check.recall_table(vary, settings, memories, MEMORIES,
                                                 fixed)
    letter = {"n_pairs": "N", "gap": "M", "rounds": "R", "d": "d"}[vary]
    lines = [f"{'':<20}" + "".join(f"{f'{letter}={value}':>8}" for value in settings)]
    for memory in memories:
        row = [recall_accuracy(memory, **{**fixed, vary: value}) for value in settings]
        lines.append(f"{memory:<20}" + "".join(f"{acc:8.2f}" for acc in row))
    return "\n".join(lines)
