"""MkDocs hooks of the minirnn docs (``hooks:`` in ``mkdocs.yml``).

``on_files`` adds every tutorial's Jupyter notebook (``tutorials/NAME.ipynb``) to the site as a
generated file, so the pages' links to their notebooks are checked like any other link. Plain
MkDocs API (``File.generated``, MkDocs >= 1.6): no plugin, nothing to port when the toolchain
moves on (see the maintainers page).

``on_config`` sets ``MINIRNN_DOCS_BUILD=1``, so the pages' figures are printed into the page as
inline SVG (``minirnn_docs.figures.svg``); a tutorial run as a script saves them to files instead.

``on_page_markdown`` / ``on_page_content`` time each page's conversion (its executed code blocks
included), and ``on_post_build`` logs the slowest pages: where to look when the build grows slow.
"""

from __future__ import annotations

import logging
import os
import time

from mkdocs.structure.files import File

from minirnn_docs.figures import DOCS_BUILD
from minirnn_docs.notebooks import generate


def on_files(files, config):
    generate(lambda path, text: files.append(File.generated(config, path, content=text)))
    return files


def on_config(config):
    os.environ[DOCS_BUILD] = "1"
    return config


_started: dict[str, float] = {}
_seconds: dict[str, float] = {}


def on_page_markdown(markdown, page, config, files):
    _started[page.file.src_uri] = time.perf_counter()
    return markdown


def on_page_content(html, page, config, files):
    start = _started.pop(page.file.src_uri, None)
    if start is not None:
        _seconds[page.file.src_uri] = time.perf_counter() - start
    return html


def on_post_build(config):
    slowest = sorted(_seconds.items(), key=lambda item: -item[1])[:8]
    logging.getLogger("mkdocs").info(
        "slowest pages (s): " + ", ".join(f"{uri} {sec:.0f}" for uri, sec in slowest))
