"""The shape of the code: one line of checks, then the math; checks run once per call.

A public math function reads like a textbook: its docstring, then at most one statement that
calls into ``minirnn._checks`` (where every validator and every ``raise`` lives), then the
equations. A function built from other public functions checks its inputs once; what it calls
inside does not check again. These tests read the source (``ast``) and count the checks that
really run.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import minirnn as m
from minirnn._checks import core
from minirnn._floors import FLOORS

MATH_MODULES = next(modules for name, _, modules in FLOORS if name == "math")
ROOT = Path(m.__file__).parent


def functions(module: str):
    tree = ast.parse((ROOT / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            yield node


def is_check_call(stmt) -> bool:
    """A statement whose value calls ``check.<something>(...)``."""
    value = getattr(stmt, "value", None)
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "check")


@pytest.mark.parametrize("module", MATH_MODULES)
def test_no_raise_and_no_validator_in_the_math_modules(module):
    source = (ROOT / f"{module}.py").read_text()
    tree = ast.parse(source)
    raises = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Raise)]
    validators = [f.name for f in functions(module) if "check" in f.name]
    assert not raises, f"minirnn/{module}.py raises at lines {raises}: move it to _checks"
    assert not validators, f"validators {validators} belong in minirnn/_checks"
    assert "Shapes(" not in source


@pytest.mark.parametrize("module", MATH_MODULES)
def test_public_functions_open_with_one_check_then_math(module):
    public = set(__import__(f"minirnn.{module}", fromlist=["x"]).__all__)
    seen = 0
    for f in functions(module):
        if f.name not in public:
            continue
        seen += 1
        body = f.body[1:] if isinstance(f.body[0], ast.Expr) and \
            isinstance(f.body[0].value, ast.Constant) else f.body        # skip the docstring
        checks = [i for i, stmt in enumerate(body) if is_check_call(stmt)]
        assert len(checks) <= 1, f"{f.name} validates {len(checks)} times"
        assert checks in ([], [0]), f"{f.name}: the check must be the first statement"
    assert seen >= 4


def test_no_public_math_hides_in_a_private_helper():
    for module in MATH_MODULES:
        # plumbing, not math: _per_chunk stacks the chunks of one length to share a solve;
        # _split_plan, _in_column_blocks and _blocks_are_faster choose how BLAS computes one
        # product; _rotation_rows keeps the tables that rotation_table documents
        private = [f.name for f in functions(module) if f.name.startswith("_")
                   and f.name not in {"_biases", "_per_chunk", "_in_column_blocks",
                                      "_blocks_are_faster", "_split_plan", "_rotation_rows"}]
        assert not private, f"minirnn/{module}.py has private helpers {private}"


class CountChecks:
    """Counts the arrays that are really validated (``Shapes.array``) while active."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        original = core.Shapes.array

        def counting(shapes, name, *args, **kwargs):
            self.calls.append(f"{shapes.func}:{name}")
            return original(shapes, name, *args, **kwargs)

        monkeypatch.setattr(core.Shapes, "array", counting)


def test_a_model_checks_its_inputs_once_not_in_every_layer(monkeypatch):
    model = m.RetNetLM(m.RetNetConfig(vocab_size=7, d_model=8, n_heads=2, n_layers=2, dv=4,
                                      d_ff=16, chunk_size=3))
    params = model.init(0, dtype=np.float64)
    tokens = np.random.default_rng(0).integers(0, 7, (2, 7))
    counter = CountChecks(monkeypatch)
    model.loss_and_grads(params, tokens, np.roll(tokens, -1, axis=1))
    funcs = {c.split(":")[0] for c in counter.calls}
    assert funcs == {"RetNetLM.forward"}, funcs          # the parameters, once; no layer
    assert len(counter.calls) == len(params)


def test_decoding_steps_do_not_recheck_layers(monkeypatch):
    for model in (m.TransformerLM(m.TransformerConfig(vocab_size=7, d_model=8)),
                  m.RetNetLM(m.RetNetConfig(vocab_size=7, d_model=8, dv=4))):
        params = model.init(0)
        _, state = model.start(params, np.array([[1, 2, 3]]))
        counter = CountChecks(monkeypatch)
        model.step(params, np.array([4]), state)
        assert counter.calls == [], counter.calls       # the token ids only (not arrays)


def test_a_direct_call_after_a_model_call_is_checked_again():
    model = m.RNNLM(m.RNNConfig(vocab_size=5, d_model=4, hidden=4))
    model.forward(model.init(0), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="rnn_step_forward: x contains 1 non-finite"):
        m.rnn_step_forward(np.array([[np.nan, 0.0]]), np.zeros((1, 3)), m.init_rnn_params(2, 3))


def test_trusted_switches_the_checks_off_for_a_block_and_back_on_after_an_error():
    bad = np.array([[np.nan, 0.0]]), np.zeros((1, 3)), m.init_rnn_params(2, 3)
    with pytest.raises(ValueError):
        m.mha_forward(np.zeros((1, 2, 4)), m.init_mha_params(4, 2), n_heads=3)
    with core.trusted():
        h, _ = m.rnn_step_forward(*bad)                # not checked: the NaN goes through
        assert np.isnan(h).any()
    with pytest.raises(ValueError, match="non-finite"):
        m.rnn_step_forward(*bad)                         # checked again after the block
    with pytest.raises(RuntimeError), core.trusted():
        raise RuntimeError("an error inside the block")
    with pytest.raises(ValueError, match="non-finite"):
        m.rnn_step_forward(*bad)


