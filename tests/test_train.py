import numpy as np
import pytest

from minirnn.models import (
    GatedConfig,
    RetNetConfig,
    RNNConfig,
    TransformerConfig,
)
from minirnn.registry import build_model
from minirnn.tasks import make_task
from minirnn.train import (
    TrainConfig,
    evaluate,
    generate,
    load_checkpoint,
    save_checkpoint,
    train,
)

TASK = make_task("copy", length=4, n_symbols=5)
CONFIGS = [RNNConfig(TASK.vocab_size, 8, 16),
           TransformerConfig(TASK.vocab_size, 8, 2, 1, 16, 16),
           RetNetConfig(TASK.vocab_size, 8, 2, 1, 4, 16, "chunkwise", 4),
           GatedConfig(TASK.vocab_size, 8, 2, 1, 4, 16, "chunkwise", 4)]


def short(steps=6, **kw):
    return TrainConfig(steps=steps, batch_size=4, eval_every=3, eval_batches=1, **kw)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.kind)
def test_same_seed_gives_bit_identical_losses(config):
    model = build_model(config)
    first = train(model, model.init(0), TASK, short(), progress=False)
    again = train(model, model.init(0), TASK, short(), progress=False)
    assert [h["loss"] for h in first.history] == [h["loss"] for h in again.history]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.kind)
def test_interrupted_run_resumes_with_the_same_trajectory(config, tmp_path):
    model = build_model(config)
    straight = train(model, model.init(0), TASK, short(steps=8), progress=False)
    path = tmp_path / "ckpt.npz"
    def interrupt(step, loss):          # as if the machine died right after step 5
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, model.init(0), TASK, short(steps=8), checkpoint=path, checkpoint_every=4,
              progress=False, callback=interrupt)
    ckpt = load_checkpoint(path)
    assert ckpt.step == 4
    resumed = train(model, None, TASK, ckpt.train_config, resume=ckpt, progress=False)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    for key in straight.params:
        np.testing.assert_array_equal(resumed.params[key], straight.params[key])


def test_training_learns_and_evaluates():
    model = build_model(CONFIGS[1])
    params = model.init(0)
    before = evaluate(model, params, TASK, 2, 16)
    result = train(model, params, TASK, TrainConfig(steps=150, batch_size=16, lr=1e-2,
                                                    eval_every=150), progress=False)
    after = evaluate(model, result.params, TASK, 2, 16)
    assert after["loss"] < before["loss"] - 0.3
    assert "eval_accuracy" in result.history[-1]


@pytest.mark.parametrize("workers", [1, 2])
def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, workers):
    model = build_model(CONFIGS[0])
    path = tmp_path / "run.npz"
    # a learning rate of 1e30: step 0 is still finite (and checkpointed), step 1 is not
    with pytest.raises(FloatingPointError, match=r"diverged at step 1: .* non-finite"), \
            np.errstate(all="ignore"):
        train(model, model.init(0), TASK, short(steps=3, lr=1e30, clip=1e300, warmup=0,
                                                workers=workers),
              checkpoint=path, checkpoint_every=1, progress=False)
    kept = load_checkpoint(path)
    assert kept.step == 1
    assert all(np.all(np.isfinite(p)) for p in kept.params.values())


def test_non_finite_starting_parameters_are_bad_input(tmp_path):
    model = build_model(CONFIGS[0])
    params = model.init(0)
    params["head.W"][1, 2] = np.nan
    with pytest.raises(ValueError, match=r"train: params\['head.W'\] contains 1 non-finite"):
        train(model, params, TASK, short(steps=3), progress=False)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable minirnn checkpoint"):
        load_checkpoint(junk)
    model = build_model(CONFIGS[0])
    path = tmp_path / "ok.npz"
    train(model, model.init(0), TASK, short(steps=2), checkpoint=path, progress=False)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable minirnn checkpoint"):
        load_checkpoint(truncated)
    ckpt = load_checkpoint(path)
    ckpt.params["rnn.Wh"] = np.zeros((3, 3), dtype=np.float32)
    other = tmp_path / "other.npz"
    save_checkpoint(other, ckpt)
    with pytest.raises(ValueError, match=r"parameters do not match .* \['rnn.Wh'\]"):
        load_checkpoint(other)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.kind)
def test_generate_shapes_greedy_and_reproducible(config):
    model = build_model(config)
    params = model.init(0)
    prompt = np.array([1, 2, 3])
    a = generate(model, params, prompt, 5, temperature=0.8, top_k=3, seed=1)
    b = generate(model, params, prompt, 5, temperature=0.8, top_k=3, seed=1)
    assert a.shape == (8,) and np.array_equal(a, b) and np.array_equal(a[:3], prompt)
    greedy = generate(model, params, prompt, 4, temperature=0)
    logits, _ = model.forward(params, greedy[None, :-1])
    np.testing.assert_array_equal(greedy[3:], logits[0, 2:].argmax(-1))
