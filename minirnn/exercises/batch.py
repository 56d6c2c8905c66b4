"""Grade a class: every file in its own process, with a time limit, into a CSV or JSON.

``python -m minirnn grade submissions/*.py --csv grades.csv`` runs
``python -m minirnn.exercises.batch FILE`` once per file. The child prints a report after every
check (a line starting with ``MARK``), so when a submission loops forever or exits the
process, the parent still knows which checks passed and marks the rest as not run. A
submission cannot stop the batch: the parent only reads what the child printed.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from .catalog import BY_NAME, PROPERTY_EXERCISE
from .report import Check, Report

MARK = "@@minirnn-grade-report@@ "
CSV_COLUMNS = ["file", "exercise", "score", "max_score", "first_failing_check", "likely_mistake"]


def _placeholder(path: Path) -> Report:
    """The report of a file whose grading produced nothing: the rubric, nothing passed."""
    from .grader import exercise_of, rubric

    name = exercise_of(path)
    known = name in BY_NAME or name == PROPERTY_EXERCISE
    return Report(name if known else path.stem,
                  rubric(name) if known else [Check("the file imports", 1)], file=str(path))


def grade_file(path: str | Path, timeout: float = 60.0) -> Report:
    """Grade one file in a fresh Python process, stopped after ``timeout`` seconds."""
    path = Path(path)
    cmd = [sys.executable, "-m", "minirnn.exercises.batch", str(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        stdout, why = done.stdout, f"the grading process ended early (exit code {done.returncode})"
    except subprocess.TimeoutExpired as err:
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        why = f"stopped after {timeout:g} s (an endless loop, or very slow code?)"
    reports = [line[len(MARK):] for line in stdout.splitlines() if line.startswith(MARK)]
    report = Report.from_dict(json.loads(reports[-1])) if reports else _placeholder(path)
    if reports and all(c.ran for c in report.checks):
        return report
    running = next((c for c in report.checks if not c.ran), None)
    if running is not None:                          # the check that was running when stopped
        running.ran, running.message = True, why
    report.not_run(why)
    return report


def grade_files(paths, timeout: float = 60.0) -> list[Report]:
    """Grade every file, each in its own process (see ``grade_file``)."""
    return [grade_file(p, timeout) for p in paths]


def write_csv(reports: list[Report], path: str | Path) -> None:
    """One row per file: file, exercise, score, max score, first failing check, mistake."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in reports:
            writer.writerow([r.file, r.exercise, r.score, r.max_score, r.first_failing,
                             r.mistake])


def _child(path: str) -> int:
    """Grade ``path`` here, printing the report after every check (the parent reads them)."""
    from .grader import grade

    def show(report):
        print(MARK + json.dumps(report.to_dict()), flush=True)

    show(grade(path, progress=show))
    return 0


if __name__ == "__main__":                        # pragma: no cover - run as a child process
    sys.exit(_child(sys.argv[1]))
