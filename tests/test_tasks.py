import numpy as np
import pytest

from minirnn.layers import IGNORE_INDEX
from minirnn.tasks import ALPHABET, GRAMMAR, make_task


def test_copy_task_targets_are_the_copy():
    task = make_task("copy", length=5, n_symbols=6)
    tokens, targets = task.batch(np.random.default_rng(0), 3)
    assert tokens.shape == targets.shape == (3, 10)
    assert np.all(tokens[:, 5] == 6)                           # separator
    np.testing.assert_array_equal(targets[:, 5:], tokens[:, :5])
    assert np.all(targets[:, :5] == IGNORE_INDEX)


def test_recall_answers_are_the_values_of_the_queried_keys():
    task = make_task("recall", n_pairs=5, n_queries=3, n_keys=10, n_values=7)
    tokens, targets = task.batch(np.random.default_rng(1), 8)
    for row, tgt in zip(tokens, targets):
        pairs = dict(zip(row[0:10:2], row[1:10:2]))
        assert len(pairs) == 5                                  # distinct keys
        scored = np.flatnonzero(tgt != IGNORE_INDEX)
        assert len(scored) == 3
        for t in scored:
            assert tgt[t] == pairs[row[t]]


def test_tasks_are_deterministic_by_seed_and_grammar_is_readable():
    task = make_task("grammar", length=40)
    a = task.batch(np.random.default_rng(5), 2)
    b = task.batch(np.random.default_rng(5), 2)
    np.testing.assert_array_equal(a[0], b[0])
    text = task.decode(a[0][0])
    assert set(text) <= set(ALPHABET) and "." in text
    words = set(w for group in GRAMMAR.values() for w in group)
    assert any(w in text for w in words)
    np.testing.assert_array_equal(task.encode(text), a[0][0])
    with pytest.raises(ValueError, match="not in the alphabet"):
        task.encode("Hello")
    with pytest.raises(ValueError, match="unknown task"):
        make_task("sorting")
    with pytest.raises(ValueError, match="length must be >= 1"):
        make_task("copy", length=0)


def test_selective_copying_scatters_the_symbols_and_asks_for_them_in_order():
    task = make_task("selective", length=12, n_memorize=3, n_symbols=5)
    tokens, targets = task.batch(np.random.default_rng(2), 6)
    assert tokens.shape == targets.shape == (6, 15)
    for row, tgt in zip(tokens, targets):
        region = row[:12]
        symbols = region[region < 5]
        assert len(symbols) == 3 and row[12] == 6                   # then the separator
        np.testing.assert_array_equal(tgt[12:], symbols)           # scored: the copy
        assert np.all(tgt[:12] == IGNORE_INDEX)
    prompt, answer = task.question(np.random.default_rng(4))
    np.testing.assert_array_equal(task.answer(prompt), answer)
    assert task.answer(prompt[:-1]) is None                         # no separator: no question
    text = task.decode(prompt)
    assert text.endswith("|") and "." in text
    np.testing.assert_array_equal(task.encode(text), prompt)
    with pytest.raises(ValueError, match="not tokens"):
        task.encode("1 2 x |")
    with pytest.raises(ValueError, match="do not fit"):
        make_task("selective", length=2, n_memorize=3)


def test_overwrite_asks_for_the_latest_of_values_that_really_changed():
    task = make_task("overwrite", n_pairs=9, n_queries=3, n_distinct=4)
    tokens, targets = task.batch(np.random.default_rng(0), 64)
    P = task.n_pairs
    for row, target in zip(tokens, targets, strict=True):
        pairs = row[:2 * P].reshape(P, 2)
        keys = pairs[:, 0]
        assert len(set(keys.tolist())) == 4 and all(np.sum(keys == k) >= 2 for k in set(keys))
        for k in set(keys.tolist()):                      # each write changes the key's value
            written = pairs[keys == k, 1]
            assert np.all(written[1:] != written[:-1])
        asked = row[2 * P::2]
        assert len(set(asked.tolist())) == 3              # distinct questions
        for j, key in enumerate(asked):
            latest = pairs[keys == key, 1][-1]
            assert target[2 * P + 2 * j] == latest
            assert task.answer(row[:2 * P + 2 * j + 1])[0] == latest
    assert np.sum(targets >= 0) == 64 * 3
    with pytest.raises(ValueError, match="twice"):
        make_task("overwrite", n_pairs=5, n_distinct=4)


def test_copy_with_a_delay_holds_the_string_and_round_trips():
    from minirnn.tasks import CopyTask, task_from_dict, task_to_dict
    task = CopyTask(length=3, n_symbols=5, delay=4)
    tokens, targets = task.batch(np.random.default_rng(0), 2)
    assert tokens.shape == targets.shape == (2, task.seq_len) == (2, 10)
    np.testing.assert_array_equal(tokens[:, 3:8], 5)              # 1 + delay separators
    np.testing.assert_array_equal(targets[:, 7:], tokens[:, :3])  # scored: the copy only
    assert np.all(targets[:, :7] < 0)
    prompt, expected = task.question(np.random.default_rng(1))
    np.testing.assert_array_equal(task.answer(prompt), expected)
    assert task.answer(prompt[:-1]) is None                       # one separator short
    assert task_from_dict(task_to_dict(task)) == task
    assert task_from_dict(task_to_dict(CopyTask())) == CopyTask()
