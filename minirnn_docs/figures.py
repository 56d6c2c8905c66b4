"""Figures for the docs, drawn at build time by code blocks that markdown-exec runs.

``svg(fig, alt)`` turns a Matplotlib figure into inline SVG (glyphs as paths, no fonts to fetch),
so a figure is always made from the current code and nothing is downloaded.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams.update({
    "svg.fonttype": "path", "svg.hashsalt": "minirnn", "figure.dpi": 100, "font.size": 10,
    "axes.spines.top": False, "axes.spines.right": False,
})


def svg(fig, alt: str) -> str:
    """Return ``fig`` as inline SVG HTML with ``alt`` as its accessible label.

    Use it in an ``exec="on"`` block as ``print(svg(fig, "..."))``: markdown-exec captures
    the block's own ``print``. In a Jupyter notebook made from a tutorial, the figure is shown
    inline instead and the empty string is returned.
    """
    if _in_notebook():
        from IPython.display import SVG, display

        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
        plt.close(fig)
        display(SVG(buffer.getvalue()))
        return ""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):].replace("<svg", f'<svg role="img" aria-label="{alt}"', 1)
    return f'<div class="figure">{text}</div>'


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
