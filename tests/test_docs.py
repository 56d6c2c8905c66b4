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


# These tutorials train many models (minutes together under load): their cells are
# compiled here, and the strict docs build executes the same code on every CI run.
TRAINS_MANY_MODELS = {"which-memory.md", "vision.md", "why-the-lstm-remembers.md",
                      "memory-that-corrects.md"}
# CI (.ci/run) builds the docs strictly beside the tests, which runs every tutorial's code: it
# sets this variable, and then every page's cells are compiled here, none executed twice.
DOCS_BUILD_RUNS_TUTORIALS = os.environ.get("MINIRNN_DOCS_BUILD_RUNS_TUTORIALS") == "1"


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
        if page not in TRAINS_MANY_MODELS and not DOCS_BUILD_RUNS_TUTORIALS:
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
    prefixes = "A|DR|G|GR|GRU|L|LSTM|M|MIN|ML|MR|O|R|RNN|V"
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


def test_try_this_answers_start_from_the_tutorials_visible_code():
    """The answers of a tutorial's "Try this" use the variables its visible blocks define (not
    a hidden setup): run the blocks, and the names are there with the values the page prints."""
    import numpy as np

    from minirnn_docs.try_this import tutorial_variables

    t = tutorial_variables("bptt", "t2", 1)
    assert t["x"].shape == (t["B"], t["T"], t["D"])
    _, cache = minirnn.rnn_forward(t["x"], np.zeros((t["B"], t["H"])), t["params"])
    dx = minirnn.rnn_backward(t["dh"], cache)[0]
    np.testing.assert_allclose(np.linalg.norm(dx, axis=(0, 2)), t["norms"], rtol=1e-12)
    three = tutorial_variables("three-models", "three", 1)
    assert set(three["configs"]) == {"rnn", "transformer", "retnet"} and "runs" not in three
    with pytest.raises(ValueError, match="visible blocks"):
        tutorial_variables("bptt", "t2", 99)


def answer_starts() -> list[tuple[str, str, str, int, set[str]]]:
    """Each answer function of ``minirnn_docs/try_this.py`` that starts from a tutorial's
    variables, as (function, page, session, blocks, names): the names are those it reads from
    ``tutorial_variables(page, session, blocks)`` and those its prompts quote alone in
    backticks (`` `task` ``), which a student types after running the page."""
    import ast

    source = (DOCS.parent / "minirnn_docs" / "try_this.py").read_text(encoding="utf-8")
    found = []
    for fn in ast.parse(source).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", None) == "tutorial_variables"):
                var = node.targets[0].id
                page, session, blocks = (a.value for a in node.value.args)
                names = {n.slice.value for n in ast.walk(fn)
                         if isinstance(n, ast.Subscript) and getattr(n.value, "id", None) == var
                         and isinstance(n.slice, ast.Constant)}
                for n in ast.walk(fn):
                    if isinstance(n, ast.Constant) and isinstance(n.value, str):
                        names |= set(re.findall(r"`([A-Za-z_]\w*)`", n.value))
                found.append((fn.name, page, session, blocks, names))
    return found


def later_changes(text: str, session: str, blocks: int, names: set[str]) -> set[str]:
    """Which of ``names`` a student no longer has as the first ``blocks`` visible blocks of
    ``session`` left them, after running the rest of the page's visible blocks in order: the
    names a later visible block binds again, and the random generators it draws from (which
    moves them on). Only names the first blocks bind count (``np``, ``rng`` ... that they bind)."""
    seen, first, generators, changed = 0, set(), set(), set()
    for match in EXEC_FENCE.finditer(text):
        if "source=" not in match["options"]:
            continue
        defined, used = _defined_and_used(match["code"])
        if seen < blocks:
            seen += f'session="{session}"' in match["options"]
            first |= defined
            generators |= set(re.findall(r"(\w+) = np\.random\.default_rng\(", match["code"]))
        else:
            changed |= defined | (used & generators)
    return names & first & changed


