import subprocess
import sys

import numpy as np
import pytest

from minirnn import tour
from minirnn.cli import main
from minirnn.tour import GradcheckCase, run_tour


def test_tour_passes_and_prints_every_part(capsys):
    assert main(["tour"]) == 0
    out = capsys.readouterr().out
    assert "(a) Gradient checks" in out and "(b) Retention" in out
    for mechanism in ("rnn sequence (BPTT)", "softmax", "attention (causal)",
                      "multi-head attention", "retention (chunkwise)", "KV cache"):
        assert mechanism in out
    assert "FAIL" not in out and "All checks passed." in out
    assert max(len(line) for line in out.splitlines()) <= 80     # fits a terminal


def test_tour_reports_a_wrong_backward(monkeypatch, capsys):
    def broken_cases(seed=0):
        x = np.random.default_rng(seed).standard_normal((2, 3))
        yield GradcheckCase("square, forgot the 2", lambda x: (x ** 2, x), lambda d, x: d * x,
                            {"x": x}, None)

    monkeypatch.setattr(tour, "gradcheck_cases", broken_cases)
    lines = []
    assert run_tour(out=lines.append) is False
    assert any("FAIL" in line for line in lines) and "SOME CHECKS FAILED." in lines[-1]
    assert main(["tour"]) == 1


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
