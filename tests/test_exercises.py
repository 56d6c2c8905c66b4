"""Every exercise: the stub fails cleanly, the library's solution passes, and each known mistake
is graded as failing with its own diagnosis."""

import pytest

from minirnn.cli import main
from minirnn.exercises import EXERCISES, exercise_list, exercise_source, grade, start_exercise

NAMES = [e.name for e in EXERCISES]


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("exercise", EXERCISES, ids=NAMES)
def test_stub_fails_cleanly_and_solution_passes(exercise, tmp_path):
    stub = start_exercise(exercise.name, tmp_path)
    report = grade(stub)
    assert not report.passed
    assert "not implemented yet" in report.text()
    solution = write(tmp_path, "solution", exercise_source(exercise, solution=True))
    report = grade(solution)
    assert report.passed, report.text()


@pytest.mark.parametrize("exercise", EXERCISES, ids=NAMES)
def test_each_known_mistake_gets_its_diagnosis(exercise, tmp_path):
    assert exercise.mistakes, "every exercise recognises at least one mistake"
    for i, mistake in enumerate(exercise.mistakes):
        path = write(tmp_path, f"mistake{i}", exercise_source(exercise, True,
                                                                  mistake.replacements))
        report = grade(path)
        assert not report.passed
        messages = [c.message for c in report.checks]
        assert f"Likely mistake: {mistake.message}" in messages, report.text()


def test_generic_diagnoses_and_broken_files(tmp_path):
    ex = {e.name: e for e in EXERCISES}["softmax_backward"]
    solution = exercise_source(ex, solution=True)
    flipped = solution.replace("return y * (dy -", "return -y * (dy -")
    assert "wrong sign" in grade(write(tmp_path, "flip", flipped)).text()
    crash = solution.replace("y = cache.y", "y = cache.y[0, 99]")
    text = grade(write(tmp_path, "crash", crash)).text()
    assert "IndexError" in text and "line" in text and "Traceback" not in text
    shape = solution.replace("return y * (dy -", "return (y * (dy -").replace(
        "keepdims=True))", "keepdims=True)))[0]")
    assert "shape (6,), expected (3, 6)" in grade(write(tmp_path, "shape", shape)).text()
    nan = solution.replace("return y * (dy -", "return np.nan * y * (dy -")
    assert "contains NaN or inf" in grade(write(tmp_path, "nan", nan)).text()
    broken = write(tmp_path, "syntax", "EXERCISE = 'softmax_backward'\ndef f(:\n")
    assert "does not import" in grade(broken).text()
    unknown = write(tmp_path, "unknown", "EXERCISE = 'nope'\n")
    assert "no known EXERCISE" in grade(unknown).text()


GOOD_PROPERTY = '''
EXERCISE = "write_a_property"
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from minirnn import rel_error, retention_parallel

def check_chunkwise(retention_chunkwise):
    @settings(max_examples=30, deadline=None, database=None)
    @given(seed=st.integers(0, 2**16), T=st.integers(2, 12), chunk=st.integers(1, 5))
    def prop(seed, T, chunk):
        rng = np.random.default_rng(seed)
        q, k = rng.standard_normal((2, 1, 2, T, 4))
        v = rng.standard_normal((1, 2, T, 3))
        gamma = np.array([0.5, 0.9])
        out, _, _ = retention_chunkwise(q, k, v, gamma, chunk)
        assert rel_error(out, retention_parallel(q, k, v, gamma)[0]) < 1e-10
    prop()
'''


def test_write_a_property(tmp_path):
    good = grade(write(tmp_path, "good", GOOD_PROPERTY))
    assert good.passed, good.text()
    weak = GOOD_PROPERTY.replace("assert rel_error(out, retention_parallel(q, k, v, gamma)[0])"
                                 " < 1e-10", "assert out.shape == v.shape")
    report = grade(write(tmp_path, "weak", weak))
    assert not report.passed and any("would go unnoticed" in c.message for c in report.checks)
    stub = grade(start_exercise("write_a_property", tmp_path))
    assert not stub.passed and "not implemented yet" in stub.text()


def test_cli_list_start_grade(tmp_path, capsys):
    assert main(["exercise", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name, _, _ in exercise_list())
    assert main(["exercise", "start", "softmax_backward", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "softmax_backward.py"
    assert path.exists()
    assert main(["exercise", "start", "softmax_backward", "--dir", str(tmp_path)]) == 1
    assert "not overwriting" in capsys.readouterr().err
    assert main(["grade", str(path)]) == 1
    path.write_text(exercise_source({e.name: e for e in EXERCISES}["softmax_backward"], True))
    assert main(["grade", str(path)]) == 0
    assert "Score: 5/5" in capsys.readouterr().out
    assert main(["exercise", "start", "no_such"]) == 1
    assert main(["grade", str(tmp_path / "missing.py")]) == 1