@pytest.mark.parametrize("start", answer_starts(), ids=lambda s: s[0])
def test_a_try_this_answer_uses_names_no_later_block_rebinds(start):
    """A student runs the whole page, then the prompt: an answer computed from the first blocks'
    ``task`` is wrong if a later visible block binds ``task`` to something else."""
    name, page, session, blocks, names = start
    text = (DOCS / "tutorials" / f"{page}.md").read_text(encoding="utf-8")
    changed = later_changes(text, session, blocks, names)
    assert not changed, (f"{name}: the answer starts from {sorted(names)} after {blocks} blocks "
                         f"of {page}.md, but later visible blocks rebind or draw from "
                         f"{sorted(changed)}: give them their own names")


def test_the_rebinding_check_can_fail():
    page = ('```python exec="on" source="above" session="s"\nimport numpy as np\n'
            'rng = np.random.default_rng(0)\ntask, D = 1, 16\n```\n\n'
            '```python exec="on" source="above" session="s"\nD = 64\nx = rng.normal()\n```\n')
    assert later_changes(page, "s", 1, {"task", "D", "rng"}) == {"D", "rng"}
    assert later_changes(page, "s", 2, {"task", "D", "rng"}) == set()
    assert any(s[1] == "three-models" and "task" in s[4] for s in answer_starts())


# --- every tutorial runs as shown: no name a visible block needs comes from a hidden block ---

EXEC_FENCE = re.compile(r'^```python (?P<options>exec="on"[^\n]*)\n(?P<code>.*?)^```\s*$',
                        re.DOTALL | re.MULTILINE)


def _defined_and_used(code: str) -> tuple[set[str], set[str]]:
    """Names a block binds anywhere (assignments, imports, functions, classes, arguments, loop and
    with targets, exception names) and names it reads."""
    import ast

    defined, used = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.alias):
            defined.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return defined, used


def hidden_names(text: str) -> list[tuple[int, list[str]]]:
    """For each visible block (``source=...``), in page order: the names it reads that neither it
    nor an earlier visible block defines and that are not builtins. A student who copies the
    visible code would get a NameError on each of them."""
    import builtins

    known, problems = set(dir(builtins)), []
    for i, match in enumerate(EXEC_FENCE.finditer(text)):
        defined, used = _defined_and_used(match["code"])
        if "source=" not in match["options"]:
            continue                      # a hidden block: what it defines is not on the page
        missing = sorted(used - defined - known)
        if missing:
            problems.append((i, missing))
        known |= defined
    return problems


@pytest.mark.parametrize("page", sorted(p.name for p in (DOCS / "tutorials").glob("*.md")))
def test_the_visible_code_of_a_tutorial_runs_when_copied(page):
    problems = hidden_names((DOCS / "tutorials" / page).read_text())
    assert not problems, (f"{page}: visible blocks read names that only a hidden block (one "
                          f"without source=...) defines, as (block index, names): {problems}")


def test_the_hidden_cell_check_can_fail():
    page = ('```python exec="on"\nimport numpy as np\ntasks = {}\n```\n\n'
            '```python exec="on" source="above"\nfor name in tasks:\n    print(np.pi, name)\n```\n')
    assert hidden_names(page) == [(1, ["np", "tasks"])]
    shown = page.replace('exec="on"\nimport', 'exec="on" source="above"\nimport')
    assert hidden_names(shown) == []


def test_a_figure_is_saved_to_a_file_outside_the_docs_build(tmp_path, monkeypatch):
    """``print(svg(fig, ...))`` in a tutorial copied into a script prints one line and leaves an
    SVG file; in the docs build (the hook sets the variable) it prints the inline SVG."""
    pytest.importorskip("matplotlib", reason="the docs extra draws the figures")
    import matplotlib.pyplot as plt

    from minirnn_docs import figures

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(figures.DOCS_BUILD, raising=False)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    line = figures.svg(fig, "Loss per step (held out)")
    path = tmp_path / "figures" / "loss-per-step-held-out.svg"
    assert line == "figure saved to figures/loss-per-step-held-out.svg"
    assert path.read_text().lstrip().startswith("<?xml") and "<svg" in path.read_text()

    monkeypatch.setenv(figures.DOCS_BUILD, "1")
    fig, ax = plt.subplots()
    inline = figures.svg(fig, "Loss per step")
    assert inline.startswith('<div class="figure"><svg role="img" aria-label="Loss per step"')
    assert len(list((tmp_path / "figures").iterdir())) == 1        # nothing more was saved


