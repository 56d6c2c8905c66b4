import re

import numpy as np
import pytest

from minirnn import retention_parallel
from minirnn.cli import main
from minirnn.explore import fmt, run_explorer, tiny

CASES = [("rnn", "recurrent"), ("attention", "recurrent")] + \
    [(m, f) for m in ("retention", "msr", "gated") for f in ("parallel", "recurrent", "chunkwise")]


@pytest.mark.parametrize(("mechanism", "form"), CASES)
def test_every_mechanism_and_form_runs_and_fits_80_columns(mechanism, form, capsys):
    assert main(["step", mechanism, "--form", form, "--backward", "--no-pause", "--T", "5",
                 "--chunk-size", "2"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    diffs = re.findall(r"difference[^:]*: (\S+)", out)   # any token: a 'nan' must fail too
    assert len(diffs) == 2, diffs            # the forward check and the backward check
    for diff in diffs:
        assert float(diff) <= 1e-12          # the forms tie together


def test_printed_numbers_are_the_library_outputs():
    lines = []
    run_explorer("retention", form="recurrent", T=4, d=2, seed=3, pause=False,
                 out=lines.append)
    rng = np.random.default_rng(3)                     # the explorer's own inputs
    q, k = tiny(rng, 1, 1, 4, 2), tiny(rng, 1, 1, 4, 2)
    v = tiny(rng, 1, 1, 4, 2)
    out, _ = retention_parallel(q, k, v, np.array([0.5]))
    assert fmt("parallel", out[0, 0]) in lines


def test_interactive_quit_and_bad_options(capsys):
    answers = iter(["", "q"])
    shown = run_explorer("rnn", pause=True, out=lambda s: None, ask=lambda _: next(answers))
    assert shown == 2
    with pytest.raises(ValueError, match="keep the example tiny"):
        run_explorer("rnn", T=50, pause=False, out=lambda s: None)
    assert main(["step", "msr", "--d", "3", "--no-pause"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "d must be even" in err
    with pytest.raises(SystemExit):
        main(["step", "lstm"])


def test_numbers_that_are_not_zero_never_print_as_zero():
    assert fmt("a", np.array([1.5, 2e-4, 0.0])) == "a (3,) = [1.50e+00 2.00e-04 0]"
    assert "x 1e-3" in fmt("small", np.array([0.002, -0.001]))
    assert fmt("z", np.zeros(2)) == "z (2,) = [ 0      0    ]"


# the steps each explorer numbers at T = 3, forward and backward (attention's backward and all
# of msr work on whole arrays, without numbered steps)
STEPS = {"rnn": (["0", "1", "2"], ["2", "1", "0"]), "attention": (["0", "1", "2"], []),
         "retention": (["0", "1", "2"], ["2", "1", "0"]), "msr": ([], [])}


@pytest.mark.parametrize("mechanism", sorted(STEPS))
def test_time_is_counted_from_zero_and_backward_is_shown(mechanism, capsys):
    assert main(["step", mechanism, "--backward", "--no-pause", "--T", "3"]) == 0
    out = capsys.readouterr().out
    forward, backward = out.split("Backward")
    numbered = [re.findall(r"^\[\d+\] [tn] = (\d+):", part, re.M) for part in (forward, backward)]
    assert tuple(numbered) == STEPS[mechanism]                       # 0-based steps, in order
    assert not re.search(r"\bt = 3\b|\bn = 3\b", out)                 # T = 3: 0, 1, 2 only
    assert "Backward" in out and "against" in out


def test_attention_shows_scores_before_and_after_the_softmax(capsys):
    main(["step", "attention", "--no-pause"])
    out = capsys.readouterr().out
    assert "Scores before the softmax" in out and "-inf" in out and "Softmax of every row" in out


def test_chunkwise_shows_inner_and_cross_parts_of_every_chunk(capsys):
    main(["step", "retention", "--form", "chunkwise", "--T", "5", "--no-pause"])
    out = capsys.readouterr().out
    assert out.count("inner part (") == 3 and out.count("cross part (") == 3
    assert "S handed on" in out
