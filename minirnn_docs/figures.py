"""Figures for the docs, drawn at build time by code blocks that markdown-exec runs.

``svg(fig, alt)`` turns a Matplotlib figure into inline SVG (glyphs as paths, no fonts to fetch),
so a figure is always made from the current code and nothing is downloaded. The same call does
the right thing wherever a tutorial's code runs:

- in the docs build (the hook in ``minirnn_docs/hooks.py`` sets ``MINIRNN_DOCS_BUILD=1``): it
  returns the inline SVG, which the block prints into the page;
- in a Jupyter notebook made from a tutorial: it shows the figure inline and returns ``""``;
- anywhere else (the code copied into a script or a Python prompt): it saves the figure to
  ``figures/<name>.svg`` under the current directory and returns one short line saying where,
  so ``print(svg(fig, ...))`` prints that line, not a page of SVG text.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams.update({
    "svg.fonttype": "path", "svg.hashsalt": "minirnn", "figure.dpi": 100, "font.size": 10,
    "axes.spines.top": False, "axes.spines.right": False,
})

DOCS_BUILD = "MINIRNN_DOCS_BUILD"   # set to "1" by the docs hook while MkDocs builds the site


def svg(fig, alt: str) -> str:
    """Return ``fig`` as inline SVG HTML with ``alt`` as its accessible label.

    Use it in an ``exec="on"`` block as ``print(svg(fig, "..."))``: markdown-exec captures
    the block's own ``print``. In a Jupyter notebook made from a tutorial, the figure is shown
    inline instead and the empty string is returned. Outside the docs build and a notebook, the
    figure is saved to ``figures/<alt as a file name>.svg`` and a line naming the file is
    returned.
    """
    if _in_notebook():
        from IPython.display import SVG, display

        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
        plt.close(fig)
        display(SVG(buffer.getvalue()))
        return ""
    if os.environ.get(DOCS_BUILD) != "1":
        path = Path("figures") / f"{_file_name(alt)}.svg"
        path.parent.mkdir(exist_ok=True)
        fig.savefig(path, format="svg", bbox_inches="tight")
        plt.close(fig)
        return f"figure saved to {path}"
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):].replace("<svg", f'<svg role="img" aria-label="{alt}"', 1)
    return f'<div class="figure">{text}</div>'


def _file_name(alt: str) -> str:
    """The first words of ``alt`` as a file name: ``"Loss per step (held out)"`` ->
    ``"loss-per-step-held-out"``."""
    words = re.findall(r"[a-z0-9]+", alt.lower())
    return "-".join(words)[:48].rstrip("-") or "figure"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
