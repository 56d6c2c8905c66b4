"""Build-time helper: the part of an exercise page that must match the grader exactly."""

from minirnn.exercises import BY_NAME


def grader_section(name: str) -> str:
    """Markdown: what the grader checks for exercise ``name`` and the mistakes it recognises."""
    ex = BY_NAME[name]
    checks = ["the file imports, and the functions run on three random examples without "
              "raising", "every returned array has the right shape and is finite"]
    if ex.gradcheck is not None:
        checks.append("the gradient matches central differences of the library's forward "
                      "(float64, relative error below 1e-7)")
    checks.append("every output matches the solution to a relative 1e-8 (for forward "
                  "exercises: the same numbers as the parallel form or the full forward)")
    lines = ["The grader checks, in order:", ""] + [f"{i}. {c}" for i, c in enumerate(checks, 1)]
    lines += ["", "When the last check fails it compares your numbers with those of these known "
                  "mistakes and names the one that matches:", ""]
    lines += [f"- {m.message}" for m in ex.mistakes]
    lines += ["", "and otherwise says whether your result has the wrong sign, is transposed or "
                  "is off by a constant factor."]
    return "\n".join(lines)
