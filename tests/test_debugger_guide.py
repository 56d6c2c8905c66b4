"""Tutorial 6's pdb sessions work verbatim: the commands on the page are fed to pdb on standard
input, and every number pdb prints is checked against the library (computed another way)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minirnn as m

debugger = pytest.importorskip("minirnn_docs.debugger")
# pdb prints arrays with 8 significant digits: compared to 1e-6 relative, 1e-8 absolute
NUMBER = re.compile(r"-?\d+\.?\d*(?:e[-+]?\d+)?")


def answers(transcript: str, command: str) -> list[str]:
    """What pdb printed after each time ``command`` was typed (source lines left out)."""
    found = []
    for block in transcript.split("(Pdb) ")[1:]:
        typed, _, printed = block.partition("\n")
        if typed == command:
            found.append("\n".join(line for line in printed.splitlines()
                                   if not line.startswith(("->", ">"))))
    assert found, f"{command!r} is not in the session"
    return found


def numbers(text: str) -> np.ndarray:
    return np.array([float(x) for x in NUMBER.findall(text)])


def example():
    """The inputs of the page's script, made the same way."""
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, (1, 3, 2)) / 2.0
    params = m.init_rnn_params(2, 2, seed=0)
    q, k, v = rng.integers(-2, 3, (3, 1, 1, 4, 2)) / 2.0
    return x, params, q, k, v


def test_script_on_the_page_is_the_one_that_runs():
    assert "pdb.Pdb(skip=[\"minirnn._checks*\", \"numpy*\"])" in debugger.SCRIPT


def test_rnn_session():
    text = debugger.transcript("rnn")
    x, params, *_ = example()
    # an independent forward and BPTT, step by step
    h, h_t = [], np.zeros((1, 2))
    for t in range(3):
        h_t = np.tanh(x[:, t] @ params["Wx"] + h_t @ params["Wh"] + params["b"])
        h.append(h_t)
    da, carry, expected = {}, np.zeros((1, 2)), []
    for t in reversed(range(3)):
        delta = 1.0 + carry
        da[t] = delta * (1 - h[t] ** 2)
        expected.append(np.concatenate([[t], delta.ravel(), da[t].ravel()]))
        carry = da[t] @ params["Wh"].T
    printed = answers(text, "p t, delta, da[:, t]")
    assert len(printed) == 2
    for got, want in zip(printed, expected):
        np.testing.assert_allclose(numbers(got), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(numbers(answers(text, "p h[0]")[0]),
                               np.concatenate(h).ravel(), rtol=1e-6, atol=1e-8)
    # the third `s` lands on the first equation, past the check line
    steps = text.split("(Pdb) s\n")
    assert "check.rnn_forward" in steps[2] and "(RNN.1)" not in steps[2]
    assert 'xw = x @ params["Wx"] + params["b"]' in steps[3]
    assert "until" in text and "done" in text.splitlines()[-1]


def test_chunkwise_session():
    text = debugger.transcript("chunkwise")
    _, _, q, k, v = example()
    assert [numbers(a).tolist() for a in answers(text, "p state.position")] == [[0], [2]]
    qs = q[0, 0] / np.sqrt(2)
    gamma_mask = np.array([[1.0, 0.0], [0.5, 1.0]])
    np.testing.assert_allclose(numbers(answers(text, "p f.Gamma[0]")[0]), gamma_mask.ravel())
    kappa = 1 / np.sqrt(np.cumsum(0.5 ** np.arange(2)))          # chunk 0: s_n = 1, 1.5
    R = (qs[:2] @ k[0, 0, :2].T) * gamma_mask * kappa[:, None]
    np.testing.assert_allclose(numbers(answers(text, "p R[0, 0]")[0]), R.ravel(),
                               rtol=1e-6, atol=1e-8)
    # the state handed to chunk 1, by the recurrence S_n = gamma S_(n-1) + k_n^T v_n
    S = np.zeros((2, 2))
    states = []
    for n in range(4):
        S = 0.5 * S + np.outer(k[0, 0, n], v[0, 0, n])
        states.append(S)
    carried = answers(text, "p state.S[0, 0]")
    np.testing.assert_allclose(numbers(carried[0]), 0.0)           # nothing before chunk 0
    np.testing.assert_allclose(numbers(carried[1]), states[1].ravel(), rtol=1e-6, atol=1e-8)
    # Omega after the carried share is added: the chunk's own part plus kappa xi q' S_prev
    s_global = 0.5 ** np.arange(1, 3) * 1.5 + np.cumsum(0.5 ** np.arange(2))   # chunk 1
    own = ((qs[2:] @ k[0, 0, 2:].T) * gamma_mask / np.sqrt(s_global)[:, None]) @ v[0, 0, 2:]
    cross = (0.5 ** np.arange(1, 3) / np.sqrt(s_global))[:, None] * (qs[2:] @ states[1])
    before, after = (numbers(a) for a in answers(text, "p Omega[0, 0]"))
    np.testing.assert_allclose(before, own.ravel(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(after, (own + cross).ravel(), rtol=1e-6, atol=1e-8)


def test_backward_session():
    text = debugger.transcript("backward")
    _, _, q, k, v = example()
    received = [numbers(a) for a in answers(text, "p dstate.S[0, 0]")]
    handed = [numbers(a) for a in answers(text, "p dS_prev[0, 0]")]
    np.testing.assert_allclose(received[0], 0.0)                # nothing after the last chunk
    # what reaches the state chunk 1 received = the gradient of a call continuing that state
    _, after0, _ = m.retention_recurrent(q[..., :2, :], k[..., :2, :], v[..., :2, :], 0.5)
    out1, _, c1 = m.retention_recurrent(q[..., 2:, :], k[..., 2:, :], v[..., 2:, :], 0.5,
                                        state=after0)
    dS1 = m.retention_recurrent_backward(np.ones_like(out1), c1)[3].S[0, 0].ravel()
    np.testing.assert_allclose(handed[0], dS1, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(received[1], dS1, rtol=1e-6, atol=1e-8)   # handed back
    out, _, c = m.retention_recurrent(q, k, v, 0.5)
    np.testing.assert_allclose(handed[1], m.retention_recurrent_backward(
        np.ones_like(out), c)[3].S[0, 0].ravel(), rtol=1e-6, atol=1e-8)
