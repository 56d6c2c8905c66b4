import json
import subprocess
import sys

import numpy as np
import pytest

from minirnn import tour
from minirnn.cli import main
from minirnn.tour import GradcheckCase, run_tour


def test_tour_passes_and_prints_every_part(capsys):
    assert main(["tour", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert "(a) Gradient checks" in out and "(b) Retention" in out
    for mechanism in ("rnn sequence (BPTT)", "softmax", "attention (causal)",
                      "multi-head attention", "retention (chunkwise)", "KV cache",
                      "gated delta rule (chunkwise)", "gated DeltaNet layer",
                      "lstm sequence (BPTT)", "gru sequence (reset after)",
                      "minGRU (parallel scan)", "mLSTM (parallel)"):
        assert mechanism in out
    assert "(c) The language models" in out and "recall acc" in out and "ms at 4096" in out
    assert "gated, vs parallel" in out and "\ngated " in out and "\ngated-delta " in out
    assert "delta rule, vs parallel" in out and "\nlstm " in out
    assert "(e) Vision" in out and "shapes accuracy" in out
    assert "FAIL" not in out and "All checks passed." in out
    assert max(len(line) for line in out.splitlines()) <= 80     # fits a terminal


def test_tour_reports_a_wrong_backward(monkeypatch, capsys):
    def broken_cases(seed=0):
        x = np.random.default_rng(seed).standard_normal((2, 3))
        yield GradcheckCase("square, forgot the 2", lambda x: (x ** 2, x), lambda d, x: d * x,
                            {"x": x}, None)

    monkeypatch.setattr(tour, "gradcheck_cases", broken_cases)
    monkeypatch.setattr(tour, "decoding_table", lambda *args, **kw: "(decoding skipped)")
    lines = []
    assert run_tour(out=lines.append, steps=5) is False
    assert any("FAIL" in line for line in lines) and "SOME CHECKS FAILED." in lines[-1]
    assert main(["tour", "--steps", "5"]) == 1


def test_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "tour" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["tour", "--seed", "abc"])
    assert exc.value.code == 2


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "minirnn", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.startswith("minirnn ")


def test_train_then_generate_then_resume(tmp_path, capsys):
    path = tmp_path / "run.npz"
    args = ["train", "--model", "retnet", "--task", "grammar", "--steps", "4",
            "--batch-size", "2", "--d-model", "8", "--layers", "1", "--eval-every", "2",
            "--checkpoint", str(path), "--no-progress"]
    assert main(args) == 0
    assert path.exists() and "checkpoint saved" in capsys.readouterr().out
    assert main(args) == 1                                     # refuses to overwrite
    assert "exists; pass --resume" in capsys.readouterr().err
    assert main(["generate", "--checkpoint", str(path), "--prompt", "the cat ",
                 "--tokens", "5"]) == 0
    out = capsys.readouterr().out
    assert "prompt:    the cat" in out and "generated:" in out
    assert main(["train", "--checkpoint", str(path), "--resume", "--no-progress"]) == 0
    assert "resuming retnet on grammar at step 4" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["delta", "gated-delta"])
