"""Summarise a finished ``mutmut run`` as a dated Markdown report (see CONTRIBUTING.md).

Reads mutmut's result files under ``mutants/``, sorts every surviving mutant into

* **equivalent**: a rule below proves it computes exactly what the original computes, so no
  test can kill it (each rule says why);
* **message only**: it changes only the text of an error message or an axis letter shown in
  one; behaviour is unchanged, and tests pin the parts of messages that matter (the function
  and argument names), not every word;
* **survived**: a real gap in the tests.

The mutation score is killed / (all - equivalent). Message-only mutants count against it.

Usage: ``python mutation/report.py [--out mutation/report-YYYY-MM-DD.md]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

FILES = ["rnn.py", "attention.py", "retention.py", "msr.py", "layers.py"]

# rule name -> (test on (removed line, added line, file), justification)
EQUIVALENT = {
    "einsum labels renamed": (
        lambda a, b, f: "einsum(" in a and a.lower() == b.lower() and a != b,
        "`np.einsum` subscripts upper-cased consistently: renaming every label of a "
        "contraction gives the same contraction."),
    "einsum optimize flag": (
        lambda a, b, f: "einsum(" in a and _no_optimize(a) == _no_optimize(b),
        "`optimize=False`, `None` or left out evaluates the same einsum without path "
        "optimisation: the same sums, equal to rounding (1e-15), only slower."),
    "axis -2 written as 2 on 4-D arrays": (
        lambda a, b, f: f in ("retention.py", "attention.py", "msr.py")
        and (a.replace("-1, -2)", "-1, +2)") == b or a.replace("shape[-2", "shape[+2") == b),
        "every array these lines index is 4-D ((B, h, T, .) in attention and retention, "
        "(B, T, h, dv) for the group-norm output in msr.py): axis 2 is axis -2."),
    "negative size in reshape": (
        lambda a, b, f: "reshape(" in a and b in (a.replace("reshape(-1", "reshape(-2", 1),
                                                  a.replace(", -1)", ", -2)", 1)),
        "NumPy treats any negative size in `reshape` as 'infer this axis', like -1."),
    "dividing by a sign": (
        lambda a, b, f: a.replace("* np.sign(", "/ np.sign(") == b,
        "a sign is +1 or -1 (or 0 where the other factor is masked out): multiplying and "
        "dividing by it are the same."),
    "copy flag of astype": (
        lambda a, b, f: "copy=False" in a and b in {a.replace("copy=False", other, 1)
                                                    for other in ("copy=None", "copy=True", "")},
        "`astype(dtype, copy=False)` only avoids a copy when the dtype already matches; the "
        "result is never written to afterwards (the tests check that inputs are not mutated), "
        "so a copy or no copy gives the same numbers."),
    "zeros_like(None)": (
        lambda a, b, f: re.sub(r"zeros_like\([^)]*\)", "zeros_like(None)", a) == b
        and "zeros_like(None)" not in a,
        "`np.zeros_like(None)` is the scalar 0, which broadcasts: adding it is adding zeros."),
    "the clamp's kink": (
        lambda a, b, f: a.replace("np.abs(r) > 1.0", "np.abs(r) >= 1.0") == b,
        "the normaliser max(|r|, 1) has a kink at |r| = 1 exactly, where both one-sided "
        "derivatives are valid choices; random inputs never land on it."),
}


def _no_optimize(line: str) -> str:
    return re.sub(r",\s*optimize=\w+", "", line).replace(", )", ")")


MESSAGE = re.compile(r'(raise |\.fail\(|Shapes\(|check_int\(|_upstream\(|_check_\w+\(|'
                     r'\.array\(|\.bind\(|\.params\(|_key_width\(|_head_width\(|f"|")')


def changed_lines(diff: str) -> tuple[str, str]:
    removed = [line[1:].strip() for line in diff.splitlines()
               if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff.splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    return " ".join(removed), " ".join(added)


def only_strings_changed(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ only inside string literals (or a string -> None)."""
    strip = re.compile(r'f?"(?:[^"\\]|\\.)*"|None')
    return strip.sub('""', a) == strip.sub('""', b) and MESSAGE.search(a) is not None


