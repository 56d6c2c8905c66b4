"""Every exercise: the stub scores 1 of a fixed total, the library's solution full marks, and
every catalogued mistake, keyed by its id and written two different ways, loses points and is
named from the numbers; a slip that makes only some of a mistake's terms, or leaves some of its
outputs right, is still named. Batch mode grades a class folder in limited child processes
into a CSV and a class report, whatever the submissions do, and cannot be forged."""

import ast
import csv
import inspect
import json
import re
import textwrap

import pytest
from exercise_rewrite import rewritten

from minirnn.cli import main
from minirnn.exercises import (
    BY_NAME,
    EXERCISES,
    exercise_list,
    exercise_source,
    grade,
    mistake_count,
    rubric,
    start_exercise,
)
from minirnn.exercises.catalog import CODE_EXERCISES
from minirnn.exercises.mistakes import CATALOGUE
from minirnn.exercises.stubs import _region_text

NAMES = [e.name for e in CODE_EXERCISES]
CASES = [(e.name, m.id) for e in CODE_EXERCISES for m in e.mistakes]


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def flat(report):
    return report.text().replace("\n" + " " * 15, " ")


def edited(exercise, edits):
    """The solution with ``edits`` made in its code (the module docstring left alone)."""
    return exercise_source(exercise, solution=True, edits=tuple(edits))


@pytest.mark.parametrize("exercise", CODE_EXERCISES, ids=NAMES)
def test_stub_scores_one_and_solution_full_marks(exercise, tmp_path):
    stub = grade(start_exercise(exercise.name, tmp_path))
    total = sum(c.points for c in rubric(exercise.name))
    assert (stub.score, stub.max_score) == (1, total) and "not implemented yet" in stub.text()
    assert all(c.message.startswith("not run") for c in stub.checks[2:])
    solution = grade(write(tmp_path, "solution", exercise_source(exercise, solution=True)))
    assert solution.passed and solution.score == total == 8, solution.text()
    assert "example: " in solution.text()
    assert solution.text().startswith(str(tmp_path / "solution.py") + ": exercise ")


def test_the_catalogue_is_keyed_data():
    assert set(CATALOGUE) == set(BY_NAME)
    for name, mistakes in CATALOGUE.items():
        ids = [m.id for m in mistakes]
        assert len(ids) == len(set(ids)) >= 6, name
        for m in mistakes:
            assert m.edits and all(len(e) == 2 and e[0] != e[1] for e in m.edits), m.id
            assert re.fullmatch(r"\(\w+\.\d+\)", m.equation), m.id


@pytest.mark.parametrize(("name", "key"), CASES, ids=[f"{n}:{k}" for n, k in CASES])
def test_every_mistake_written_two_ways_loses_points_and_is_named(name, key, tmp_path):
    exercise = BY_NAME[name]
    mistake = exercise.mistake(key)
    first = edited(exercise, mistake.edits)
    for j, text in enumerate((first, rewritten(first))):
        assert text != exercise_source(exercise, solution=True)
        report = grade(write(tmp_path, f"m_{j}", text))
        shown = flat(report)
        assert not report.passed and report.score <= 5 and report.max_score == 8, shown
        assert f"Likely mistake [{key}]: {mistake.message}" in shown, f"way {j}:\n{shown}"
        assert "wrong: " in shown and report.mistake_ids[0] == key


PARTIAL = [
    # (exercise, mistake id, which of its edits the student makes, outputs left right)
    ("retention_chunkwise", "xi-off-by-one", (0,), "xi wrong, and the counts with it"),
    ("retention_chunkwise", "state-not-decayed-across-chunks", (1,), "only z undecayed"),
    ("retention_recurrent", "read-before-write", (0, 1), "only S read before it is written"),
    ("gated_retention_recurrent", "cumulative-gate", (0, 1), "S and z, not the count"),
    ("attention_backward", "divided-by-scale", (0,), "only dq"),
]


@pytest.mark.parametrize(("name", "key", "terms", "why"), PARTIAL, ids=[p[3] for p in PARTIAL])
def test_a_slip_covering_some_of_a_mistakes_terms_is_named(name, key, terms, why, tmp_path):
    exercise = BY_NAME[name]
    mistake = exercise.mistake(key)
    report = grade(write(tmp_path, "part", edited(exercise, [mistake.edits[i] for i in terms])))
    assert not report.passed and report.mistake_ids[:1] == [key], flat(report)
    assert "only part of it" in flat(report)
    assert "only part of it" in report.mistake     # the CSV/JSON column does not overclaim


