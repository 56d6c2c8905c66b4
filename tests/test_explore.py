import re

import numpy as np
import pytest

from minirnn import retention_parallel
from minirnn.cli import main
from minirnn.explore import fmt, run_explorer, tiny

CASES = [("rnn", "recurrent"), ("attention", "recurrent")] + \
    [(m, f) for m in ("retention", "msr") for f in ("parallel", "recurrent", "chunkwise")]


@pytest.mark.parametrize(("mechanism", "form"), CASES)
def test_every_mechanism_and_form_runs_and_fits_80_columns(mechanism, form, capsys):
    assert main(["step", mechanism, "--form", form, "--backward", "--no-pause", "--T", "5",
                 "--chunk-size", "2"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    for diff in re.findall(r"difference[^:]*: ([0-9.e+-]+)", out):
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