def classify(name: str, exit_code, path: Path) -> tuple[str, str, str]:
    status = status_by_exit_code[exit_code]
    if status != "survived":
        return status, "", ""
    diff = get_diff_for_mutant(name, path=path)
    a, b = changed_lines(diff)
    for rule, (test, _) in EQUIVALENT.items():
        if test(a, b, path.name):
            return "equivalent", rule, diff
    if only_strings_changed(a, b):
        return "message only", "", diff
    return "survived", "", diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    today = datetime.date.today().isoformat()
    parser.add_argument("--out", type=Path, default=Path(f"mutation/report-{today}.md"))
    args = parser.parse_args()

    counts: dict[str, Counter] = defaultdict(Counter)
    equivalent: dict[str, list[str]] = defaultdict(list)
    messages: list[str] = []
    survivors: list[str] = []
    for file in FILES:
        path = Path("minirnn") / file
        meta = json.loads((Path("mutants") / f"{path}.meta").read_text())
        for name, code in sorted(meta["exit_code_by_key"].items()):
            status, rule, diff = classify(name, code, path)
            counts[file][status] += 1
            if status == "equivalent":
                equivalent[rule].append(diff)
            elif status == "message only":
                messages.append(diff)
            elif status == "survived":
                survivors.append(diff)

    total = Counter()
    for c in counts.values():
        total.update(c)
    lines = [f"# Mutation testing report, {today}", "",
             "Produced by `python mutation/report.py` after `MINIRNN_HYPOTHESIS_PROFILE=mutation "
             "python -m mutmut run` (mutmut 3.8.1; see CONTRIBUTING.md).", ""]
    header = ["file", "mutants", "killed", "equivalent", "message only", "survived", "other",
              "score"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for file, c in [*counts.items(), ("**all**", total)]:
        n = sum(c.values())
        other = n - sum(c[k] for k in ("killed", "equivalent", "message only", "survived"))
        score = c["killed"] / max(n - c["equivalent"], 1)
        lines.append(f"| {file} | {n} | {c['killed']} | {c['equivalent']} | "
                     f"{c['message only']} | {c['survived']} | {other} | {score:.1%} |")
    score = total["killed"] / max(sum(total.values()) - total["equivalent"], 1)
    lines += ["", f"**Mutation score: {score:.1%}** (killed / (all - equivalent)); "
              "'other' are timeouts and mutants no test reaches.", "",
              "## Equivalent mutants", ""]
    for rule, diffs in equivalent.items():
        lines += [f"### {rule} ({len(diffs)})", "", EQUIVALENT[rule][1], "", "```diff"]
        for diff in diffs:
            lines += [row for row in _body(diff) if row[:1] in "+-"]
        lines += ["```", ""]
    lines += [f"## Message-only survivors ({len(messages)})", "",
              "They change the text of an error message (a word, the case of an axis letter, "
              "a function name the tests do not read). Two examples:", ""]
    for diff in messages[:2]:
        lines += ["```diff", *_body(diff), "```", ""]
    lines += [f"## Survivors ({len(survivors)})", ""]
    for diff in survivors:
        lines += ["```diff", *_body(diff), "```", ""]
    args.out.write_text("\n".join(lines))
    print(f"{args.out}: score {score:.1%}; {dict(total)}")


def _body(diff: str) -> list[str]:
    """The changed lines of a diff with one line of context."""
    rows = diff.splitlines()
    keep = set()
    for i, row in enumerate(rows):
        if row[:1] in "+-" and not row.startswith(("+++", "---")):
            keep.update({i - 1, i, i + 1})
    return [rows[i] for i in sorted(keep) if 0 <= i < len(rows) and not
            rows[i].startswith(("+++", "---", "@@"))]


if __name__ == "__main__":
    main()