def test_an_output_right_where_the_mistake_breaks_it_still_names_it(tmp_path):
    """Wh untransposed in the carry, but dh0 computed with the transpose (or not)."""
    ex = BY_NAME["rnn_backward"]
    text = edited(ex, [ex.mistake("carry-untransposed-Wh").edits[0],
                       ("dh0 = da_next_WhT", "dh0 = da[:, 0] @ cache.Wh.T")])
    report = grade(write(tmp_path, "carry", text))
    assert report.mistake_ids == ["carry-untransposed-Wh"], flat(report)
    only_carry = edited(ex, ex.mistake("carry-untransposed-Wh").edits[:1])
    report = grade(write(tmp_path, "only", only_carry))
    assert report.mistake_ids == ["carry-untransposed-Wh"], flat(report)


def test_two_slips_in_different_outputs_are_both_named(tmp_path):
    ex = BY_NAME["rnn_step_backward"]
    text = edited(ex, [*ex.mistake("db-mean-over-batch").edits,
                       *ex.mistake("dh_prev-untransposed-Wh").edits])
    report = grade(write(tmp_path, "two", text))
    assert sorted(report.mistake_ids) == ["db-mean-over-batch", "dh_prev-untransposed-Wh"]


def test_the_helpers_are_graded_on_their_own(tmp_path):
    ex = BY_NAME["retention_chunkwise"]
    report = grade(write(tmp_path, "final", edited(ex, ex.mistake("final-count-not-decayed")
                                                   .edits)))
    assert "functions on their own: chunk_decays right; retention_final_state WRONG" in \
        flat(report)
    ex = BY_NAME["group_norm_backward"]
    report = grade(write(tmp_path, "dw", edited(ex, ex.mistake("dw-db-averaged").edits)))
    assert "functions on their own: standardize_backward right; group_norm_backward WRONG" in \
        flat(report)


def test_the_cache_a_forward_stores_is_checked(tmp_path):
    """Right outputs and state, but the states kept for the backward never stored."""
    ex = BY_NAME["retention_recurrent"]
    text = edited(ex, [("S_all[:, :, n], z_all[:, :, n] = S, z", "pass")])
    report = grade(write(tmp_path, "cache", text))
    assert not report.passed and "the backward from your cache: dq" in report.wrong
    assert "out" not in report.wrong.split(", ")


def test_every_input_the_stub_accepts_is_varied(tmp_path):
    softmax = BY_NAME["softmax_backward"]
    report = grade(write(tmp_path, "axis", edited(softmax, softmax.mistake("sum-over-last-axis")
                                                  .edits)))
    assert not report.passed
    gated = BY_NAME["gated_decay_gradient"]
    report = grade(write(tmp_path, "norm", edited(gated, gated.mistake("normalize-ignored")
                                                  .edits)))
    assert not report.passed and report.mistake_ids == ["normalize-ignored"]
    chunk = BY_NAME["retention_chunkwise"]
    report = grade(write(tmp_path, "short", edited(chunk, chunk.mistake("short-chunk-fresh-state")
                                                   .edits)))
    assert not report.passed


def test_localisation_in_the_students_terms(tmp_path):
    ex = BY_NAME["rnn_backward"]
    text = flat(grade(write(tmp_path, "carry", edited(ex, ex.mistake("no-carry").edits))))
    assert "first wrong at time step t = 4 (of 6, counted from 0), walking backward from " \
           "t = 5" in text and "step 5 is right" in text
    ex = BY_NAME["retention_chunkwise"]
    text = flat(grade(write(tmp_path, "cross", edited(ex, ex.mistake("no-cross-decay").edits))))
    assert "first wrong in chunk 1 (rows 3-5); chunk 0 (no state before it) is right" in text
    assert "cross-chunk part" in text
    ex = BY_NAME["kv_cache_step"]
    text = flat(grade(write(tmp_path, "mask", edited(ex, ex.mistake("mask-aligned-to-start")
                                                     .edits))))
    assert "first wrong at position 4 (the first token decoded one at a time" in text
    ex = BY_NAME["rnn_step_backward"]
    text = flat(grade(write(tmp_path, "db", edited(ex, ex.mistake("dh_prev-from-dh").edits))))
    assert "all rows wrong" not in text and "first wrong at" not in text
    text = edited(ex, [('"Wx": cache.x.T @ da', '"Wx": (cache.x.T @ da) * (np.arange(7) != 2)'
                        '[:, None]')])
    assert "grads['Wx']: rows 2 of 7 are wrong" in flat(grade(write(tmp_path, "row", text)))


