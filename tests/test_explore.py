import ast
import pkgutil
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import minirnn.explore as explore
from minirnn import manhattan_decay_mask, masa_forward, retention_2d_parallel, retention_parallel
from minirnn._floors import FLOORS
from minirnn.cli import main
from minirnn.explore import FORMS, MECHANISMS, WALKS, find_walks, fmt, run_explorer, tiny
from minirnn.explore.vision import grid_of

PACKAGE = Path(explore.__file__).parent
DIFF = re.compile(r"largest relative difference, [^:\n]*: (\S+)")
CASES = [(m, f, b) for m in MECHANISMS for f in FORMS[m] for b in (False, True)]


def differences(text: str) -> list[float]:
    """Every check line's number; ``float`` fails on anything that is not one (nan included)."""
    return [float(x) for x in DIFF.findall(text)]


def test_the_mechanisms_are_the_walk_modules_in_the_order_of_the_math_floor():
    assert MECHANISMS == ("rnn", "attention", "retention", "gated", "msr", "vision", "delta")
    math = next(modules for name, _, modules in FLOORS if name == "math")
    assert list(MECHANISMS) == [m for m in math if m in MECHANISMS]
    modules = {m.name for m in pkgutil.iter_modules(explore.__path__)}
    assert "printing" in modules
    assert modules - {"printing"} == set(MECHANISMS)          # every other module is a walk
    for name in MECHANISMS:
        walk = WALKS[name]
        assert walk.__name__ == f"minirnn.explore.{name}"
        assert isinstance(walk.FORMS, tuple) and len(walk.FORMS) >= 1
        assert callable(walk.walk)
        assert FORMS[name] == walk.FORMS
    assert len(CASES) == 2 * sum(len(f) for f in FORMS.values()) == 36


def test_a_new_walk_module_is_found_without_any_list(tmp_path, monkeypatch):
    package = tmp_path / "toyexplore"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "printing.py").write_text("WIDTH = 78\n")
    walk = ("FORMS = ({forms},)\n\n\ndef walk(T, d, seed, backward, form, chunk_size):\n"
            "    yield from ()\n")
    for name, forms in (("vision", '"a"'), ("toy", '"only"'), ("rnn", '"b", "c"')):
        (package / f"{name}.py").write_text(walk.format(forms=forms))
    monkeypatch.syspath_prepend(str(tmp_path))
    walks = find_walks([str(package)], "toyexplore")
    assert list(walks) == ["rnn", "vision", "toy"]           # math floor order, then the rest
    assert walks["toy"].FORMS == ("only",)
    (package / "notawalk.py").write_text("x = 1\n")
    with pytest.raises(TypeError, match=r"toyexplore\.notawalk is not a walk"):
        find_walks([str(package)], "toyexplore")
    for name in [m for m in sys.modules if m.startswith("toyexplore")]:
        del sys.modules[name]


def test_the_command_line_offers_what_the_package_holds(monkeypatch, capsys):
    class Toy:
        FORMS = ("first", "second")

        @staticmethod
        def walk(T, d, seed, backward, form, chunk_size):
            yield explore.Step(f"toy walk, form {form}", ["a line"])

    monkeypatch.setitem(WALKS, "toy", Toy)
    monkeypatch.setattr(explore, "MECHANISMS", (*MECHANISMS, "toy"))
    monkeypatch.setitem(FORMS, "toy", Toy.FORMS)
    assert main(["step", "toy", "--no-pause"]) == 0
    assert "toy walk, form first" in capsys.readouterr().out
    assert main(["step", "toy", "--form", "second", "--no-pause"]) == 0
    assert "toy walk, form second" in capsys.readouterr().out