def test_deltanet_models_train_resume_and_answer_from_the_cli(model, tmp_path, capsys):
    path = str(tmp_path / "d.npz")
    args = ["train", "--model", model, "--task", "overwrite", "--steps", "4", "--batch-size",
            "2", "--d-model", "8", "--layers", "1", "--eval-every", "2", "--checkpoint", path,
            "--no-progress"]
    assert main(args) == 0
    assert f"training {model} (" in capsys.readouterr().out
    assert main(["train", "--resume", "--checkpoint", path, "--steps", "6",
                 "--no-progress"]) == 0
    assert f"resuming {model} on overwrite at step 4" in capsys.readouterr().out
    assert main(["generate", "--checkpoint", path, "--prompt", "k3 v5 k1 v2 k3 v7 k3"]) == 0
    out = capsys.readouterr().out
    assert "expected:  v7" in out                   # the latest value, not the first


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["generate", "--checkpoint", str(tmp_path / "none.npz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no checkpoint file" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert main(["generate", "--checkpoint", str(bad)]) == 1
    assert "not a readable minirnn checkpoint" in capsys.readouterr().err
    assert main(["train", "--model", "retnet", "--d-model", "6", "--heads", "2",
                 "--checkpoint", str(tmp_path / "x.npz")]) == 1
    assert "must be even" in capsys.readouterr().err
    assert main(["train", "--checkpoint", str(tmp_path / "missing" / "x.npz"), "--steps", "1",
                 "--no-progress", "--model", "rnn"]) == 1
    assert "No such file or directory" in capsys.readouterr().err
    for argv in (["train", "--steps", "0"], ["train", "--model", "tcn"],
                 ["generate"], ["train", "--lr", "-1"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_bench_smoke(tmp_path, capsys):
    out = tmp_path / "decode.json"
    assert main(["bench", "decode", "--quick", "--out", str(out)]) == 0
    assert "speedup" in capsys.readouterr().out and out.exists()
    flat = json.loads(out.read_text())["runs"][0]["short against long context"]
    assert {r["step"] for r in flat} == {"attention", "retnet", "gated", "delta"}
    assert all(r["long"] > r["short"] and r["ratio"]["q1"] <= r["ratio"]["q3"] for r in flat)
    after = json.loads(out.read_text())["runs"][0]["RetNet calls after attention"]
    assert [r["call"] for r in after] == list(range(1, 9)) and all(r["ms"]["median"] > 0
                                                                  for r in after)
    assert main(["bench", "training", "--quick"]) == 0
    assert "chunkwise 16" in capsys.readouterr().out
    assert main(["bench", "delta", "--quick", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "recurrent" in out and "run 2" in out and "[" in out    # medians with their spread
    try:
        import torch  # noqa: F401
    except ImportError:                                       # one line on stderr, exit 1
        assert main(["bench", "torch", "--quick"]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1 and "torch is not installed" in captured.err
        assert "pip install -e '.[bench]'" in captured.err
    else:
        assert main(["bench", "torch", "--quick"]) == 0
        assert "layer norm" in capsys.readouterr().out


TINY = ["--model", "rnn", "--task", "copy", "--steps", "2", "--batch-size", "2", "--d-model",
        "4", "--no-progress"]


def _good_run(tmp_path, capsys):
    path = tmp_path / "run.npz"
    assert main(["train", *TINY, "--checkpoint", str(path)]) == 0
    capsys.readouterr()
    return path, path.read_bytes()


@pytest.mark.parametrize("failure", ["read-only folder", "disk full"])
def test_a_failed_save_is_one_line_and_keeps_the_good_checkpoint(tmp_path, capsys,
                                                                  monkeypatch, failure):
    """Simulated, because the tests may run as root, where chmod does not stop writes: a
    read-only folder makes creating the temporary file fail; a full disk fails half-way
    through writing it."""
    import errno
    import tempfile

    path, good = _good_run(tmp_path, capsys)
    if failure == "read-only folder":
        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    else:
        def half_then_full(f, **arrays):
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(np, "savez", half_then_full)
    assert main(["train", "--checkpoint", str(path), "--resume", "--no-progress",
                 "--steps", "4"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("minirnn train: error:")
    assert ("Permission denied" if failure == "read-only folder" else "No space left") in err
    assert path.read_bytes() == good                             # never replaced
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["run.npz", "run.npz.metrics.jsonl"]          # no temporary file left


def test_checkpoints_that_do_not_fit_are_one_line_errors(tmp_path, capsys):
    from minirnn import load_checkpoint, save_checkpoint

    path, good = _good_run(tmp_path, capsys)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    other = tmp_path / "other.npz"
    ckpt = load_checkpoint(path)
    ckpt.params["head.W"] = ckpt.params["head.W"][:-1]           # another model's shape
    save_checkpoint(other, ckpt)
    for bad, message in ((truncated, "not a readable minirnn checkpoint"),
                         (other, "do not match")):
        for argv in (["generate", "--checkpoint", str(bad)],
                     ["train", "--checkpoint", str(bad), "--resume", "--no-progress"]):
            assert main(argv) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and message in err, err
    assert path.read_bytes() == good


def test_image_classifier_train_predict_and_the_mismatches(tmp_path, capsys):
    ckpt = tmp_path / "shapes.npz"
    assert main(["train", "--task", "shapes", "--steps", "3", "--eval-every", "3",
                 "--checkpoint", str(ckpt)]) == 0                   # vit by default
    assert "training vit" in capsys.readouterr().out
    png = tmp_path / "drawn.png"
    assert main(["predict", "--checkpoint", str(ckpt), "--seed", "1", "--save", str(png)]) == 0
    out = capsys.readouterr().out
    assert "true class:" in out and "predicted:" in out and out.count("%") == 5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["generate", "--checkpoint", str(ckpt)]) == 1
    assert "use python -m minirnn predict" in capsys.readouterr().err
    assert main(["train", "--task", "shapes", "--model", "retnet", "--steps", "1",
                 "--checkpoint", str(tmp_path / "x.npz")]) == 1
    assert "does not fit --task shapes" in capsys.readouterr().err
    lm = tmp_path / "lm.npz"
    assert main(["train", "--task", "copy", "--model", "rnn", "--steps", "1", "--eval-every",
                 "1", "--checkpoint", str(lm)]) == 0
    assert main(["predict", "--checkpoint", str(lm)]) == 1
    assert "use python -m minirnn generate" in capsys.readouterr().err


def test_no_command_prints_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m minirnn") and "tour" in out and "grade" in out


@pytest.mark.parametrize("model", ["lstm", "gru", "mingru"])
def test_recurrent_cell_models_train_resume_and_generate_from_the_cli(model, tmp_path, capsys):
    path = str(tmp_path / "c.npz")
    args = ["train", "--model", model, "--task", "copy", "--steps", "4", "--batch-size", "2",
            "--d-model", "8", "--eval-every", "2", "--checkpoint", path, "--no-progress"]
    assert main(args) == 0
    assert f"training {model} (" in capsys.readouterr().out
    assert main(["train", "--resume", "--checkpoint", path, "--steps", "6",
                 "--no-progress"]) == 0
    assert f"resuming {model} on copy at step 4" in capsys.readouterr().out
    assert main(["generate", "--checkpoint", path, "--tokens", "3"]) == 0
    assert "generated:" in capsys.readouterr().out