def test_a_factor_is_named_in_the_example_sizes(tmp_path):
    ex = BY_NAME["softmax_backward"]
    text = grade(write(tmp_path, "half", edited(ex, (("return y * (", "return 0.5 * y * ("),))))
    assert "off by a constant factor of 0.5 = 1/2" in text.text()
    ex = BY_NAME["rnn_step_backward"]
    seven = edited(ex, (("    return dx, dh_prev, grads", "    return dx / 7, dh_prev, grads"),))
    assert "= 1/D (D = 7)" in flat(grade(write(tmp_path, "seventh", seven)))
    ex = BY_NAME["attention_backward"]
    five = edited(ex, (("    return dq, dk, dv", "    return dq, dk, dv * 5"),))
    shown = flat(grade(write(tmp_path, "five", five)))
    assert "= sqrt(d) (d = 25)" in shown and "B (" not in shown.split("sqrt(d)")[1][:40]


def test_every_gradient_is_reported_and_broken_files(tmp_path):
    ex = BY_NAME["rnn_backward"]
    report = grade(write(tmp_path, "b", edited(ex, ex.mistake("dh0-zero").edits)))
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
    report = grade(write(tmp_path, "shape", shape))
    assert "shape (3, 5), expected (2, 3, 5)" in report.text()
    assert all(c.message == "not run: fix the shapes first" for c in report.checks[3:])
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


def _assigned(source):
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store)}


# what each stub's header says is already done for you: every name must be set in the stub
GIVEN = {"rnn_backward": ("h", "da"), "retention_recurrent": ("gamma_S", "Omega", "r", "kappa",
                                                              "S_all", "z_all"),
         "gated_retention_recurrent": ("alpha", "alpha_S", "Omega", "r", "kappa", "S_all",
                                       "z_all", "s_all"),
         "kv_cache_step": ("p", "b", "xs", "state"), "retention_chunkwise": ("Gamma",),
         "lstm_step_backward": ("i", "f", "o", "c_bar"),
         "gru_step_backward": ("r", "z", "h_bar", "h_prev", "H", "Wh_h"),
         "linear_scan_parallel": ("log_decay_ch", "u_ch")}


def test_stubs_hold_no_answer_and_say_what_is_given(tmp_path):
    for ex in CODE_EXERCISES:
        stub = start_exercise(ex.name, tmp_path / ex.name).read_text()
        assert "Already done for you:" in stub
        solution = exercise_source(ex, solution=True)
        module = __import__(ex.module, fromlist=["x"])
        for f in ex.functions:
            region = _region_text(textwrap.dedent(inspect.getsource(getattr(module, f))),
                                  ex.name)
            for line in region:
                code = line.split("#")[0].strip()
                if len(code) > 25:
                    assert code not in stub, f"{ex.name}: the stub gives away {code!r}"
        assert solution != stub
        for name in GIVEN.get(ex.name, ()):
            assert name in _assigned(stub) or re.search(rf"\b{name}\b.*=", stub), \
                f"{ex.name}: the header says {name} is given, the stub does not set it"
            assert re.search(rf"\b{name}\b", " ".join(ex.given.split())), (ex.name, name)
    chunk = " ".join((tmp_path / "retention_chunkwise" / "retention_chunkwise.py").read_text()
                     .split())
    assert "RetentionChunkDecays(Gamma, xi, zeta, kappa, s)" in chunk
    assert "calling retention_parallel chunk after chunk" in chunk


