"""Every public array function, given one wrong argument, either works (and returns finite
numbers) or raises ValueError/TypeError naming that argument; never an IndexError, a
broadcasting error from deep inside, or silent NaN. Some mistakes must always raise (an empty
axis, integer or complex data); non-contiguous and read-only arrays must always work; an extra
or missing leading axis may be fine for functions that accept any leading axes."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import minirnn as m

rng = np.random.default_rng(0)
B, T, D, H, h, d, dv = 2, 5, 4, 3, 2, 2, 3


def r(*shape):
    return rng.standard_normal(shape)


# name -> (function, dict of keyword arguments that make a valid call)
GAMMA = np.array([0.5, 0.9])
QKV = dict(q=r(B, h, T, d), k=r(B, h, T, d), v=r(B, h, T, dv))
CALLS = {
    "rnn_step_forward": (m.rnn_step_forward, dict(x=r(B, D), h_prev=r(B, H),
                                                  params=m.init_rnn_params(D, H))),
    "rnn_forward": (m.rnn_forward, dict(x=r(B, T, D), h0=r(B, H),
                                        params=m.init_rnn_params(D, H))),
    "softmax_forward": (m.softmax_forward, dict(x=r(B, T))),
    "attention_forward": (m.attention_forward, dict(QKV)),
    "mha_forward": (m.mha_forward, dict(x=r(B, T, D), params=m.init_mha_params(D, h),
                                        n_heads=h)),
    "mha_step": (m.mha_step, dict(x=r(B, D), params=m.init_mha_params(D, h), n_heads=h)),
    "retention_parallel": (m.retention_parallel, dict(QKV, gamma=GAMMA)),
    "retention_recurrent": (m.retention_recurrent, dict(QKV, gamma=GAMMA)),
    "retention_chunkwise": (m.retention_chunkwise, dict(QKV, gamma=GAMMA, chunk_size=2)),
    "retention_final_state": (m.retention_final_state, dict(k=QKV["k"], v=QKV["v"],
                                                            gamma=GAMMA)),
    "msr_forward": (m.msr_forward, dict(x=r(B, T, D), params=m.init_msr_params(D, h, dv),
                                        n_heads=h)),
    "msr_step": (m.msr_step, dict(x=r(B, D), params=m.init_msr_params(D, h, dv), n_heads=h)),
    "group_norm_forward": (m.group_norm_forward, dict(x=r(B, T, h, dv), w=r(h, dv),
                                                      b=r(h, dv))),
    "rotate": (m.rotate, dict(x=r(B, T, d))),
    "decay_mask": (m.decay_mask, dict(gamma=0.5, T=T)),
    "linear_forward": (m.linear_forward, dict(x=r(B, T, D), params={"W": r(D, H), "b": r(H)})),
    "layer_norm_forward": (m.layer_norm_forward, dict(x=r(B, T, D),
                                                      params={"w": r(D), "b": r(D)})),
    "ffn_forward": (m.ffn_forward, dict(x=r(B, T, D), params={"W1": r(D, 6), "b1": r(6),
                                                              "W2": r(6, D), "b2": r(D)})),
    "gelu_forward": (m.gelu_forward, dict(x=r(B, T))),
    "embedding_forward": (m.embedding_forward, dict(tokens=rng.integers(0, 7, (B, T)),
                                                    W=r(7, D))),
    "cross_entropy": (m.cross_entropy, dict(logits=r(B, T, 7),
                                            targets=rng.integers(0, 7, (B, T)))),
}


def mutations(value):
    """Wrong versions of one array argument: (label, new value, must it still work?)."""
    if isinstance(value, dict):
        key = sorted(value)[0]
        yield "missing key", {k: v for k, v in value.items() if k != key}, False
        yield "wrong shape in dict", {**value, key: np.zeros((7,) * np.ndim(value[key]))}, False
        return
    if not isinstance(value, np.ndarray):
        return
    strided = np.repeat(value, 2, axis=-1)[..., ::2] if value.ndim else value
    yield "non-contiguous", strided, True
    ro = value.copy()
    ro.flags.writeable = False
    yield "read-only", ro, True
    yield "extra axis", value[None], None
    if value.ndim > 1:
        yield "missing axis", value[0], None
    if value.ndim:
        yield "empty axis", value[..., :0], False
    if value.dtype.kind == "f":
        for dt in (np.int64, np.bool_, np.complex128, object):
            yield f"dtype {np.dtype(dt)}", value.astype(dt), None if dt is np.int64 else False


CASES = [(name, arg, label, bad, works) for name, (f, kw) in CALLS.items()
         for arg, val in kw.items() for label, bad, works in mutations(val)]


@pytest.mark.parametrize(("name", "arg", "label", "bad", "works"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_bad_argument(name, arg, label, bad, works):
    f, kw = CALLS[name]
    try:
        result = f(**{**kw, arg: bad})
    except (ValueError, TypeError) as err:
        assert works is not True, f"{label} must work, got {err}"
        assert arg in str(err), f"the message does not name {arg!r}: {err}"
        return
    assert works is not False, f"{label} was accepted silently"
    arrays = [a for a in (result if isinstance(result, tuple) else (result,))
              if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    assert all(np.all(np.isfinite(a)) for a in arrays), "non-finite output"


# backward functions: the upstream gradient must match the forward output
BACKWARDS = {
    "rnn_step_backward": (m.rnn_step_backward, "rnn_step_forward", lambda out: out[1]),
    "rnn_backward": (m.rnn_backward, "rnn_forward", lambda out: out[1]),
    "softmax_backward": (m.softmax_backward, "softmax_forward", lambda out: out[1]),
    "attention_backward": (m.attention_backward, "attention_forward", lambda out: out[1]),
    "mha_backward": (m.mha_backward, "mha_forward", lambda out: out[1]),
    "retention_parallel_backward": (m.retention_parallel_backward, "retention_parallel",
                                    lambda out: out[2]),
    "retention_recurrent_backward": (m.retention_recurrent_backward, "retention_recurrent",
                                     lambda out: out[2]),
    "retention_chunkwise_backward": (m.retention_chunkwise_backward, "retention_chunkwise",
                                     lambda out: out[2]),
    "msr_backward": (m.msr_backward, "msr_forward", lambda out: out[2]),
    "group_norm_backward": (m.group_norm_backward, "group_norm_forward", lambda out: out[1]),
    "linear_backward": (m.linear_backward, "linear_forward", lambda out: out[1]),
    "layer_norm_backward": (m.layer_norm_backward, "layer_norm_forward", lambda out: out[1]),
    "ffn_backward": (m.ffn_backward, "ffn_forward", lambda out: out[1]),
    "gelu_backward": (m.gelu_backward, "gelu_forward", lambda out: out[1]),
    "embedding_backward": (m.embedding_backward, "embedding_forward", lambda out: out[1]),
}


def wrong_upstream(shape):
    """(label, gradient) pairs that do not fit an output of ``shape``."""
    good = np.ones(shape)
    yield "extra axis", good[None]
    yield "one size off", np.ones((shape[0] + 1, *shape[1:]))
    yield "integer", good.astype(np.int64)
    yield "empty", good[..., :0]


BACKWARD_CASES = [(name, label) for name in BACKWARDS for label, _ in wrong_upstream((2, 3))]


@pytest.mark.parametrize(("name", "label"), BACKWARD_CASES,
                         ids=[f"{n}-{label}" for n, label in BACKWARD_CASES])
def test_backward_rejects_a_gradient_of_the_wrong_shape(name, label):
    backward, forward_name, get_cache = BACKWARDS[name]
    f, kw = CALLS[forward_name]
    out = f(**kw)
    y = out[0]
    bad = dict(wrong_upstream(y.shape))[label]
    with pytest.raises((ValueError, TypeError)) as err:
        backward(bad, get_cache(out))
    message = str(err.value)
    assert any(word in message for word in ("dy", "dout", "dh")), message
    backward(np.ones_like(y), get_cache(out))                    # the right shape works


# --- the exact messages ---------------------------------------------------------------------

GOLDEN = Path(__file__).parent / "golden" / "error_messages.json"


def all_messages() -> dict[str, str]:
    """The error message of every case above that raises, by case id."""
    messages = {}
    for name, arg, label, bad, _ in CASES:
        f, kw = CALLS[name]
        try:
            f(**{**kw, arg: bad})
        except (ValueError, TypeError) as err:
            messages[f"{name}-{arg}-{label}"] = f"{type(err).__name__}: {err}"
    for name, label in BACKWARD_CASES:
        backward, forward_name, get_cache = BACKWARDS[name]
        f, kw = CALLS[forward_name]
        out = f(**kw)
        try:
            backward(dict(wrong_upstream(out[0].shape))[label], get_cache(out))
        except (ValueError, TypeError) as err:
            messages[f"{name}-{label}"] = f"{type(err).__name__}: {err}"
    return messages


def test_error_messages_are_the_reviewed_ones():
    """Every message above, word for word, as reviewed in tests/golden/error_messages.json:
    a change to a message shows up in review. After changing messages on purpose, run
    ``MINIRNN_UPDATE_GOLDEN=1 python -m pytest tests/test_bad_inputs.py`` and read the diff."""
    messages = all_messages()
    if os.environ.get("MINIRNN_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(messages, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    changed = {k: (golden.get(k), v) for k, v in messages.items() if golden.get(k) != v}
    assert not changed and set(golden) == set(messages), \
        f"{len(changed)} messages differ from {GOLDEN.name}: {next(iter(changed.items()), None)}"
