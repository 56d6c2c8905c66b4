"""MkDocs hooks of the minirnn docs (``hooks:`` in ``mkdocs.yml``).

``on_files`` adds every tutorial's Jupyter notebook (``tutorials/NAME.ipynb``) to the site as a
generated file, so the pages' links to their notebooks are checked like any other link. Plain
MkDocs API (``File.generated``, MkDocs >= 1.6): no plugin, nothing to port when the toolchain
moves on (see the maintainers page).
"""

from __future__ import annotations

from mkdocs.structure.files import File

from minirnn_docs.notebooks import generate


def on_files(files, config):
    generate(lambda path, text: files.append(File.generated(config, path, content=text)))
    return files
