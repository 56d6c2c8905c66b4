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
from .msr import init_msr_params, msr_backward, msr_forward
from .retention import (
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_parallel,
    retention_parallel_backward,
    retention_recurrent,
    retention_recurrent_backward,
)
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
# Two ways of computing the same float64 function differ only in the order of sums: about
# 1e-16 relative. 1e-10 leaves room for long sums and still catches any real mistake.
AGREE_TOL = 1e-10


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
    gamma = np.array([0.9, 0.5])
    yield GradcheckCase("retention (parallel)",
                        lambda q, k, v: retention_parallel(q, k, v, gamma),
                        retention_parallel_backward, qkv, None)
    yield GradcheckCase("retention (recurrent)",
                        lambda q, k, v: retention_recurrent(q, k, v, gamma)[::2],
                        lambda d, c: retention_recurrent_backward(d, c)[:3], qkv, None)
    yield GradcheckCase("retention (chunkwise)",
                        lambda q, k, v: retention_chunkwise(q, k, v, gamma, 2)[::2],
                        lambda d, c: retention_chunkwise_backward(d, c)[:3], qkv, None)
    msr_params = init_msr_params(4, 2, 3, seed=seed)
    x_msr = rng.standard_normal((B, T, 4))
    for form in ("parallel", "recurrent", "chunkwise"):
        yield GradcheckCase(f"multi-scale retention ({form})",
                            lambda x, params, form=form: msr_forward(x, params, 2, form,
                                                                     chunk_size=2)[::2],
                            msr_backward, {"x": x_msr}, msr_params)
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


def kv_cache_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): attention decoded with a KV cache against the full causal forward."""
    rng = np.random.default_rng(seed)
    B, T, D, n_heads = 2, 12, 8, 2
    params = init_mha_params(D, n_heads, seed=seed)
    x = rng.standard_normal((B, T, D))
    full, _ = mha_forward(x, params, n_heads)
    prompt, cache = mha_step(x[:, :4], params, n_heads)
    steps = [mha_step(x[:, t], params, n_heads, cache)[0] for t in range(4, T)]
    decoded = np.concatenate([prompt, np.stack(steps, axis=1)], axis=1)
    err = rel_error(decoded, full)
    return table(["computed as", "compared with", "rel diff", "result"],
                 [["KV cache: prompt of 4, then 1 by 1", "full causal forward", f"{err:.1e}",
                   "pass" if err <= AGREE_TOL else "FAIL"]]), err <= AGREE_TOL


def retention_forms_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): the three forms of retention, outputs and gradients, on one random example."""
    rng = np.random.default_rng(seed)
    B, h, T, d, dv = 2, 3, 50, 8, 6
    q, k = rng.standard_normal((2, B, h, T, d))
    v = rng.standard_normal((B, h, T, dv))
    gamma = 1 - 2.0 ** (-5 - np.arange(h))          # the paper's decays 1 - 2^(-5-i)
    dout = rng.standard_normal((B, h, T, dv))
    rows, all_ok = [], True
    for normalize in (False, True):
        par, pc = retention_parallel(q, k, v, gamma, normalize)
        ref = (par, *retention_parallel_backward(dout, pc))
        rec, _, rc = retention_recurrent(q, k, v, gamma, normalize=normalize)
        forms = [("recurrent", (rec, *retention_recurrent_backward(dout, rc)[:3]))]
        for chunk in (1, 7, 16, 64):
            out, _, cc = retention_chunkwise(q, k, v, gamma, chunk, normalize=normalize)
            forms.append((f"chunkwise, chunk {chunk}",
                          (out, *retention_chunkwise_backward(dout, cc)[:3])))
        for name, got in forms:
            errs = [rel_error(a, b) for a, b in zip(got, ref)]
            ok = max(errs) <= AGREE_TOL
            all_ok &= ok
            rows.append([name, "on" if normalize else "off"] + [f"{e:.1e}" for e in errs]
                        + ["pass" if ok else "FAIL"])
    header = ["form vs parallel", "normalize", "out", "dq", "dk", "dv", "result"]
    return table(header, rows), all_ok


def msr_forms_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): the whole multi-scale retention layer (group norm eps = 1e-5) in each form."""
    rng = np.random.default_rng(seed)
    params = init_msr_params(16, 4, 8, seed=seed)
    x = rng.standard_normal((2, 50, 16))
    dy = rng.standard_normal(x.shape)
    y_ref, _, cache = msr_forward(x, params, 4)
    dx_ref, g_ref = msr_backward(dy, cache)
    rows, all_ok = [], True
    for form, chunk in (("recurrent", None), ("chunkwise", 7), ("chunkwise", 16)):
        y, _, cache = msr_forward(x, params, 4, form, chunk_size=chunk)
        dx, grads = msr_backward(dy, cache)
        errs = [rel_error(y, y_ref), rel_error(dx, dx_ref),
                max(rel_error(grads[key], g_ref[key]) for key in params)]
        ok = max(errs) <= AGREE_TOL
        all_ok &= ok
        rows.append([form + (f", chunk {chunk}" if chunk else ""), *(f"{e:.1e}" for e in errs),
                     "pass" if ok else "FAIL"])
    return table(["MSR layer vs parallel", "out", "dx", "d(params)", "result"], rows), all_ok


def run_tour(seed: int = 0, out: Callable[[str], None] = print) -> bool:
    """Run every part of the tour, printing as it goes; return True when all checks pass."""
    out("minirnn tour: every mechanism, checked by the numbers\n")
    out(f"(a) Gradient checks: hand-written backward vs central differences\n"
        f"    (float64, pass if < {GRADCHECK_TOL:g})\n")
    text, ok = gradcheck_table(seed)
    out(text)
    out(f"\n(b) Retention, one function three ways: max relative difference from the\n"
        f"    parallel form (float64, B=2, h=3, T=50, gamma_i = 1 - 2^(-5-i); chunks of 7\n"
        f"    and 16 leave a shorter last chunk; pass if <= {AGREE_TOL:g})\n")
    text, forms_ok = retention_forms_table(seed)
    out(text)
    out("\n    The whole multi-scale retention layer (h=4, T=50, group norm eps = 1e-5)\n")
    text, msr_ok = msr_forms_table(seed)
    out(text)
    out("\n    Attention, computed two ways (float64, max relative difference)\n")
    text, cache_ok = kv_cache_table(seed)
    out(text)
    ok = ok and forms_ok and msr_ok and cache_ok
    out("\nAll checks passed." if ok else "\nSOME CHECKS FAILED.")
    return ok