GOOD_PROPERTY = '''
EXERCISE = "write_a_property"
import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from minirnn import rel_error, retention_parallel

def check_chunkwise(retention_chunkwise):
    @settings(max_examples=25, derandomize=True, deadline=None, database=None,
              phases=[Phase.generate])
    @given(seed=st.integers(0, 2**16), T=st.integers(2, 12), chunk=st.integers(1, 5))
    def prop(seed, T, chunk):
        rng = np.random.default_rng(seed)
        q, k = rng.standard_normal((2, 1, 2, T, 4))
        v = rng.standard_normal((1, 2, T, 3))
        gamma = np.array([0.5, 0.9])
        out, state, _ = retention_chunkwise(q, k, v, gamma, chunk)
        want, final, _ = retention_parallel(q, k, v, gamma)
        assert rel_error(out, want) < 1e-10
        assert rel_error(state.S, final.S) < 1e-10 and rel_error(state.s, final.s) < 1e-10
    prop()
'''


def test_write_a_property(tmp_path):
    good = grade(write(tmp_path, "good", GOOD_PROPERTY))
    assert good.passed, good.text()
    assert good.max_score == 4 + mistake_count("write_a_property")
    outputs_only = GOOD_PROPERTY.replace(
        "assert rel_error(state.S, final.S) < 1e-10 and rel_error(state.s, final.s) < 1e-10",
        "pass")
    report = grade(write(tmp_path, "outputs", outputs_only))
    assert not report.passed and report.max_score == good.max_score
    missed = [c.name for c in report.checks if "would go unnoticed" in c.message]
    assert missed == ["catches a bug: the state is handed on between chunks but the last "
                      "chunk's update is not returned"], report.text()
    assert "state-never-compared" in report.mistake_ids, report.text()
    assert "Blind spot [state-never-compared]: your property never compares the returned " \
        "state" in flat(report)
    dividing = GOOD_PROPERTY.replace("chunk=st.integers(1, 5)", "chunk=st.just(1)")
    report = grade(write(tmp_path, "dividing", dividing))
    assert any("shorter than chunk_size" in c.name and not c.passed for c in report.checks)
    assert report.mistake_ids[:1] == ["chunks-divide-T"], report.text()
    flags = GOOD_PROPERTY.replace("want, final, _ = retention_parallel(q, k, v, gamma)",
                                  "want, final, _ = retention_parallel(q, k, v, gamma, "
                                  "normalize=False)")
    report = grade(write(tmp_path, "flags", flags))
    assert "different-flags" in report.mistake_ids, report.text()
    stub = grade(start_exercise("write_a_property", tmp_path))
    assert not stub.passed and "not implemented yet" in stub.text()
    assert stub.max_score == good.max_score


FORGED = {"exercise": "rnn_step_backward", "checks": [
    {"name": n, "points": p, "passed": True, "message": "", "ran": True}
    for n, p in [("the file imports", 1), ("runs without errors", 1),
                 ("returns arrays of the right shapes", 1), ("gradient", 2),
                 ("matches the correct result", 3)]]}

SUBMISSIONS = {
    "alice.py": None,                                         # the solution, filled in below
    "bob.py": ("da = dh * (1.0 - cache.h ** 2)", "da = dh"),
    "carol.py": ("da = dh * (1.0 - cache.h ** 2)", "da = dh[99]"),
    "dave.py": ("da = dh * (1.0 - cache.h ** 2)", "while True:\n        pass"),
    "erin.py": "EXERCISE = 'softmax_backward'\n",
    # forging: print the old report marker, and write a report to every open descriptor
    "frank.py": "EXERCISE = 'rnn_step_backward'\nimport json, os, sys\n"
                f"FAKE = {json.dumps(FORGED)!r}\n"
                "print('@@minirnn-grade-report@@ ' + FAKE)\n"
                "for fd in range(1, 40):\n"
                "    for kind in ('final', 'progress'):\n"
                "        try:\n"
                "            os.write(fd, ('x ' + kind + ' ' + FAKE + '\\n').encode())\n"
                "        except OSError:\n"
                "            pass\n"
                "def rnn_step_backward(dh, cache):\n    raise ValueError('nothing here')\n",
    # handing back the library: a re-export, and a getattr on the module inside the function
    "gina.py": "EXERCISE = 'rnn_step_backward'\nfrom minirnn.rnn import rnn_step_backward\n",
    "hank.py": "EXERCISE = 'rnn_step_backward'\n"
               "def rnn_step_backward(dh, cache):\n    import minirnn\n"
               "    return getattr(minirnn.rnn, 'rnn_step_' + 'backward')(dh, cache)\n",
    # limits: too much memory, a fork, a large file
    "ivan.py": ("da = dh * (1.0 - cache.h ** 2)",
                "da = dh * (1.0 - cache.h ** 2) + 0 * np.ones((3, 2**26)).sum()"),
    "judy.py": ("da = dh * (1.0 - cache.h ** 2)",
                "import os\n    os.fork()\n    da = dh * (1.0 - cache.h ** 2)"),
    "kim.py": ("da = dh * (1.0 - cache.h ** 2)",
               "open('big.bin', 'wb').write(b'x' * 2**25)\n    da = dh * (1.0 - cache.h ** 2)"),
}