def test_the_docs_hook_asks_for_inline_figures(monkeypatch):
    pytest.importorskip("mkdocs", reason="the docs extra builds the site")
    from minirnn_docs import figures, hooks

    monkeypatch.setenv(figures.DOCS_BUILD, "0")      # restored (unset) after the test
    config = {"site_name": "x"}
    assert hooks.on_config(config) is config
    assert os.environ[figures.DOCS_BUILD] == "1"


def test_try_this_answers_use_only_the_public_api():
    """What a student would need to redo an answer is public: every ``m.NAME`` the answers use
    is in ``minirnn.__all__``, and nothing private (a leading underscore) is imported."""
    import ast

    source = (DOCS.parent / "minirnn_docs" / "try_this.py").read_text()
    private, unknown = [], []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "m" and node.attr not in minirnn.__all__:
            unknown.append(node.attr)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minirnn"):
            private += [node.module] if any(p.startswith("_") for p in node.module.split(".")) \
                else []
            private += [a.name for a in node.names if a.name.startswith("_")]
    assert not unknown, f"answers use names minirnn does not export: {sorted(set(unknown))}"
    assert not private, f"answers import private names: {private}"


# --- what markdown-exec and autorefs would stop the strict build for, found in a second ---

def unbound_names(text: str) -> list[tuple[int, list[str]]]:
    """Names each executed block reads that nothing in its namespace binds. markdown-exec runs a
    block without ``session=`` in a fresh namespace, and blocks of one session share theirs."""
    import builtins

    sessions: dict[str, set[str]] = {}
    problems = []
    for i, match in enumerate(EXEC_FENCE.finditer(text)):
        session = re.search(r'session="([^"]+)"', match["options"])
        known = sessions.setdefault(session[1], set()) if session else set()
        defined, used = _defined_and_used(match["code"])
        missing = sorted(used - defined - known - set(dir(builtins)))
        if missing:
            problems.append((i, missing))
        known |= defined
    return problems


@pytest.mark.parametrize("page", sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")))
def test_every_executed_block_binds_the_names_it_reads(page):
    problems = unbound_names((DOCS / page).read_text())
    assert not problems, (f"{page}: executed blocks read names their namespace never binds (a "
                          f"NameError at build time), as (block index, names): {problems}")


def test_the_unbound_name_check_can_fail():
    page = ('```python exec="on" session="a"\nimport numpy as np\n```\n\n'
            '```python exec="on" session="a"\nprint(np.pi)\n```\n\n'
            '```python exec="on"\nprint(np.pi)\n```\n')
    assert unbound_names(page) == [(2, ["np"])]


def test_a_cross_reference_names_one_page():
    """A ``[name][minirnn.x.f]`` link to an object rendered on two pages (its derivation and the
    reference) is ambiguous from a page in a third folder; autorefs warns and the strict build
    stops. Such links name the page instead: ``[name](../reference/x.md#minirnn.x.f)``."""
    rendered: dict[str, set[str]] = {}
    for path in DOCS.rglob("*.md"):
        for ident in re.findall(r"^::: (minirnn[\w.]*)", path.read_text(), re.MULTILINE):
            rendered.setdefault(ident, set()).add(str(path.relative_to(DOCS).parent))
    bad = []
    for path in DOCS.rglob("*.md"):
        folder = str(path.relative_to(DOCS).parent)
        for ident in re.findall(r"\]\[(minirnn[\w.]*)\]", path.read_text()):
            folders = {folder for shown, where in rendered.items()
                       if ident == shown or ident.startswith(shown + ".") for folder in where}
            if len(folders) > 1 and folder not in folders:
                bad.append((str(path.relative_to(DOCS)), ident))
    assert not bad, f"ambiguous cross-references (page, object): {bad}"
