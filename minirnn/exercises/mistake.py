"""A known mistake: what the student probably did, and the numbers it produces.

A mistake is recognised from the student's *numbers*, never from their source text: each
catalogued mistake carries a small function that computes, from a test case, what the outputs
would be with that mistake (an independent implementation with one thing done wrong). However a
student writes the same mistake, the numbers are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    message: str          # what the student probably did
    equation: str         # the equation it breaks, e.g. "(RNN.3)"
    hint: str             # a question that points at the fix without giving it away
    outputs: Callable     # case -> {output name: array} with the mistake made

    def describe(self) -> str:
        return f"{self.message} {self.equation}. Hint: {self.hint}"
