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


# Tutorials 8 and 9 train eight and six models (about a minute together): their cells are
# compiled here, and the strict docs build executes the same code on every CI run.
TRAINS_MANY_MODELS = {"which-memory.md", "vision.md", "why-the-lstm-remembers.md"}


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
        code = compile(source, f"{page} cell {i}", "exec")
        if page not in TRAINS_MANY_MODELS:
            exec(code, namespace)
    assert os.getcwd() == str(tmp_path)


def _tags(text: str) -> list[str]:
    return re.findall(r"\\tag\{([A-Z]+\.\d+)\}", text)


def test_equation_numbers_are_displayed_in_order_and_every_citation_exists():
    """Every page numbers its displayed equations 1, 2, 3, ... in the order they appear, and
    every equation cited anywhere (docs, docstrings) is displayed on some page."""
    displayed = set()
    for page in sorted((DOCS / "derivations").glob("*.md")):
        tags = _tags(page.read_text())
        displayed |= set(tags)
        by_prefix: dict = {}
        for tag in tags:
            prefix, number = tag.split(".")
            by_prefix.setdefault(prefix, []).append(int(number))
        for prefix, numbers in by_prefix.items():
            assert numbers == list(range(1, len(numbers) + 1)), \
                f"{page.name}: ({prefix}.n) displayed in the order {numbers}"
    root = DOCS.parent
    sources = [*DOCS.rglob("*.md"), *(root / "minirnn").rglob("*.py")]
    prefixes = "A|G|GR|GRU|L|LSTM|M|MIN|ML|O|R|RNN|V"
    cited = {m for f in sources for m in re.findall(rf"\(({prefixes})\.(\d+)\)", f.read_text())}
    missing = sorted(f"{p}.{n}" for p, n in cited if f"{p}.{n}" not in displayed)
    assert not missing, f"cited but never displayed: {missing}"


@pytest.mark.no_cover        # a Jupyter kernel in a subprocess
def test_a_tutorial_notebook_runs_in_jupyter(tmp_path):
    """With the `notebooks` extra, `jupyter nbconvert --execute` runs a generated notebook,
    which carries no MkDocs-only syntax."""
    pytest.importorskip("nbconvert", reason="the notebooks extra runs notebooks")
    pytest.importorskip("ipykernel", reason="the notebooks extra runs notebooks")
    import subprocess
    import sys

    import nbformat

    from minirnn_docs.notebooks import notebook_from_markdown

    notebook = notebook_from_markdown((DOCS / "tutorials" / "gradient-checking.md").read_text())
    text = nbformat.writes(notebook)
    assert "md-button" not in text and ".md)" not in text and ".md#" not in text
    path = tmp_path / "gradient-checking.ipynb"
    path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook",
                           "--execute", "--output", "run.ipynb", str(path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run.ipynb").exists()


def test_a_tex_error_stops_the_docs_build():
    """The math extension raises on a TeX error (an undefined macro), so no build, strict or
    not, writes a page with broken math."""
    import shutil

    if not (DOCS.parent / "node_modules" / "mathjax").is_dir() or not shutil.which("node"):
        pytest.skip("the docs' MathJax is not installed (npm ci)")
    import markdown

    from minirnn_docs.mathjax import TeXError

    extensions = ["pymdownx.arithmatex", "minirnn_docs.mathjax"]
    config = {"pymdownx.arithmatex": {"generic": True}}
    good = markdown.markdown("$$\na^2 \\tag{X.1}\n$$", extensions=extensions,
                             extension_configs=config)
    assert "mjx-container" in good and 'id="eq-X-1"' in good
    with pytest.raises(TeXError, match="undefinedmacro"):
        markdown.markdown("$$\n\\undefinedmacro{x}\n$$", extensions=extensions,
                          extension_configs=config)