def test_grading_a_class_folder_with_limits_and_no_forging(tmp_path, capsys):
    ex = BY_NAME["rnn_step_backward"]
    folder = tmp_path / "class"
    folder.mkdir()
    for name, change in SUBMISSIONS.items():
        text = change if isinstance(change, str) else edited(ex, [change] if change else [])
        (folder / name).write_text(text)
    out, page = tmp_path / "grades.csv", tmp_path / "class.html"
    files = [str(folder / n) for n in sorted(SUBMISSIONS)]
    assert main(["grade", *files, "--csv", str(out), "--report", str(page), "--timeout", "8"]) \
        == 1
    printed = capsys.readouterr().out
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {n[:-3] for n in SUBMISSIONS}
    assert rows["alice"]["score"] == rows["alice"]["max_score"] == "8"
    assert rows["bob"]["likely_mistake"] == "da = dh: the tanh derivative is missing"
    assert rows["bob"]["mistake_ids"] == "no-tanh-derivative" and rows["bob"]["wrong_outputs"]
    assert rows["carol"]["first_failing_check"] == "runs without errors"
    assert rows["carol"]["score"] == "1"
    assert rows["dave"]["first_failing_check"] == "runs without errors"
    assert rows["dave"]["max_score"] == "8"
    assert rows["erin"]["exercise"] == "softmax_backward"
    assert rows["frank"]["score"] == "1"                              # it imports; nothing more
    assert rows["gina"]["score"] == rows["hank"]["score"] == "1"
    assert rows["gina"]["mistake_ids"] == "reexport"
    for name in ("ivan", "judy", "kim"):
        assert rows[name]["score"] == "1" and rows[name]["first_failing_check"] == \
            "runs without errors", rows[name]
    assert "stopped after 8" in printed and "11 files" in printed
    for line in ("the code asked for more memory than a submission may use (1024 MB",
                 "a submission may not start processes",
                 "the code wrote a file larger than a submission may write (16 MB)",
                 "hands back minirnn's own implementation: minirnn.rnn.rnn_step_backward ran"):
        assert line in printed.replace("\n" + " " * 15, " "), line
    for name in SUBMISSIONS:                        # every report starts with its file name
        assert re.search(rf"^{re.escape(str(folder / name))}: exercise", printed, re.M), name
    text = page.read_text()
    assert "<h2>rnn_step_backward</h2>" in text and "no-tanh-derivative" in text
    assert main(["grade", str(folder / "alice.py"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["score"] == 8 and data[0]["passed"] and data[0]["student"] == "alice"
    assert not list(folder.glob("*.bin")) and not (tmp_path / "big.bin").exists()


def test_class_report_markdown():
    from minirnn.exercises.classreport import markdown, sample_class

    reports = sample_class(("softmax_backward",), students=5)
    text = markdown(reports)
    assert "| softmax_backward | 5 | 2 | " in text and "Most common mistakes:" in text
    assert "(A.2)" in text and "*Hint: " in text


def test_the_teacher_page_states_the_defaults():
    from pathlib import Path

    from minirnn.exercises.batch import DEFAULT_FILE_MB, DEFAULT_MEMORY_MB

    page = " ".join((Path(__file__).parents[1] / "docs/exercises/index.md").read_text().split())
    assert f"`--memory`, {DEFAULT_MEMORY_MB} MB" in page and f"{DEFAULT_FILE_MB} MB" in page
    assert "Not a security sandbox" in page


def test_cli_list_start_grade(tmp_path, capsys):
    assert main(["exercise", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name, _, _ in exercise_list())
    assert len(exercise_list()) == len(EXERCISES) == 18
    new = tmp_path / "new" / "dir"
    assert main(["exercise", "start", "softmax_backward", "--dir", str(new)]) == 0
    path = new / "softmax_backward.py"
    assert path.exists()
    assert main(["exercise", "start", "softmax_backward", "--dir", str(new)]) == 1
    assert "not overwriting" in capsys.readouterr().err
    assert main(["exercise", "start", "no_such"]) == 1
    assert main(["grade", str(tmp_path / "missing.py")]) == 1


def test_a_property_that_fails_on_a_bug_in_any_way_has_caught_it():
    """A property that passes the correct code and raises on a buggy one has caught the bug,
    whether by an assertion or by a crash (the buggy code may hand back a state of None);
    SystemExit and KeyboardInterrupt are not a property failing."""
    from minirnn.exercises.property_exercise import _caught

    class Group(Exception):                       # like ExceptionGroup (Python 3.11+)
        def __init__(self, *inner):
            super().__init__("group")
            self.exceptions = inner

    assert _caught(AssertionError("x"))
    assert _caught(Group(AssertionError("x"), AttributeError("S")))
    assert _caught(AttributeError("'NoneType' object has no attribute 'S'"))
    assert not _caught(SystemExit(0))


def test_a_property_is_graded_the_same_every_time(tmp_path):
    """Fixed seeds: a property that draws few examples gets the same score on every run."""
    few = GOOD_PROPERTY.replace("max_examples=25, derandomize=True,", "max_examples=3,")
    scores = {grade(write(tmp_path, f"few{i}", few)).score for i in range(3)}
    assert len(scores) == 1, scores


@pytest.mark.parametrize(("name", "edit", "says"), [
    ("rnn_step_backward", ('"Wx": cache.x.T @ da', '"Wx": da.T @ cache.x'), "transposed?"),
    ("retention_chunkwise", ("for start in range(0, q.shape[2], chunk_size):",
                             "for start in range(0, q.shape[2] - chunk_size + 1, chunk_size):"),
     "expected 7 (T): the short last chunk"),
], ids=["transposed", "last-chunk-dropped"])
def test_a_shape_failure_is_located(name, edit, says, tmp_path):
    report = grade(write(tmp_path, "shape", edited(BY_NAME[name], [edit])))
    assert says in report.location and says in flat(report), flat(report)


def test_a_near_miss_is_not_named(tmp_path):
    """dx from dh (only dx wrong) is its own mistake, never 'the tanh derivative is missing',
    whose numbers would also break the gradients the student got right."""
    ex = BY_NAME["rnn_step_backward"]
    report = grade(write(tmp_path, "dx", edited(ex, ex.mistake("dx-from-dh").edits)))
    assert report.mistake_ids == ["dx-from-dh"], flat(report)


BLIND = [
    ("compares-with-itself", "want, final, _ = retention_parallel(q, k, v, gamma)",
     "want, final, _ = retention_chunkwise(q, k, v, gamma, chunk)"),
    ("compares-with-itself",                    # the parallel form computed, never compared
     "assert rel_error(out, want) < 1e-10\n        assert rel_error(state.S, final.S) < 1e-10 "
     "and rel_error(state.s, final.s) < 1e-10",
     "mine, mine_final, _ = retention_chunkwise(q, k, v, gamma, T)\n"
     "        assert rel_error(out, mine) < 1e-10\n"
     "        assert rel_error(state.S, mine_final.S) < 1e-10"),
    ("single-chunk", "retention_chunkwise(q, k, v, gamma, chunk)",
     "retention_chunkwise(q, k, v, gamma, T)"),
    ("gamma-not-below-1", "gamma = np.array([0.5, 0.9])", "gamma = np.ones(2)"),
    ("crashes", "assert rel_error(out, want) < 1e-10", "assert out.size == state.size"),
]


@pytest.mark.parametrize(("key", "old", "new"), BLIND,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BLIND)])
def test_the_blind_spot_of_a_property_is_named(key, old, new, tmp_path):
    from minirnn.exercises.grader import load_student
    from minirnn.exercises.property_exercise import blind_spots

    assert old in GOOD_PROPERTY
    module, _ = load_student(write(tmp_path, "blind", GOOD_PROPERTY.replace(old, new)))
    spots = blind_spots(module, module.check_chunkwise)
    assert [k for k, _ in spots][:1] == [key], spots
