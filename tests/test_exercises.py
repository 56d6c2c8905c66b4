"""Every exercise: the stub scores 1 of a fixed total, the library's solution full marks, and
every catalogued mistake, written two different ways, is named and located from the numbers.
Batch mode grades a class folder into a CSV, whatever the submissions do."""

import csv
import json

import pytest
from exercise_mistakes import EDITS, rewritten

from minirnn.cli import main
from minirnn.exercises import (
    EXERCISES,
    exercise_list,
    exercise_source,
    grade,
    mistake_count,
    rubric,
    start_exercise,
)
from minirnn.exercises.stubs import _region_text

NAMES = [e.name for e in EXERCISES]
BY_NAME = {e.name: e for e in EXERCISES}


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def edited(exercise, edits):
    """The solution with ``edits`` made in its code (the module docstring left alone)."""
    text = exercise_source(exercise, solution=True)
    start = text.index("\ndef ")
    head, code = text[:start], text[start:]
    for old, new in edits:
        assert old in code, f"{exercise.name}: {old!r} not in the solution"
        code = code.replace(old, new, 1)
    return head + code


@pytest.mark.parametrize("exercise", EXERCISES, ids=NAMES)
def test_stub_scores_one_and_solution_full_marks(exercise, tmp_path):
    stub = grade(start_exercise(exercise.name, tmp_path))
    total = sum(c.points for c in rubric(exercise.name))
    assert (stub.score, stub.max_score) == (1, total) and "not implemented yet" in stub.text()
    assert all(c.message.startswith("not run") for c in stub.checks[2:])
    solution = grade(write(tmp_path, "solution", exercise_source(exercise, solution=True)))
    assert solution.passed and solution.score == total == 8, solution.text()
    assert "(example: " in solution.text()


@pytest.mark.parametrize("exercise", EXERCISES, ids=NAMES)
def test_every_mistake_written_two_ways_is_named_and_located(exercise, tmp_path):
    edits = EDITS[exercise.name]
    assert len(exercise.mistakes) >= 6 and len(edits) == len(exercise.mistakes)
    for i, (mistake, change) in enumerate(zip(exercise.mistakes, edits)):
        first = edited(exercise, change)
        for j, text in enumerate((first, rewritten(first))):
            assert text != exercise_source(exercise, solution=True)
            report = grade(write(tmp_path, f"m{i}_{j}", text))
            shown = report.text()
            assert not report.passed and report.max_score == 8, shown
            assert f"Likely mistake: {mistake.message}" in shown.replace("\n" + " " * 15, " "), \
                f"way {j} of mistake {i} ({mistake.message}):\n{shown}"
            assert "wrong: " in shown and report.mistake == mistake.message


def test_localisation_in_the_students_terms(tmp_path):
    ex = BY_NAME["rnn_backward"]
    text = grade(write(tmp_path, "carry", edited(ex, EDITS["rnn_backward"][0]))).text()
    assert "first wrong at time step t = 4 (of 6, counted from 0), walking backward from " \
           "t = 5" in text.replace("\n" + " " * 15, " ") and "step 5 is right" in text
    ex = BY_NAME["retention_chunkwise"]
    text = grade(write(tmp_path, "cross", edited(ex, EDITS["retention_chunkwise"][1]))).text()
    flat = text.replace("\n" + " " * 15, " ")
    assert "first wrong in chunk 1 (rows 3-5); chunk 0 (no state before it) is right" in flat
    assert "cross-chunk part" in flat
    ex = BY_NAME["kv_cache_step"]
    text = grade(write(tmp_path, "mask", edited(ex, EDITS["kv_cache_step"][1]))).text()
    assert "first wrong at position 3 (the first token decoded one at a time" in \
        text.replace("\n" + " " * 15, " ")


def test_a_factor_is_named_in_the_example_sizes(tmp_path):
    ex = BY_NAME["softmax_backward"]
    text = grade(write(tmp_path, "half", edited(ex, (("return y * (", "return 0.5 * y * ("),))))
    assert "off by a constant factor of 0.5 = 1/2" in text.text()
    ex = BY_NAME["rnn_step_backward"]
    six = edited(ex, (("    return dx, dh_prev, grads", "    return dx / 4, dh_prev, grads"),))
    assert "= 1/D (D = 4)" in grade(write(tmp_path, "quarter", six)).text().replace("\n", " ")


def test_every_gradient_is_reported_and_broken_files(tmp_path):
    ex = BY_NAME["rnn_backward"]
    report = grade(write(tmp_path, "b", edited(ex, EDITS["rnn_backward"][7])))
    second = report.checks[3]
    assert not second.passed and "fails: h0" in second.message and "passes: x" in \
        second.message.replace("\n", " ")
    softmax = exercise_source(BY_NAME["softmax_backward"], solution=True)
    crash = softmax.replace("y = cache.y", "y = cache.y[0, 99]")
    report = grade(write(tmp_path, "crash", crash))
    text = report.text()
    assert "IndexError" in text and "line" in text and "Traceback" not in text
    assert (report.score, report.max_score) == (1, 8)
    shape = softmax.replace("return y * (dy -", "return (y * (dy -").replace(
        "keepdims=True))", "keepdims=True)))[0]")
    assert "shape (6,), expected (3, 6)" in grade(write(tmp_path, "shape", shape)).text()
    broken = write(tmp_path, "syntax", "EXERCISE = 'softmax_backward'\ndef f(:\n")
    report = grade(broken)
    assert "does not import" in report.text() and report.max_score == 8
    unknown = write(tmp_path, "unknown", "EXERCISE = 'nope'\n")
    assert "no known EXERCISE" in grade(unknown).text()
    exits = write(tmp_path, "exits", softmax.replace("y = cache.y", "import sys; sys.exit(3)"))
    assert "sys.exit(3)" in grade(exits).text()


