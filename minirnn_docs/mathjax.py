"""Markdown extension: render the math of every page to SVG at build time with MathJax.

``pymdownx.arithmatex`` (``generic: true``) marks math as
``<span class="arithmatex">\\(...\\)</span>`` and ``<div class="arithmatex">\\[...\\]</div>``.
This postprocessor, registered last, sends all of a page's math in one request to a persistent
``node`` worker (``mathjax_worker.mjs``) and puts the returned SVG in its place. So readers get
finished math with no JavaScript and no fonts to download: the site works offline and from
``file://``.

- A TeX error (including an undefined macro) stops the build with the message and the TeX
  (:class:`TeXError`): a page with broken math is never written, whatever the build mode.
- A display equation with ``\\tag{RNN.3}`` gets the anchor ``id="eq-RNN-3"`` so prose can link to
  it with ``[(RNN.3)](#eq-RNN-3)`` and MkDocs validates the link.
- Rendered nodes get ``data-mathjax="svg"``, so nested conversions (docstrings rendered by
  mkdocstrings inside a page) are not rendered twice.
- The stylesheet MathJax's SVG output needs is written to ``docs/assets/mathjax-svg.css`` by
  ``npm ci`` (the ``postinstall`` script in ``package.json``).

Needs ``npm ci`` (the ``mathjax`` package) and ``node`` on the PATH; both only for building the
docs, never for using minirnn.
"""

from __future__ import annotations

import atexit
import html
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

from markdown import Extension
from markdown.postprocessors import Postprocessor
from markdown.treeprocessors import Treeprocessor

log = logging.getLogger("mkdocs.extensions.minirnn_mathjax")


class TeXError(ValueError):
    """The math of a page does not compile; the build stops."""

WORKER = Path(__file__).with_name("mathjax_worker.mjs")
MATH = re.compile(
    r'<(?P<tag>span|div) class="arithmatex"(?P<id> id="[^"]*")?>(?P<body>.*?)</(?P=tag)>',
    re.DOTALL,
)
DELIMITERS = {r"\(": r"\)", r"\[": r"\]", "$$": "$$", "$": "$"}
TAG = re.compile(r"\\tag\{([^}]*)\}")


class Worker:
    """One ``node`` process for the whole build, started on first use."""

    process: subprocess.Popen | None = None

    @classmethod
    def render(cls, items: list[dict]) -> dict:
        if cls.process is None or cls.process.poll() is not None:
            node = shutil.which("node")
            if node is None:
                raise RuntimeError("node is not on the PATH; install Node.js to build the docs")
            cls.process = subprocess.Popen(
                [node, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True, encoding="utf-8", cwd=WORKER.parent,
            )
            atexit.register(cls.process.kill)
        cls.process.stdin.write(json.dumps({"items": items}) + "\n")
        cls.process.stdin.flush()
        line = cls.process.stdout.readline()
        if not line:
            raise RuntimeError("the MathJax worker exited; did you run `npm ci`?")
        reply = json.loads(line)
        if "fatal" in reply:
            raise RuntimeError(f"the MathJax worker failed: {reply['fatal']}")
        return reply


def split_delimiters(body: str) -> str:
    """Strip the ``\\(``/``\\[`` delimiters arithmatex leaves around the TeX."""
    for left, right in DELIMITERS.items():
        if body.startswith(left) and body.endswith(right) and len(body) >= len(left) + len(right):
            return body[len(left):len(body) - len(right)]
    return body


class MathJaxPostprocessor(Postprocessor):
    def run(self, text: str) -> str:
        matches = list(MATH.finditer(text))
        if not matches:
            return text
        items = [{"tex": html.unescape(split_delimiters(m["body"].strip())),
                  "display": m["tag"] == "div"} for m in matches]
        try:
            reply = Worker.render(items)
        except (OSError, RuntimeError) as err:
            log.error("math could not be rendered: %s", err)
            return text
        pieces, end = [], 0
        errors = [f"{r['error']} in: {i['tex'][:200]}" for i, r in zip(items, reply["items"])
                  if r["error"]]
        if errors:
            raise TeXError("TeX error(s): " + "; ".join(errors))
        for match, _, rendered in zip(matches, items, reply["items"]):
            anchor = match["id"] or ""
            tag_name = match["tag"]
            pieces += [text[end:match.start()],
                       f'<{tag_name} class="arithmatex" data-mathjax="svg"{anchor}>'
                       f'{rendered["html"]}</{tag_name}>']
            end = match.end()
        pieces.append(text[end:])
        return "".join(pieces)


def anchor_of(tex: str) -> str | None:
    """``eq-RNN-3`` for TeX containing ``\\tag{RNN.3}``."""
    tag = TAG.search(tex)
    return "eq-" + re.sub(r"[^A-Za-z0-9]+", "-", tag[1]).strip("-") if tag else None


class EquationAnchors(Treeprocessor):
    """Give each tagged display equation an id while the page is still a tree, so MkDocs sees
    it when it validates ``#eq-...`` links (runs before MkDocs collects anchors, priority 5)."""

    def run(self, root):
        for element in root.iter("div"):
            if element.get("class") == "arithmatex" and element.text:
                anchor = anchor_of(element.text)
                if anchor:
                    element.set("id", anchor)


class MathJaxExtension(Extension):
    def extendMarkdown(self, md):
        md.treeprocessors.register(EquationAnchors(md), "minirnn_equation_anchors", 10)
        md.postprocessors.register(MathJaxPostprocessor(md), "minirnn_mathjax", 0)


def makeExtension(**kwargs):
    return MathJaxExtension(**kwargs)
