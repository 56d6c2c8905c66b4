"""Data parallelism (minirnn/parallel.py): shards in threads give the whole batch's loss and
gradients (DP.1) for every kind of model, hold BLAS to one thread while they run, explain bad
input in terms of the whole batch, and train the same run as one thread does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from threadpoolctl import threadpool_info

import minirnn as m
from minirnn.layers import IGNORE_INDEX
from minirnn.parallel import DataParallel, shard_rows
from minirnn.tasks import CopyTask
from minirnn.train import TrainConfig, load_checkpoint, train

V = 9
MODELS = {"rnn": m.RNNConfig(V, d_model=8, hidden=8),
          "lstm": m.LSTMConfig(V, d_model=8, hidden=8),
          "transformer": m.TransformerConfig(V, d_model=8, n_heads=2, n_layers=1, d_ff=16,
                                             max_len=16),
          "retnet": m.RetNetConfig(V, d_model=8, n_heads=2, n_layers=1, dv=4, d_ff=16,
                                   chunk_size=3),
          "gated-delta": m.GatedDeltaNetConfig(V, d_model=8, n_heads=2, n_layers=1, dv=4,
                                               d_ff=16, chunk_size=3)}
BUILT = {kind: m.build_model(config) for kind, config in MODELS.items()}
PARAMS = {kind: model.init(0, np.float64) for kind, model in BUILT.items()}
POOLS = {workers: {kind: DataParallel(model, workers) for kind, model in BUILT.items()}
         for workers in (2, 3)}


@given(n_rows=st.integers(1, 40), workers=st.integers(1, 12))
def test_shards_cover_every_row_once_in_order_with_sizes_one_apart(n_rows, workers):
    shards = shard_rows(n_rows, workers)
    assert len(shards) == min(workers, n_rows)
    assert shards[0].start == 0 and shards[-1].stop == n_rows
    assert all(a.stop == b.start for a, b in itertools.pairwise(shards))
    sizes = [s.stop - s.start for s in shards]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes)[::-1]


@given(kind=st.sampled_from(sorted(MODELS)), workers=st.sampled_from([2, 3]),
       B=st.integers(1, 7), T=st.integers(1, 6), seed=st.integers(0, 2**16),
       ignored=st.floats(0.0, 1.0))
def test_shards_give_the_whole_batch_loss_and_gradients(kind, workers, B, T, seed, ignored):
    """(DP.1) in float64, to 1e-12, with a random share of unscored targets (a shard may score
    nothing) and batches smaller than the number of workers."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, V, (B, T))
    targets = np.where(rng.random((B, T)) < ignored, IGNORE_INDEX, rng.integers(0, V, (B, T)))
    loss, grads = BUILT[kind].loss_and_grads(PARAMS[kind], tokens, targets)
    loss_dp, grads_dp = POOLS[workers][kind].loss_and_grads(PARAMS[kind], tokens, targets)
    assert isinstance(loss_dp, float)
    assert loss_dp == pytest.approx(loss, rel=1e-12, abs=1e-12)
    assert grads_dp.keys() == grads.keys()
    for key, g in grads.items():
        assert grads_dp[key].dtype == g.dtype and grads_dp[key].shape == g.shape
        np.testing.assert_allclose(grads_dp[key], g, rtol=1e-10, atol=1e-12, err_msg=key)


def test_nothing_scored_gives_zero_loss_and_zero_gradients_like_the_model():
    tokens = np.ones((4, 5), dtype=int)
    targets = np.full((4, 5), IGNORE_INDEX)
    loss, grads = POOLS[2]["retnet"].loss_and_grads(PARAMS["retnet"], tokens, targets)
    assert loss == BUILT["retnet"].loss_and_grads(PARAMS["retnet"], tokens, targets)[0] == 0.0
    assert all(not g.any() for g in grads.values())


def test_an_image_classifier_splits_its_images_and_labels():
    model = m.ViT(m.ViTConfig(n_classes=3, image_size=8, patch_size=2, d_model=8, n_heads=2,
                              n_layers=1, d_ff=16))
    params = model.init(0, dtype=np.float64)
    rng = np.random.default_rng(0)
    images, labels = rng.standard_normal((5, 8, 8, 1)), rng.integers(0, 3, (5, 1))
    loss, grads = model.loss_and_grads(params, images, labels)
    with DataParallel(model, 2) as parallel:
        loss_dp, grads_dp = parallel.loss_and_grads(params, images, labels)
    assert loss_dp == pytest.approx(loss, rel=1e-12)
    for key, g in grads.items():
        np.testing.assert_allclose(grads_dp[key], g, rtol=1e-10, atol=1e-12, err_msg=key)


