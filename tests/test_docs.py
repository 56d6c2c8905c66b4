"""The docs promise things the code must keep: a complete API reference, tutorials that run as
notebooks."""

import importlib
import os
import re
from pathlib import Path

import pytest

import minirnn

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_public_name_is_on_a_reference_page():
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        for module_name in re.findall(r"^::: (minirnn\.\w+)\s*$", page.read_text(), re.M):
            module = importlib.import_module(module_name)
            documented |= set(module.__all__)
    missing = sorted(set(minirnn.__all__) - documented)
    assert not missing, f"public names without a reference page: {missing}"


@pytest.mark.no_cover        # training runs: slow under line tracing, and about the docs
@pytest.mark.parametrize("page", sorted(p.name for p in (DOCS / "tutorials").glob("*.md")))
def test_tutorial_notebooks_execute(page, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the docs extra builds the notebooks")
    from minirnn_docs.notebooks import code_cells, notebook_from_markdown

    notebook = notebook_from_markdown((DOCS / "tutorials" / page).read_text())
    nbformat.validate(notebook)
    cells = code_cells(notebook)
    assert cells, f"{page} has no executable code"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__notebook__"}
    for i, source in enumerate(cells):          # one kernel: every cell in the same namespace
        exec(compile(source, f"{page} cell {i}", "exec"), namespace)
    assert os.getcwd() == str(tmp_path)