def test_the_trusted_files_are_the_math_block_and_model_modules():
    """The rule is derived from the floors: every module of those floors, and nothing else
    (not the gradient checker, which calls whatever it is given)."""
    trusted = {Path(f).stem for f in core._TRUSTED_FILES}
    floors = {name: set(modules) for name, _, modules in FLOORS}
    assert trusted == floors["math"] | floors["blocks"] | floors["models"]
    assert all(Path(f).is_file() for f in core._TRUSTED_FILES)
    assert "gradcheck" not in trusted


def test_calls_from_inside_the_library_are_trusted_and_from_outside_checked(monkeypatch):
    """mha_forward checks x and its parameters; the attention it runs inside does not check
    q, k, v again. Called directly, attention_forward checks them."""
    counter = CountChecks(monkeypatch)
    m.mha_forward(np.ones((1, 3, 4)), m.init_mha_params(4, 2), n_heads=2)
    assert {c.split(":")[0] for c in counter.calls} == {"mha_forward"}
    counter.calls.clear()
    q = np.ones((1, 1, 3, 2))
    m.attention_forward(q, q, q)
    assert counter.calls == ["attention_forward:q", "attention_forward:k", "attention_forward:v"]


@pytest.mark.no_cover        # pdb replaces the trace function that coverage uses
def test_the_debugger_lands_on_the_first_equation():
    """With the checks module skipped, ``step`` from the call reaches the first equation."""
    import pdb
    import sys

    source = inspect.getsource(m.rnn.rnn_step_forward)
    first = next(i for i, line in enumerate(source.splitlines()) if "# (RNN.1)" in line)
    start = m.rnn.rnn_step_forward.__code__.co_firstlineno
    stops = []

    class Recorder(pdb.Pdb):
        def interaction(self, frame, tb):
            stops.append((frame.f_code.co_name, frame.f_lineno))
            if len(stops) < 4:
                self.set_step()
            else:
                self.set_continue()

    debugger = Recorder(skip=["minirnn._checks*", "numpy*"])
    x, h = np.zeros((1, 2)), np.zeros((1, 3))
    params = m.init_rnn_params(2, 3)
    tracer = sys.gettrace()
    try:
        debugger.set_trace(sys._getframe())
        m.rnn_step_forward(x, h, params)
    finally:
        sys.settrace(tracer)
    lines = [line for name, line in stops if name == "rnn_step_forward"]
    assert start + first in lines, (stops, start + first)


# --- the check line, as an editor and a debugger see it ------------------------------------------

@pytest.mark.parametrize("module", MATH_MODULES)
def test_the_check_line_resolves_statically(module):
    """``check`` is bound by one static import of the module's twin in minirnn/_checks, and
    every ``check.<name>`` the module calls is a function defined there: what go-to-definition
    follows."""
    tree = ast.parse((ROOT / f"{module}.py").read_text())
    binds = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "_checks"
             and n.level == 1 and any(a.asname == "check" for a in n.names)]
    assert len(binds) == 1, f"{module}: `from ._checks import {module} as check` expected"
    assert [a.name for a in binds[0].names if a.asname == "check"] == [module]
    twin = ast.parse((ROOT / "_checks" / f"{module}.py").read_text())
    defined = {f.name for f in twin.body if isinstance(f, ast.FunctionDef)}
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "check"}
    assert used and used <= defined, f"{module}: check.{sorted(used - defined)} not in its twin"


def test_every_checks_module_has_a_twin_and_imports_only_the_ground_floor():
    for path in (ROOT / "_checks").glob("*.py"):
        if path.stem in ("__init__", "core"):
            continue
        assert (ROOT / f"{path.stem}.py").is_file(), f"_checks/{path.name} has no twin"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module == "states", f"_checks/{path.name} imports ..{node.module}"


PDB_SCRIPT = """
import numpy as np
import minirnn

rng = np.random.default_rng(0)
q, k, v = rng.standard_normal((3, 1, 2, 5, 4))
g = -rng.random((1, 2, 5))
minirnn.gated_retention_parallel(q, k, v, g)
"""


@pytest.mark.no_cover        # a subprocess under pdb
def test_a_bad_call_typed_at_a_pdb_prompt_inside_the_library_is_checked(tmp_path):
    """A real pdb session (commands on stdin) stops inside minirnn/gated.py, and a bad call
    typed there with ``p``, with ``!`` and in ``interact`` gets the message a script gets."""
    import subprocess
    import sys

    source = inspect.getsource(m.gated.gated_retention_parallel).splitlines()
    start = m.gated.gated_retention_parallel.__code__.co_firstlineno
    line = start + next(i for i, text in enumerate(source) if "q = q * scale" in text)
    script = tmp_path / "session.py"
    script.write_text(PDB_SCRIPT)
    bad_call = "gated_retention_parallel(q, k, v[..., :1, :], log_decay)"
    commands = "\n".join([
        f"break {ROOT / 'gated.py'}:{line}", "continue",
        "p segment_decay(np.array([0.5, 1.0]))",
        f"p {bad_call}",
        f"!x = {bad_call}",
        "interact", bad_call, ""]) + "\n"
    session = subprocess.run([sys.executable, "-m", "pdb", str(script)], input=commands,
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = session.stdout + session.stderr
    assert "gated.py(" in out, out                       # it stopped inside the library
    assert out.count("segment_decay: log_decay must be <= 0") == 1, out
    direct = subprocess.run([sys.executable, "-c", PDB_SCRIPT.replace(
        "minirnn.gated_retention_parallel(q, k, v, g)",
        "minirnn.gated_retention_parallel(q, k, v[..., :1, :], g)")],
        capture_output=True, text=True, timeout=120)
    message = direct.stderr.strip().splitlines()[-1].split(": ", 1)[1]   # past "ValueError: "
    assert "v" in message and "T = 1" in message, message
    assert out.count(message) == 3, out                  # p, ! and interact
