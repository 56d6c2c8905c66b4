"""``python -m minirnn tour``: a guided check that every mechanism is right.

Each part prints a table. Part (a) gradchecks every implemented forward/backward pair on
small random float64 data against finite differences (see :mod:`minirnn.gradcheck`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from .attention import (
    attention_backward,
    attention_forward,
    init_mha_params,
    mha_backward,
    mha_forward,
    mha_step,
    softmax_backward,
    softmax_forward,
)
from .gradcheck import check_gradients, rel_error
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
    yield GradcheckCase("softmax", softmax_forward, softmax_backward,
                        {"x": rng.standard_normal((B, T))}, None)
    h, d = 2, 3
    qkv = {"q": rng.standard_normal((B, h, T, d)), "k": rng.standard_normal((B, h, T, d)),
           "v": rng.standard_normal((B, h, T, d))}
    yield GradcheckCase("attention (causal)", attention_forward, attention_backward, qkv, None)
    yield GradcheckCase("attention (full)", lambda q, k, v: attention_forward(q, k, v, False),
                        attention_backward, qkv, None)
    mha_params = init_mha_params(6, 2, seed=seed)
    mha_params.update({k: 0.1 * rng.standard_normal(6) for k in ("bq", "bv", "bo")})
    yield GradcheckCase("multi-head attention", lambda x, params: mha_forward(x, params, 2),
                        mha_backward, {"x": rng.standard_normal((B, T, 6))}, mha_params)


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


def agreement_rows(seed: int = 0) -> list[list[str]]:
    """Part (b): one function computed two ways, and how far apart the results are."""
    rng = np.random.default_rng(seed)
    B, T, D, n_heads = 2, 12, 8, 2
    params = init_mha_params(D, n_heads, seed=seed)
    x = rng.standard_normal((B, T, D))
    full, _ = mha_forward(x, params, n_heads)
    prompt, cache = mha_step(x[:, :4], params, n_heads)
    steps = [mha_step(x[:, t], params, n_heads, cache)[0] for t in range(4, T)]
    decoded = np.concatenate([prompt, np.stack(steps, axis=1)], axis=1)
    return [["attention: KV-cache decoding (prompt of 4, then 1 token at a time)",
             "full causal forward", f"{rel_error(decoded, full):.1e}"]]


def run_tour(seed: int = 0, out: Callable[[str], None] = print) -> bool:
    """Run every part of the tour, printing as it goes; return True when all checks pass."""
    out("minirnn tour: every mechanism, checked by the numbers\n")
    out(f"(a) Gradient checks: hand-written backward vs central differences (float64, "
        f"pass if < {GRADCHECK_TOL:g})\n")
    text, ok = gradcheck_table(seed)
    out(text)
    out("\n(b) The same function computed two ways (float64, max relative difference)\n")
    out(table(["computed as", "compared with", "rel diff"], agreement_rows(seed)))
    out("\nAll checks passed." if ok else "\nSOME CHECKS FAILED.")
    return ok
