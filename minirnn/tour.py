"""``python -m minirnn tour``: a guided check that every mechanism is right.

Each part prints a table. Part (a) gradchecks every implemented forward/backward pair on
small random float64 data against finite differences (see :mod:`minirnn.gradcheck`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from .gradcheck import check_gradients
from .rnn import (
    init_rnn_params,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

# float64 central differences with eps = 1e-6 agree with a correct backward to about 1e-9;
# a wrong backward gives errors of order 1e-2 or more. 1e-7 separates the two with room to spare.
GRADCHECK_TOL = 1e-7


class GradcheckCase(NamedTuple):
    mechanism: str
    forward: Callable
    backward: Callable
    inputs: dict
    params: dict | None


def gradcheck_cases(seed: int = 0) -> Iterator[GradcheckCase]:
    """The forward/backward pairs the tour checks, each on a small random example."""
    rng = np.random.default_rng(seed)
    B, T, D, H = 2, 5, 3, 4
    params = init_rnn_params(D, H, seed=seed)
    yield GradcheckCase("rnn step", rnn_step_forward, rnn_step_backward,
                        {"x": rng.standard_normal((B, D)), "h_prev": rng.standard_normal((B, H))},
                        params)
    yield GradcheckCase("rnn sequence (BPTT)", rnn_forward, rnn_backward,
                        {"x": rng.standard_normal((B, T, D)), "h0": rng.standard_normal((B, H))},
                        params)


def table(header: list[str], rows: list[list[str]]) -> str:
    """Format rows as a plain-text table that fits an 80-column terminal."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), line] + [fmt.format(*map(str, r)) for r in rows])


def gradcheck_table(seed: int = 0) -> tuple[str, bool]:
    """Part (a): the gradcheck table and whether every row passed."""
    rows, ok = [], True
    for case in gradcheck_cases(seed):
        report = check_gradients(case.forward, case.backward, case.inputs, case.params, seed=seed)
        for name, err in report.items():
            passed = err < GRADCHECK_TOL
            ok &= passed
            rows.append([case.mechanism, name, f"{err:.2e}", "pass" if passed else "FAIL"])
    return table(["mechanism", "input/parameter", "max rel error", "result"], rows), ok


def run_tour(seed: int = 0, out: Callable[[str], None] = print) -> bool:
    """Run every part of the tour, printing as it goes; return True when all checks pass."""
    out("minirnn tour: every mechanism, checked by the numbers\n")
    out(f"(a) Gradient checks: hand-written backward vs central differences (float64, "
        f"pass if < {GRADCHECK_TOL:g})\n")
    text, ok = gradcheck_table(seed)
    out(text)
    out("\nAll checks passed." if ok else "\nSOME CHECKS FAILED.")
    return ok