class _Recorder:
    """A model whose loss is 0 and which notes the BLAS threads each shard was given."""

    def __init__(self):
        self.config, self.seen = m.RNNConfig(V, d_model=4, hidden=4), []
        self.inner = m.build_model(self.config)

    def init(self, *args, **kwargs):
        return self.inner.init(*args, **kwargs)

    def loss_and_grads(self, params, tokens, targets):
        self.seen.append([lib["num_threads"] for lib in threadpool_info()
                          if lib["user_api"] == "blas"])
        return self.inner.loss_and_grads(params, tokens, targets)


def test_shards_run_with_one_blas_thread_and_the_setting_comes_back():
    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    recorder = _Recorder()
    with DataParallel(recorder, 2) as parallel:
        parallel.loss_and_grads(recorder.inner.init(0), np.zeros((4, 3), int),
                                np.zeros((4, 3), int))
    assert len(recorder.seen) == 2
    assert all(threads == [1] * len(before) for threads in recorder.seen)
    assert [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"] == before


def test_shards_run_in_the_callers_numpy_error_state():
    """np.errstate around the call holds inside the threads (NumPy keeps it per context)."""
    params = dict(PARAMS["rnn"], embed=PARAMS["rnn"]["embed"] * 1e300,
                  **{"rnn.Wx": PARAMS["rnn"]["rnn.Wx"] * 1e300})     # x Wx overflows
    tokens = np.arange(12).reshape(4, 3) % V
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        POOLS[2]["rnn"].loss_and_grads(params, tokens, tokens)


def test_bad_workers_and_bad_batches_are_named_in_terms_of_the_whole_batch():
    model = BUILT["retnet"]
    for workers, error in ((0, ValueError), (-2, ValueError), (True, TypeError),
                           (1.5, TypeError), ("2", TypeError)):
        with pytest.raises(error, match="DataParallel: workers"):
            DataParallel(model, workers)
    with pytest.raises(TypeError, match="loss_and_grads"):
        DataParallel(object(), 2)
    for n_rows, workers, error, name in ((0, 2, ValueError, "n_rows"), (4, 0, ValueError,
                                         "workers"), (4.0, 2, TypeError, "n_rows"),
                                        (4, True, TypeError, "workers")):
        with pytest.raises(error, match=f"shard_rows: {name}"):
            shard_rows(n_rows, workers)
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        TrainConfig(workers=0)
    parallel = POOLS[2]["retnet"]
    tokens = np.zeros((6, 4), int)
    with pytest.raises(ValueError, match=r"tokens.*\b9\b"):              # an id >= V = 9
        parallel.loss_and_grads(PARAMS["retnet"], tokens + 9, tokens)
    with pytest.raises(ValueError, match=r"targets.*\(6, 3\)|\(6, 4\).*\(6, 3\)"):
        parallel.loss_and_grads(PARAMS["retnet"], tokens, tokens[:, :3])
    nan = dict(PARAMS["retnet"], **{"head.W": np.full_like(PARAMS["retnet"]["head.W"], np.nan)})
    with pytest.raises(ValueError, match=r"head\.W"):
        parallel.loss_and_grads(nan, tokens, tokens)


@pytest.mark.parametrize("kind", ["transformer", "gated-delta"])
def test_training_on_two_workers_follows_one_worker_and_resumes_bit_for_bit(kind, tmp_path):
    model, task = BUILT[kind], CopyTask(length=4, n_symbols=8)
    one = train(model, model.init(1, np.float64), task,
                TrainConfig(steps=10, batch_size=5, eval_every=5, seed=3), progress=False)
    config = TrainConfig(steps=10, batch_size=5, eval_every=5, seed=3, workers=2)
    two = train(model, model.init(1, np.float64), task, config, progress=False)
    np.testing.assert_allclose([h["loss"] for h in two.history],
                               [h["loss"] for h in one.history], rtol=1e-10)
    path = tmp_path / "run.npz"

    def stop(step, loss):              # as if the machine died after step 7 (saved at 6)
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, model.init(1, np.float64), task, config, checkpoint=path,
              checkpoint_every=3, progress=False, callback=stop)
    ckpt = load_checkpoint(path)
    assert ckpt.train_config.workers == 2 and ckpt.step == 6
    again = train(model, None, task, ckpt.train_config, resume=ckpt, progress=False)
    assert [h["loss"] for h in again.history] == [h["loss"] for h in two.history]
    for key, value in two.params.items():
        assert np.array_equal(again.params[key], value), key