def _imports(path: Path) -> list[str]:
    """The absolute name of every module a file of minirnn/explore imports from."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = "minirnn.explore".split(".")[:3 - node.level]
                found.append(".".join(base + ([node.module] if node.module else [])))
            else:
                found.append(node.module)
    return found


def test_no_walk_imports_the_package_or_another_walk():
    walks = sorted(p for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "printing"))
    assert [p.stem for p in walks] == sorted(MECHANISMS)
    for path in walks:
        imports = _imports(path)
        assert "minirnn.explore.printing" in imports, path    # the resolver sees the import
        assert "minirnn.explore" not in imports, path         # never the package's __init__
        inside = [m for m in imports if m.startswith("minirnn.explore")]
        assert inside == ["minirnn.explore.printing"], path   # and no sibling walk
    printing = _imports(PACKAGE / "printing.py")
    assert "minirnn.gradcheck" in printing
    assert not [m for m in printing if m.startswith("minirnn.explore")]


@pytest.mark.parametrize(("mechanism", "form", "backward"), CASES)
def test_every_mechanism_form_and_backward_runs_and_its_checks_pass(mechanism, form, backward,
                                                                    capsys):
    argv = ["step", mechanism, "--form", form, "--no-pause", "--T", "5", "--chunk-size", "2"]
    assert main(argv + ["--backward"] * backward) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    diffs = differences(out)
    assert diffs, "no check line"
    assert max(diffs) < 1e-10                 # the forms tie together
    if backward:
        after = out.split("Backward", 1)[1]
        assert differences(after), "no check of the backward"
    else:
        assert "Backward" not in out


def test_printed_numbers_are_the_library_outputs():
    lines = []
    run_explorer("retention", form="recurrent", T=4, d=2, seed=3, pause=False,
                 out=lines.append)
    rng = np.random.default_rng(3)                     # the explorer's own inputs
    q, k = tiny(rng, 1, 1, 4, 2), tiny(rng, 1, 1, 4, 2)
    v = tiny(rng, 1, 1, 4, 2)
    out, _, _ = retention_parallel(q, k, v, np.array([0.5]))
    assert fmt("parallel", out[0, 0]) in lines


def test_interactive_quit_and_bad_options(capsys):
    answers = iter(["", "q"])
    shown = run_explorer("rnn", pause=True, out=lambda s: None, ask=lambda _: next(answers))
    assert shown == 2
    with pytest.raises(ValueError, match="keep the example tiny"):
        run_explorer("rnn", T=50, pause=False, out=lambda s: None)
    with pytest.raises(ValueError, match="unknown mechanism 'lstm'"):
        run_explorer("lstm", pause=False, out=lambda s: None)
    assert main(["step", "msr", "--d", "3", "--no-pause"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "d must be even" in err
    assert main(["step", "rnn", "--form", "chunkwise", "--no-pause"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "rnn has no form 'chunkwise'; its forms are recurrent" in err
    assert main(["step", "vision", "--form", "recurrent", "--no-pause"]) == 1
    assert "its forms are masa, masa_decomposed, retention_2d" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["step", "lstm"])
    with pytest.raises(SystemExit):
        main(["step", "retention", "--form", "sideways"])


def test_the_first_form_is_the_default(capsys):
    for mechanism in ("attention", "vision"):
        main(["step", mechanism, "--no-pause"])
        default = capsys.readouterr().out
        main(["step", mechanism, "--form", FORMS[mechanism][0], "--no-pause"])
        assert capsys.readouterr().out == default
    assert FORMS["retention"][0] == "recurrent"                 # as before the package


def test_numbers_that_are_not_zero_never_print_as_zero():
    assert fmt("a", np.array([1.5, 2e-4, 0.0])) == "a (3,) = [1.50e+00 2.00e-04 0]"
    assert "x 1e-3" in fmt("small", np.array([0.002, -0.001]))
    assert fmt("z", np.zeros(2)) == "z (2,) = [ 0      0    ]"


STEPPED = [("rnn", "recurrent", "t", True), ("attention", "parallel", "n", False),
           ("attention", "recurrent", "n", True), ("retention", "recurrent", "n", True),
           ("gated", "recurrent", "n", False), ("delta", "recurrent", "t", False)]


@pytest.mark.parametrize(("mechanism", "form", "index", "backward_steps"), STEPPED)
def test_time_is_counted_from_zero_and_backward_is_shown(mechanism, form, index,
                                                         backward_steps, capsys):
    assert main(["step", mechanism, "--form", form, "--backward", "--no-pause", "--T", "3"]) == 0
    forward, backward = capsys.readouterr().out.split("Backward", 1)
    step = re.compile(rf"\] {index} = (\d+):")
    assert step.findall(forward) == ["0", "1", "2"]            # T = 3: steps 0, 1, 2 only
    assert step.findall(backward) == (["2", "1", "0"] if backward_steps else [])
    assert "against" in backward


def test_msr_reports_the_position_after_the_sequence(capsys):
    assert main(["step", "msr", "--backward", "--no-pause", "--T", "3"]) == 0
    out = capsys.readouterr().out
    assert "state after the sequence: position 3" in out and "Backward" in out


def test_attention_shows_scores_before_and_after_the_softmax(capsys):
    main(["step", "attention", "--no-pause"])
    out = capsys.readouterr().out
    assert "Scores before the softmax" in out and "-inf" in out and "Softmax of every row" in out


@pytest.mark.parametrize("mechanism", ["retention", "gated"])
def test_chunkwise_shows_inner_and_cross_parts_of_every_chunk(mechanism, capsys):
    main(["step", mechanism, "--form", "chunkwise", "--T", "5", "--no-pause"])
    lines = capsys.readouterr().out.splitlines()
    for part in ("inner part (", "cross part (", "S handed on: "):
        assert len([line for line in lines if line.startswith(part)]) == 3, part
    assert any("chunk 2: rows 4..4." in line for line in lines)   # the last chunk is shorter


def test_the_backward_state_gradient_is_written_out_beside_the_library(capsys):
    main(["step", "retention", "--form", "chunkwise", "--T", "5", "--backward", "--no-pause"])
    out = capsys.readouterr().out
    assert out.count("G out vs the chunk's dstate_prev.S") == 3
    main(["step", "retention", "--form", "recurrent", "--T", "5", "--backward", "--no-pause"])
    assert "written out vs dstate_prev.S" in capsys.readouterr().out


# --- the vision walk ------------------------------------------------------------------------------

def test_the_grid_of_T_tokens():
    assert [grid_of(T) for T in (1, 4, 5, 6, 12)] == [(1, 1), (2, 2), (1, 5), (2, 3), (3, 4)]


@pytest.mark.parametrize("form", FORMS["vision"])
@pytest.mark.parametrize("T", [4, 6, 12])
def test_the_vision_walk_runs_and_every_check_passes(form, T, capsys):
    assert main(["step", "vision", "--form", form, "--T", str(T), "--d", "3", "--backward",
                 "--no-pause"]) == 0
    out = capsys.readouterr().out
    diffs = differences(out)
    assert len(diffs) >= 5 and max(diffs) < 1e-10
    assert max(len(line) for line in out.splitlines()) <= 80
    for shown in ("Patchify", "(V.1)", "(V.4)", "Gamma vs Gamma^y kron Gamma^x", "Backward"):
        assert shown in out
    expected = {"masa": ["(V.6)", "ln Gamma", "code form vs paper renormalised",
                         "dQ, dK, dV written out vs masa_backward", "full vs decomposed, Q = 0"],
                "masa_decomposed": ["(V.7)", "grid row 0: weights", "grid column 0: weights",
                                    "composed weights times V vs the output",
                                    "dQ, dK, dV vs masa_decomposed_backward",
                                    "full vs decomposed, Q = 0"],
                "retention_2d": ["(V.8)", "(V.9)", "f + f<- - u vs bidirectional_scan",
                                 "parallel vs scans", "dQ, dK, dV, scans vs parallel"]}[form]
    for shown in expected:
        assert shown in out, shown


def test_the_vision_walk_prints_the_library_numbers():
    lines = {}
    for form in FORMS["vision"]:
        lines[form] = []
        run_explorer("vision", form=form, T=6, d=2, seed=1, pause=False,
                     out=lines[form].append)
    rng = np.random.default_rng(1)                        # the walk's own tokens
    q, k = tiny(rng, 1, 1, 6, 2), tiny(rng, 1, 1, 6, 2)
    v = tiny(rng, 1, 1, 6, 2)
    gamma = np.array([0.5])
    text = "\n".join(lines["masa"])
    assert "patch 4 (grid row 1, column 1): pixels [14 15 20 21]" in text    # a 4 x 6 image
    assert fmt("Gamma", manhattan_decay_mask(2, 3, 0.5)) in text
    assert fmt("O", masa_forward(q, k, v, (2, 3), gamma)[0][0, 0]) in lines["masa"]
    assert fmt("O", retention_2d_parallel(q, k, v, (2, 3), gamma)[0][0, 0]) in \
        lines["retention_2d"]


def test_the_delta_walk_shows_an_overwrite(capsys):
    """The second half repeats the first half's keys with beta = 1 somewhere: after such a
    write, what the memory returns for the key is exactly the new value."""
    assert main(["step", "delta", "--no-pause", "--T", "6", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    returned = re.findall(r"k_t S_t: what the memory now returns for k_t \(2,\) = (.*)", out)
    values = re.findall(r"^v_t \(2,\) = (.*)", out, flags=re.M)
    betas = re.findall(r"beta_t = (\S+)", out)
    assert len(returned) == len(values) == len(betas) == 6
    overwrites = [r == v for r, v, b in zip(returned, values, betas) if b == "1"]
    assert overwrites and all(overwrites)
