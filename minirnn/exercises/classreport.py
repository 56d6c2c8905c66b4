"""A class report: what a teacher reads before the next lecture.

Per exercise: how many files, the score distribution (a table and a small bar chart), and the
most common named mistakes with their equations and hints. ``python -m minirnn grade ...
--report class.html`` (or ``class.md``) writes one; ``sample_class`` grades a class made from
the catalogue itself (the solution and some catalogued mistakes of every exercise), which the
exercises page shows.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

from .catalog import BY_NAME
from .report import Report

BAR = 20            # characters of the longest bar


def summary(reports: list[Report]) -> list[dict]:
    """One entry per exercise (in catalogue order): files, max score, score counts, mean, and
    the named mistakes as (mistake, count), most common first."""
    order = {name: i for i, name in enumerate(BY_NAME)}
    out = []
    for name in sorted({r.exercise for r in reports}, key=lambda n: order.get(n, len(order))):
        group = [r for r in reports if r.exercise == name]
        top = max(r.max_score for r in group)
        counts = Counter(r.score for r in group)
        ids = Counter(i for r in group for i in r.mistake_ids)
        ex = BY_NAME.get(name)
        mistakes = []
        for key, n in ids.most_common():
            if ex is not None and any(m.id == key for m in ex.mistakes):
                mistakes.append((ex.mistake(key), n))
        out.append({"exercise": name, "files": len(group), "max_score": top,
                    "scores": [(s, counts.get(s, 0)) for s in range(top, -1, -1)],
                    "mean": sum(r.score for r in group) / len(group),
                    "full": counts.get(top, 0), "mistakes": mistakes,
                    "unnamed": sum(1 for r in group if not r.passed and not r.mistake_ids)})
    return out


def _bar(n: int, most: int) -> str:
    return "█" * max(1 if n else 0, round(BAR * n / most)) if most else ""


def markdown(reports: list[Report], top: int = 3) -> str:
    """The class report as Markdown: one table of exercises, then one section per exercise."""
    rows = summary(reports)
    lines = ["| exercise | files | full marks | mean score | most common mistake |",
             "|---|---|---|---|---|"]
    for s in rows:
        common = f"`{s['mistakes'][0][0].id}` ({s['mistakes'][0][1]})" if s["mistakes"] else "-"
        lines.append(f"| {s['exercise']} | {s['files']} | {s['full']} | "
                     f"{s['mean']:.1f} / {s['max_score']} | {common} |")
    for s in rows:
        lines += ["", f"### {s['exercise']}", "", "| score | files | |", "|---|---|---|"]
        most = max(n for _, n in s["scores"])
        lines += [f"| {score} | {n} | {_bar(n, most)} |" for score, n in s["scores"] if n]
        if s["mistakes"]:
            lines += ["", "Most common mistakes:", ""]
            lines += [f"- `{m.id}` ({n} file{'s' if n > 1 else ''}), {m.equation}: {m.message}. "
                      f"*Hint: {m.hint}*" for m, n in s["mistakes"][:top]]
        if s["unnamed"]:
            lines += ["", f"{s['unnamed']} wrong file(s) without a named mistake: read those "
                          "reports."]
    return "\n".join(lines) + "\n"


def html_page(reports: list[Report], top: int = 3) -> str:
    """The class report as a standalone HTML page (bars drawn with CSS, no script)."""
    e = html.escape
    parts = ["<!doctype html><html lang='en'><meta charset='utf-8'><title>Class report</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:.2em .5em;text-align:left}.bar{background:#3b6ea8;height:.9em}</style>",
             "<h1>Class report</h1><table><tr><th>exercise</th><th>files</th>"
             "<th>full marks</th><th>mean score</th></tr>"]
    rows = summary(reports)
    for s in rows:
        parts.append(f"<tr><td>{e(s['exercise'])}</td><td>{s['files']}</td><td>{s['full']}"
                     f"</td><td>{s['mean']:.1f} / {s['max_score']}</td></tr>")
    parts.append("</table>")
    for s in rows:
        most = max(n for _, n in s["scores"])
        parts.append(f"<h2>{e(s['exercise'])}</h2><table><tr><th>score</th><th>files</th>"
                     "<th>distribution</th></tr>")
        for score, n in s["scores"]:
            if n:
                width = 10 * n / most
                parts.append(f"<tr><td>{score}</td><td>{n}</td><td><div class='bar' "
                             f"style='width:{width:.1f}em'></div></td></tr>")
        parts.append("</table>")
        if s["mistakes"]:
            parts.append("<table><tr><th>mistake</th><th>files</th><th>equation</th>"
                         "<th>what they probably did</th><th>hint</th></tr>")
            parts += [f"<tr><td><code>{e(m.id)}</code></td><td>{n}</td><td>{e(m.equation)}</td>"
                      f"<td>{e(m.message)}</td><td>{e(m.hint)}</td></tr>"
                      for m, n in s["mistakes"][:top]]
            parts.append("</table>")
        if s["unnamed"]:
            parts.append(f"<p>{s['unnamed']} wrong file(s) without a named mistake: read those "
                         "reports.</p>")
    return "\n".join(parts) + "\n</html>\n"


def write_class_report(reports: list[Report], path: str | Path) -> None:
    """Write the class report to ``path``: HTML for ``.html``/``.htm``, else Markdown."""
    path = Path(path)
    text = html_page(reports) if path.suffix.lower() in (".html", ".htm") else markdown(reports)
    path.write_text(text, encoding="utf-8")


def sample_class(names=("rnn_backward", "softmax_backward", "retention_chunkwise"),
                 students: int = 8, directory=None) -> list[Report]:
    """Grade (in this process) a class made from the catalogue: for each exercise in ``names``,
    ``students`` files, two correct and the rest catalogued mistakes, the more common ones
    (first in the catalogue) more often."""
    import tempfile

    from .grader import grade
    from .stubs import exercise_source

    folder = Path(directory or tempfile.mkdtemp(prefix="minirnn-class-"))
    reports = []
    for name in names:
        ex = BY_NAME[name]
        picks = [None, None] + [ex.mistakes[i % 3 if i % 2 else i % len(ex.mistakes)]
                                for i in range(students - 2)]
        for i, mistake in enumerate(picks):
            text = exercise_source(ex, solution=True, edits=mistake.edits if mistake else ())
            path = folder / f"student{i + 1:02d}_{name}.py"
            path.write_text(text, encoding="utf-8")
            reports.append(grade(path))
    return reports
