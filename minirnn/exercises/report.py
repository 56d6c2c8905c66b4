"""A grading report with a fixed rubric: the same checks, order and points for every file."""

from __future__ import annotations

import textwrap
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

LIMITS: dict = {}     # the caps of a grading child (batch._child), to explain what hit them


def describe(err: BaseException, path: str) -> str:
    """A student's error in one line, with the line of their file where it happened (the path
    may be relative: it is compared with the traceback's after resolving both)."""
    here = Path(path).resolve()
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if Path(f.filename).resolve() == here]
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    if isinstance(err, NotImplementedError):
        return f"not implemented yet{where}"
    if isinstance(err, SystemExit):
        return f"the code called sys.exit({err.code}){where}"
    if isinstance(err, MemoryError) and LIMITS:
        return f"MemoryError{where}: the code asked for more memory than a submission may use " \
               f"({LIMITS['memory']} MB, `--memory`)"
    if isinstance(err, OSError) and err.errno == 27 and LIMITS:          # EFBIG
        return f"OSError{where}: the code wrote a file larger than a submission may write " \
               f"({LIMITS['file_mb']} MB)"
    if isinstance(err, PermissionError) and "start processes" in str(err):
        return f"PermissionError{where}: {err}"
    if isinstance(err, BlockingIOError) and LIMITS:
        return f"{type(err).__name__}{where}: a submission may not start processes or threads"
    return f"{type(err).__name__}: {err}{where}"


@dataclass
class Check:
    name: str
    points: int
    passed: bool = False
    message: str = ""
    ran: bool = False


@dataclass
class Report:
    exercise: str
    checks: list
    sizes: dict = field(default_factory=dict)
    file: str = ""
    mistake: str = ""                    # the likely mistake, when one was named
    location: str = ""                   # the mistake's id and where the first wrong value is
    wrong: str = ""                      # the outputs that do not match
    mistake_ids: list = field(default_factory=list)   # ids of the named mistakes

    @property
    def student(self) -> str:
        """The student, from the file name (``alice.py``, ``alice_rnn_backward.py``)."""
        stem = Path(self.file).stem
        return stem[:-len(self.exercise) - 1] if stem.endswith("_" + self.exercise) and \
            len(stem) > len(self.exercise) + 1 else stem

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def score(self) -> int:
        return sum(c.points for c in self.checks if c.passed)

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def first_failing(self) -> str:
        return next((c.name for c in self.checks if not c.passed), "")

    def not_run(self, reason: str) -> None:
        """Mark every check that has not run yet as failed because of ``reason``."""
        for check in self.checks:
            if not check.ran:
                check.message = f"not run: {reason}"

    def text(self) -> str:
        lines = [f"{self.file or '(no file)'}: exercise {self.exercise}"]
        if self.sizes:
            lines += textwrap.wrap("example: " + ", ".join(f"{k} = {v}"
                                                           for k, v in self.sizes.items()),
                                   78, initial_indent="  ", subsequent_indent="    ")
        for c in self.checks:
            mark = "pass" if c.passed else "FAIL"
            lines.append(f"  [{mark}] {c.points if c.passed else 0}/{c.points}  {c.name}")
            for line in c.message.splitlines():
                lines += textwrap.wrap(line, 78, initial_indent=" " * 13,
                                       subsequent_indent=" " * 15)
        lines.append(f"Score: {self.score}/{self.max_score}"
                     + ("  - well done!" if self.passed else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {**asdict(self), "student": self.student, "score": self.score,
                "max_score": self.max_score,
                "passed": self.passed, "first_failing": self.first_failing}

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls(data["exercise"], [Check(**c) for c in data["checks"]], data.get("sizes", {}),
                   data.get("file", ""), data.get("mistake", ""), data.get("location", ""),
                   data.get("wrong", ""), list(data.get("mistake_ids", [])))