def test_relative_paths_keep_the_line_number(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    softmax = exercise_source(BY_NAME["softmax_backward"], solution=True)
    write(tmp_path, "rel", softmax.replace("y = cache.y", "y = cache.y[0, 99]"))
    assert "(line " in grade("rel.py").text()


def test_stubs_hold_no_answer_and_say_what_is_given(tmp_path):
    for ex in EXERCISES:
        stub = start_exercise(ex.name, tmp_path / ex.name).read_text()
        assert "Already done for you:" in stub
        solution = exercise_source(ex, solution=True)
        import inspect
        import textwrap
        for f in ex.functions:
            module = __import__(ex.module, fromlist=["x"])
            region = _region_text(textwrap.dedent(inspect.getsource(getattr(module, f))),
                                  ex.name)
            for line in region:
                code = line.split("#")[0].strip()
                if len(code) > 25:
                    assert code not in stub, f"{ex.name}: the stub gives away {code!r}"
        assert solution != stub
    gn = (tmp_path / "group_norm_backward" / "group_norm_backward.py").read_text()
    assert "mean(dxhat" not in gn and "dxhat.mean" not in gn
    chunk = " ".join((tmp_path / "retention_chunkwise" / "retention_chunkwise.py").read_text()
                     .split())
    assert "RetentionChunkDecays(Gamma, xi, zeta, kappa, s)" in chunk
    assert "calling retention_parallel chunk after chunk" in chunk


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
        out, state, _ = retention_chunkwise(q, k, v, gamma, chunk)
        assert rel_error(out, retention_parallel(q, k, v, gamma)[0]) < 1e-10
        full = retention_chunkwise(q, k, v, gamma, T)[1]
        assert rel_error(state.S, full.S) < 1e-10
    prop()
'''


def test_write_a_property(tmp_path):
    good = grade(write(tmp_path, "good", GOOD_PROPERTY))
    assert good.passed, good.text()
    assert good.max_score == 4 + mistake_count("write_a_property") == 11
    weak = GOOD_PROPERTY.replace("assert rel_error(out, retention_parallel(q, k, v, gamma)[0])"
                                 " < 1e-10", "assert out.shape == v.shape")
    report = grade(write(tmp_path, "weak", weak))
    assert not report.passed and any("would go unnoticed" in c.message for c in report.checks)
    assert report.max_score == good.max_score
    stub = grade(start_exercise("write_a_property", tmp_path))
    assert not stub.passed and "not implemented yet" in stub.text()
    assert stub.max_score == good.max_score


CLASS = {
    "alice.py": None,                                         # the solution, filled in below
    "bob.py": ("da = dh * (1.0 - cache.h ** 2)", "da = dh"),
    "carol.py": ("da = dh * (1.0 - cache.h ** 2)", "da = dh[99]"),
    "dave.py": ("da = dh * (1.0 - cache.h ** 2)", "while True:\n        pass"),
    "erin.py": "EXERCISE = 'softmax_backward'\n",
}


def test_grading_a_class_folder_to_csv_and_json(tmp_path, capsys):
    ex = BY_NAME["rnn_step_backward"]
    folder = tmp_path / "class"
    folder.mkdir()
    for name, change in CLASS.items():
        text = change if isinstance(change, str) else edited(ex, [change] if change else [])
        (folder / name).write_text(text)
    out = tmp_path / "grades.csv"
    files = [str(folder / n) for n in sorted(CLASS)]
    assert main(["grade", *files, "--csv", str(out), "--timeout", "10"]) == 1
    printed = capsys.readouterr().out
    rows = {r["file"].split("/")[-1]: r for r in csv.DictReader(out.open())}
    assert set(rows) == set(CLASS)
    assert rows["alice.py"]["score"] == rows["alice.py"]["max_score"] == "8"
    assert rows["bob.py"]["likely_mistake"] == "da = dh: the tanh derivative is missing"
    assert rows["carol.py"]["first_failing_check"] == "runs without errors"
    assert rows["carol.py"]["score"] == "1"
    assert rows["dave.py"]["first_failing_check"] == "runs without errors"
    assert rows["dave.py"]["max_score"] == "8"
    assert rows["erin.py"]["exercise"] == "softmax_backward"
    assert "stopped after 10 s" in printed and "5 files" in printed
    assert main(["grade", str(folder / "alice.py"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["score"] == 8 and data[0]["passed"]


def test_cli_list_start_grade(tmp_path, capsys):
    assert main(["exercise", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name, _, _ in exercise_list())
    new = tmp_path / "new" / "dir"
    assert main(["exercise", "start", "softmax_backward", "--dir", str(new)]) == 0
    path = new / "softmax_backward.py"
    assert path.exists()
    assert main(["exercise", "start", "softmax_backward", "--dir", str(new)]) == 1
    assert "not overwriting" in capsys.readouterr().err
    assert main(["exercise", "start", "no_such"]) == 1
    assert main(["grade", str(tmp_path / "missing.py")]) == 1
