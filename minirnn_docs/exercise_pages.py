"""Build-time helper: the part of an exercise page that must match the grader exactly."""

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
                      "catalogued mistake made (the `retention_chunkwise` exercise's, and one "
                      "that shows only in the returned state):", ""]
        lines += [f"- `{m.id}`: {m.message} {m.equation}" for m in BY_NAME[name].mistakes]
        return "\n".join(lines)
    ex = BY_NAME[name]
    lines += ["", "Every output is compared on three cases that vary every input the function "
                  "accepts, including every field of a returned state"
                  + (" and the gradients the library's backward computes from the cache your "
                     "forward stores" if any("cache" in k for k in _output_names(ex)) else "")
                  + (", and the helper functions on their own" if ex.helpers else "") + ".",
              "", "When your result is wrong, the report lists which outputs are wrong and "
                  "which are right, says where the first one goes wrong (the time step, chunk, "
                  "row or decoded position), and compares your numbers with those of these "
                  f"{len(ex.mistakes)} known mistakes, output by output and term by term, "
                  "naming the one that matches (however you wrote it, and even if you made "
                  "only part of it):", ""]
    lines += [f"- `{m.id}`: {m.message} {m.equation}" for m in ex.mistakes]
    lines += ["", "Otherwise it says whether your result has the wrong sign, is transposed or is "
                  "off by a constant factor, named in the example's sizes (for example "
                  "`0.1667 = 1/T`)."]
    return "\n".join(lines)


def _output_names(ex) -> list[str]:
    from minirnn.exercises.grader import _cases, _outputs

    module = __import__(ex.module, fromlist=["x"])
    return list(_outputs(ex, module, _cases(ex.name, 0)[0]))


def class_report_section() -> str:
    """Markdown: the class report of a sample class made from the catalogue, graded now."""
    from minirnn.exercises.classreport import markdown, sample_class

    return markdown(sample_class())
