"""Turn each tutorial page into a Jupyter notebook, at docs-build time (the MkDocs hook in
``minirnn_docs/hooks.py``).

A tutorial is Markdown with executable ``python exec="on"`` blocks. Its notebook has one
markdown cell per stretch of prose and one code cell per executable block, in order, so a class
can run the same tutorial in Jupyter. The notebooks land next to the pages in the built site
(``tutorials/NAME.ipynb``) and each page links to its own. Figures in the page are printed as
SVG by ``minirnn_docs.figures.svg``; in a notebook the same call displays inline.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

FENCE = re.compile(r'^```python exec="on"[^\n]*\n(?P<code>.*?)^```\s*$', re.DOTALL | re.MULTILINE)
TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"


DOWNLOAD = re.compile(r"^\[Download this tutorial as a notebook\]\([^)]*\)\{[^}]*\}\s*$", re.M)
MD_LINK = re.compile(r"\]\((?!https?:)([^)#\s]+)\.md(#[^)]*)?\)")
ATTRIBUTES = re.compile(r"\{\s*\.[\w-]+[^}]*\}")


def _for_jupyter(prose: str) -> str:
    """Prose without MkDocs-only syntax: no download button, no ``{ .class }`` attributes,
    links to other pages pointing at the built site's ``.html`` files."""
    prose = DOWNLOAD.sub("", prose)
    prose = MD_LINK.sub(lambda m: f"]({m[1]}.html{m[2] or ''})", prose)
    return ATTRIBUTES.sub("", prose).strip()


def notebook_from_markdown(text: str) -> nbformat.NotebookNode:
    """A notebook whose cells follow the page: prose as markdown, executable blocks as code."""
    text = _for_jupyter(text)
    cells, end = [], 0
    for match in FENCE.finditer(text):
        prose = text[end:match.start()].strip()
        if prose:
            cells.append(nbformat.v4.new_markdown_cell(prose))
        cells.append(nbformat.v4.new_code_cell(match["code"].rstrip()))
        end = match.end()
    if text[end:].strip():
        cells.append(nbformat.v4.new_markdown_cell(text[end:].strip()))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    return notebook


def code_cells(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def generate(write) -> list[str]:
    """Call ``write(relative_path, text)`` for every tutorial's notebook; return the paths."""
    written = []
    for page in sorted(TUTORIALS.glob("*.md")):
        path = f"tutorials/{page.stem}.ipynb"
        write(path, nbformat.writes(notebook_from_markdown(page.read_text(encoding="utf-8"))))
        written.append(path)
    return written
