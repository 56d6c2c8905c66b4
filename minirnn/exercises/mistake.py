"""A known mistake: one keyed record, with the slip itself as an edit of the solution.

A mistake is recognised from the student's *numbers*, never from their source text. Its one
representation is ``edits``: the ``(old, new)`` replacements that turn the library's solution
into the mistaken one, the way a student would write it. The grader runs the edited solution
on its test cases to get the mistake's numbers; the tests write the same edits to a file and
grade it. An edit is one term of the slip: a student who makes only some of them (the wrong
decay in ``S`` but not in ``z``) is still matched, term by term (``grader._candidates``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    """One catalogued mistake.

    Attributes
    ----------
    id : str
        Key, unique within its exercise; tests and reports refer to a mistake by it.
    equation : str
        The equation the mistake breaks, e.g. ``"(RNN.3)"``.
    message : str
        What the student probably did.
    hint : str
        A question that points at the fix without giving it away.
    edits : tuple of (str, str)
        The slip: each ``old`` occurs once in the solution's code and becomes ``new``.
    """

    id: str
    equation: str
    message: str
    hint: str
    edits: tuple

    def describe(self) -> str:
        return f"{self.message} {self.equation}. Hint: {self.hint}"
