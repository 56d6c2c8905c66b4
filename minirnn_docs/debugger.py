"""Tutorial 6's debugger sessions: the script, the pdb commands, and a runner.

The tutorial page shows each session exactly as it ran while the docs were built
(:func:`transcript`); ``tests/test_debugger_guide.py`` runs the same commands and checks the
numbers pdb printed against the library. So the guide works verbatim, or the build fails.
Line numbers in breakpoints are looked up in the source (:func:`line_of`), never typed by hand.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import minirnn

SCRIPT = '''\
"""Tutorial 6: a tiny example to step through with pdb.  Run:  python step_example.py"""
import pdb

import numpy as np

import minirnn

rng = np.random.default_rng(0)
x = rng.integers(-2, 3, (1, 3, 2)) / 2.0               # one sequence: T = 3 steps, D = 2
params = minirnn.init_rnn_params(2, 2, seed=0)          # H = 2
q, k, v = rng.integers(-2, 3, (3, 1, 1, 4, 2)) / 2.0   # one head: T = 4, d = dv = 2

pdb.Pdb(skip=["minirnn._checks*", "numpy*"]).set_trace()   # stop here; never in the checks
h, cache = minirnn.rnn_forward(x, np.zeros((1, 2)), params)
dx, dh0, grads = minirnn.rnn_backward(np.ones_like(h), cache)
out, state, ccache = minirnn.retention_chunkwise(q, k, v, 0.5, chunk_size=2)
dq, dk, dv, dstate = minirnn.retention_chunkwise_backward(np.ones_like(out), ccache)
print("done")
'''

ROOT = Path(minirnn.__file__).resolve().parent


def line_of(module: str, text: str) -> int:
    """The number of the one line of ``minirnn/<module>.py`` that contains ``text``."""
    lines = (ROOT / f"{module}.py").read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if text in line]
    if len(hits) != 1:
        raise ValueError(f"{text!r} is on lines {hits} of minirnn/{module}.py, expected one")
    return hits[0]


# What each breakpoint line holds (so the page can say it, and a refactor that moves the line
# still finds it).
RNN_LINE = "da_next_WhT = da[:, t] @ cache.Wh.T"
CHUNK_LINE = "Omega = Omega + carried * (q @ state.S)"
GRAD_LINE = "dS_prev = xi_L[:, None, None] * dstate.S + np.swapaxes(c.q, -1, -2) @ dOmega_x"


def sessions() -> dict[str, list[str]]:
    """The three sessions of the page, as the commands typed at the ``(Pdb)`` prompt."""
    rnn = line_of("rnn", RNN_LINE)
    chunk = line_of("retention", CHUNK_LINE)
    grad = line_of("retention", GRAD_LINE)
    return {
        "rnn": [
            "b minirnn.rnn.rnn_backward",        # a function breakpoint: minirnn is imported
            f"b minirnn/rnn.py:{rnn}",           # a file:line breakpoint inside the BPTT loop
            "s", "s", "s",                       # into rnn_forward, to its check, over it
            "n", "n", "display h_t.round(4).tolist()",   # xw for every step; then watch h_t
            "n", "n", "until",                   # one pass of the loop body, then the rest
            "n", "p h[0]",
            "c", "c", "p t, delta, da[:, t]",    # t = 2, the last step, comes first
            "c", "p t, delta, da[:, t]",         # t = 1: delta now carries da_2 Wh^T back
            "disable 1 2", "c",
        ],
        "chunkwise": [
            "b minirnn.retention.retention_chunkwise",
            f"b minirnn/retention.py:{chunk}",
            "c", "c",                            # its check line, then chunk 0's carried share
            "p state.position", "p f.Gamma[0]", "p R[0, 0]", "p state.S[0, 0]",
            "c", "p state.position", "p state.S[0, 0]",    # chunk 1 gets chunk 0's state
            "p Omega[0, 0]", "n", "p Omega[0, 0]",   # its own part, then with the carried share
            "disable 1 2", "c",
        ],
        "backward": [
            f"b minirnn/retention.py:{grad}",
            "c", "p dstate.S[0, 0]",             # the last chunk: nothing reaches its state
            "n", "p dS_prev[0, 0]",              # what reaches the state it received
            "c", "p dstate.S[0, 0]", "n", "p dS_prev[0, 0]",   # chunk 0: handed back, decayed
            "disable 1", "c",
        ],
    }


def run(commands: list[str], workdir: Path | None = None) -> str:
    """Run the script under pdb with ``commands`` on standard input; returns pdb's output as a
    transcript with each command shown after its prompt and paths relative to the project."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(workdir or tmp)
        (where / "step_example.py").write_text(SCRIPT)
        done = subprocess.run([sys.executable, "step_example.py"], cwd=where, text=True,
                              input="\n".join(commands) + "\n", capture_output=True,
                              timeout=120)
        output = done.stdout.replace(str(where) + "/", "").replace(str(ROOT.parent) + "/", "")
    if done.returncode != 0:
        raise RuntimeError(f"the pdb session failed:\n{output}\n{done.stderr}")
    parts = output.split("(Pdb) ")
    shown = [parts[0]]
    for command, part in zip(commands, parts[1:]):
        shown.append(f"(Pdb) {command}\n{part}")
    return "".join(shown).rstrip() + "\n"


def transcript(name: str) -> str:
    """The session ``name`` as it runs now (the tutorial page prints this at build time)."""
    return run(sessions()[name])
