"""Whole-model gradients against finite differences, decoding equals recomputation, and the
RetNet model trains with identical gradients in every form."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirnn import numerical_gradient, rel_error
from minirnn.blocks import count_parameters
from minirnn.layers import IGNORE_INDEX
from minirnn.models import (
    DeltaNetConfig,
    GatedConfig,
    GatedDeltaNetConfig,
    GRUConfig,
    LSTMConfig,
    MinGRUConfig,
    RetNetConfig,
    RNNConfig,
    TransformerConfig,
)
from minirnn.registry import build_model, init

V = 7
TINY = [RNNConfig(V, d_model=4, hidden=5),
        TransformerConfig(V, d_model=4, n_heads=2, n_layers=2, d_ff=6, max_len=16),
        RetNetConfig(V, d_model=4, n_heads=2, n_layers=2, dv=3, d_ff=6, form="chunkwise",
                     chunk_size=2),
        GatedConfig(V, d_model=4, n_heads=2, n_layers=2, dv=3, d_ff=6, form="chunkwise",
                    chunk_size=2, tau=2.0),
        DeltaNetConfig(V, d_model=4, n_heads=2, n_layers=2, dv=3, d_ff=6, form="chunkwise",
                       chunk_size=2),
        GatedDeltaNetConfig(V, d_model=4, n_heads=2, n_layers=2, dv=3, d_ff=6, form="parallel",
                            tau=2.0),
        LSTMConfig(V, d_model=4, hidden=5),
        GRUConfig(V, d_model=4, hidden=5, reset="after"),
        GRUConfig(V, d_model=4, hidden=3, reset="before"),
        MinGRUConfig(V, d_model=4, hidden=5, form="parallel")]


def batch(seed, B=2, T=5):
    rng = np.random.default_rng(seed)
    tokens, targets = rng.integers(0, V, (2, B, T))
    targets[0, 0] = IGNORE_INDEX
    return tokens, targets


@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@pytest.mark.parametrize("config", TINY, ids=lambda c: c.kind)
def test_whole_model_gradcheck(config):
    model = build_model(config)
    params = model.init(seed=1, dtype=np.float64)
    tokens, targets = batch(0)
    _, grads = model.loss_and_grads(params, tokens, targets)
    assert set(grads) == set(params)
    largest = max(np.abs(g).max() for g in grads.values())
    for key, w in params.items():
        num = numerical_gradient(lambda z, key=key: np.array(
            model.loss_and_grads({**params, key: z}, tokens, targets)[0]), w, np.array(1.0))
        # the loss is one number of size ~2, so finite differences are good to ~1e-10
        # absolute; arrays far smaller than the largest gradient are judged absolutely
        err = np.max(np.abs(grads[key] - num)) / max(np.max(np.abs(grads[key]) + np.abs(num)),
                                                     1e-2 * largest)
        assert err < 1e-6, (key, err)


@pytest.mark.parametrize("config", TINY, ids=lambda c: c.kind)
@given(seed=st.integers(0, 2**16), split=st.integers(1, 6))
def test_cached_decoding_gives_the_logits_of_the_full_forward(config, seed, split):
    model = build_model(config)
    params = model.init(seed=seed % 7, dtype=np.float64)
    tokens = np.random.default_rng(seed).integers(0, V, (2, 7))
    full, _ = model.forward(params, tokens)
    logits, state = model.start(params, tokens[:, :split])
    steps = [logits]
    for t in range(split, 7):
        logits, state = model.step(params, tokens[:, t], state)
        steps.append(logits[:, None])
    assert rel_error(np.concatenate(steps, axis=1), full) <= 1e-12


def test_retnet_forms_give_identical_gradients():
    tokens, targets = batch(3, T=9)
    base = TINY[2]
    results = {}
    for form, chunk in (("parallel", 1), ("chunkwise", 4), ("recurrent", 1)):
        config = RetNetConfig(**{**base.__dict__, "form": form, "chunk_size": chunk})
        model = build_model(config)
        params = model.init(seed=2, dtype=np.float64)
        results[form] = model.loss_and_grads(params, tokens, targets)
    loss, grads = results["parallel"]
    for form in ("chunkwise", "recurrent"):
        assert abs(results[form][0] - loss) <= 1e-12 * abs(loss)
        for key in grads:
            assert rel_error(results[form][1][key], grads[key]) <= 1e-10, (form, key)


def test_init_dtype_counts_and_errors():
    params = init(TINY[1], seed=0)
    assert all(v.dtype == np.float32 for v in params.values())
    assert count_parameters(params) == sum(v.size for v in params.values())
    model = build_model(TINY[1])
    with pytest.raises(ValueError, match="longer than max_len = 16"):
        model.forward(params, np.zeros((1, 17), dtype=int))
    with pytest.raises(ValueError, match=r"tokens has ids outside \[0, 7\)"):
        model.forward(params, np.full((1, 3), 9))
    with pytest.raises(TypeError, match="build_model: expected"):
        build_model({"kind": "rnn"})
