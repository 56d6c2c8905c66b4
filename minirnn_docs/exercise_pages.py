"""Build-time helper: the part of an exercise page that must match the grader exactly."""

from minirnn.exercises.variants_retention import CHUNKWISE_BUGS

from minirnn.exercises import BY_NAME, PROPERTY_EXERCISE, rubric


def grader_section(name: str) -> str:
    """Markdown: the rubric of exercise ``name`` and the mistakes the grader names."""
    checks = rubric(name)
    lines = [f"The grader runs the same {len(checks)} checks on every file, in this order "
             f"({sum(c.points for c in checks)} points in all; a check that cannot run scores 0):",
             ""]
    lines += [f"{i}. {c.name} ({c.points} point{'s' if c.points > 1 else ''})"
              for i, c in enumerate(checks, 1)]
    if name == PROPERTY_EXERCISE:
        lines += ["", "Each buggy implementation is the correct chunkwise retention with one "
                      "catalogued mistake of the `retention_chunkwise` exercise:", ""]
        lines += [f"- {message} {equation}" for message, equation, _, _ in CHUNKWISE_BUGS]
        return "\n".join(lines)
    ex = BY_NAME[name]
    lines += ["", "When your result is wrong, the report lists which outputs are wrong and "
                  "which are right, says where the first one goes wrong (the time step, chunk, "
                  "row or decoded position), and compares your numbers with those of these "
                  f"{len(ex.mistakes)} known mistakes, naming the one that matches exactly "
                  "(however you wrote it):", ""]
    lines += [f"- {m.message} {m.equation}" for m in ex.mistakes]
    lines += ["", "Otherwise it says whether your result has the wrong sign, is transposed or is "
                  "off by a constant factor, named in the example's sizes (for example "
                  "`0.1667 = 1/T`)."]
    return "\n".join(lines)
