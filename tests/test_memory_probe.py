"""The training-free memory probe of tutorials 8 and 10: every memory reads the same streams,
the streams are what the docstring says, and the known cases come out exactly."""

import numpy as np
import pytest

from minirnn.memory_probe import (
    MEMORIES,
    read_memory,
    recall_accuracy,
    recall_table,
    write_pairs,
)


def test_a_stream_writes_every_key_once_per_round_and_answers_with_the_latest_value():
    stream = write_pairs(np.random.default_rng(0), n_pairs=3, gap=2, rounds=2, d=4,
                         n_candidates=5)
    assert stream.keys.shape == (3 * 3 * 3, 4) and stream.is_pair.sum() == 9
    assert np.all(stream.keys[~stream.is_pair] == 0) and np.all(stream.values[~stream.is_pair] == 0)
    written = stream.keys[stream.is_pair]
    for i, key in enumerate(stream.queries):
        rows = np.flatnonzero(np.all(written == key, axis=1))
        assert rows.size == 3                                   # once per round
        latest = stream.values[stream.is_pair][rows[-1]]
        assert np.array_equal(latest, stream.candidates[stream.answers[i]])


def test_with_orthogonal_keys_the_delta_rule_returns_the_latest_value_exactly():
    """Orthogonal unit keys and beta = 1: every write replaces the key's value (DR.3); linear
    attention returns the sum of everything written with the key."""
    rng = np.random.default_rng(1)
    stream = write_pairs(rng, n_pairs=4, rounds=3, d=4)
    basis = np.linalg.qr(rng.standard_normal((4, 4)))[0].T          # rows orthonormal
    index = [int(np.flatnonzero(np.all(stream.queries == k, axis=1))[0]) for k in stream.keys]
    stream = stream._replace(keys=basis[index], queries=basis)
    latest = stream.candidates[stream.answers]
    np.testing.assert_allclose(read_memory("DeltaNet", stream), latest, atol=1e-12)
    summed = np.stack([stream.values[np.array(index) == i].sum(axis=0) for i in range(4)])
    np.testing.assert_allclose(read_memory("linear attention", stream), summed, atol=1e-12)


def test_same_streams_for_every_memory_and_distractors_do_not_move_the_gated_memories():
    assert recall_accuracy("gated retention", 8) == recall_accuracy("retention", 8)
    for memory in ("linear attention", "gated retention", "DeltaNet", "gated DeltaNet"):
        assert recall_accuracy(memory, 8, gap=5, trials=20) == recall_accuracy(memory, 8,
                                                                               trials=20)
    assert recall_accuracy("retention", 8, gap=5, trials=20) < recall_accuracy("retention", 8,
                                                                              trials=20)


def test_re_assigned_keys_separate_the_delta_rule_from_the_additive_memories():
    delta = recall_accuracy("DeltaNet", 2, rounds=3, trials=50)
    for memory in ("linear attention", "retention", "softmax attention"):
        assert recall_accuracy(memory, 2, rounds=3, trials=50) < delta - 0.3, memory


def test_table_layout_and_errors():
    table = recall_table("gap", [0, 1], memories=["DeltaNet"], n_pairs=2, trials=3)
    assert table.splitlines()[0].split() == ["M=0", "M=1"] and "DeltaNet" in table
    with pytest.raises(ValueError, match="memory must be one of"):
        recall_accuracy("lstm", 4)
    with pytest.raises(ValueError, match="gamma"):
        read_memory("retention", write_pairs(np.random.default_rng(0), 2), gamma=1.5)
    with pytest.raises(TypeError, match="rng"):
        write_pairs(0, 2)
    with pytest.raises(ValueError, match="n_pairs is varied"):
        recall_table("n_pairs", [2], n_pairs=3)
    with pytest.raises(ValueError, match="memories"):
        recall_table("gap", [0], memories=["RNN"])
    assert len(MEMORIES) == 6
