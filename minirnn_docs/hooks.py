"""MkDocs hooks of the minirnn docs (``hooks:`` in ``mkdocs.yml``).

``on_files`` adds every tutorial's Jupyter notebook (``tutorials/NAME.ipynb``) to the site as a
generated file, so the pages' links to their notebooks are checked like any other link. Plain
MkDocs API (``File.generated``, MkDocs >= 1.6): no plugin, nothing to port when the toolchain
moves on (see the maintainers page).

``on_config`` sets ``MINIRNN_DOCS_BUILD=1``, so the pages' figures are printed into the page as
inline SVG (``minirnn_docs.figures.svg``); a tutorial run as a script saves them to files instead.
"""

from __future__ import annotations

import os

from mkdocs.structure.files import File

from minirnn_docs.figures import DOCS_BUILD
from minirnn_docs.notebooks import generate


def on_files(files, config):
    generate(lambda path, text: files.append(File.generated(config, path, content=text)))
    return files


def on_config(config):
    os.environ[DOCS_BUILD] = "1"
    return config
