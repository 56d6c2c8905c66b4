"""mkdocs-gen-files script: write the tutorials' notebooks into the site being built."""

import mkdocs_gen_files

from minirnn_docs.notebooks import generate


def _write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text)


generate(_write)
