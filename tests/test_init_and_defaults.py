"""Initialisations have the statistics their docstrings promise, documented defaults are the
defaults, and the KV cache grows as documented. (Written to kill mutants that no other test
noticed: a wrong gain or default gives correct gradients, so gradient checks cannot see it.)"""

import numpy as np
import pytest

import minirnn as m

rng = np.random.default_rng(0)


def close_std(W, expected):
    """The sample standard deviation of many entries is within 4% of ``expected``."""
    assert W.size >= 4000
    assert abs(W.std() / expected - 1) < 0.04, (W.std(), expected)


def test_rnn_init():
    D, H = 200, 100
    p = m.init_rnn_params(D, H)
    close_std(p["Wx"], 1 / np.sqrt(D))
    np.testing.assert_allclose(p["Wh"] @ p["Wh"].T, np.eye(H), atol=1e-12)   # orthogonal
    assert np.all(p["b"] == 0)


def test_mha_init():
    D = 96
    p = m.init_mha_params(D, 4)
    for name in ("Wq", "Wk", "Wv", "Wo"):
        close_std(p[name], 1 / np.sqrt(D))
    for name in ("bq", "bv", "bo"):
        assert np.all(p[name] == 0) and p[name].shape == (D,)
    assert set(m.init_mha_params(D, 4, bias=False)) == {"Wq", "Wk", "Wv", "Wo"}


def test_msr_init():
    D, h, dv = 128, 4, 40
    E = h * dv
    p = m.init_msr_params(D, h, dv)
    xavier = {"Wq": (D, D, 2 ** -2.5), "Wk": (D, D, 2 ** -2.5), "Wv": (D, E, 2 ** -2.5),
              "Wg": (D, E, 2 ** -2.5), "Wo": (E, D, 2 ** -1)}
    for name, (fan_in, fan_out, gain) in xavier.items():
        assert p[name].shape == (fan_in, fan_out)
        close_std(p[name], gain * np.sqrt(2 / (fan_in + fan_out)))
        assert abs(p[name].mean()) < 0.1 * p[name].std()
    assert np.all(p["gn_w"] == 1) and np.all(p["gn_b"] == 0) and p["gn_w"].shape == (h, dv)


@pytest.mark.parametrize("init", [lambda **kw: m.init_rnn_params(3, 4, **kw),
                                  lambda **kw: m.init_mha_params(4, 2, **kw),
                                  lambda **kw: m.init_msr_params(4, 2, 3, **kw)],
                         ids=["rnn", "mha", "msr"])
def test_init_seed_and_dtype(init):
    default, zero, one = init(), init(seed=0), init(seed=1)
    assert all(np.array_equal(default[k], zero[k]) for k in default)      # default seed is 0
    assert any(not np.array_equal(default[k], one[k]) for k in default)
    assert all(v.dtype == np.float64 for v in default.values())
    assert all(v.dtype == np.float32 for v in init(dtype=np.float32).values())


def test_documented_defaults():
    x = rng.standard_normal((2, 3, 4)) * 1e-3       # small: eps matters
    p = {"w": rng.standard_normal(4), "b": rng.standard_normal(4)}
    assert np.array_equal(m.layer_norm_forward(x, p)[0], m.layer_norm_forward(x, p, 1e-5)[0])
    assert not np.allclose(m.layer_norm_forward(x, p)[0], m.layer_norm_forward(x, p, 1e-3)[0])
    xg = rng.standard_normal((2, 3, 2, 4)) * 1e-3
    w, b = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    assert np.array_equal(m.group_norm_forward(xg, w, b)[0],
                          m.group_norm_forward(xg, w, b, 1e-5)[0])
    xr = rng.standard_normal((2, 5, 4))
    assert np.array_equal(m.rotate(xr), m.rotate(xr, start=0))
    assert np.array_equal(m.rotate(xr[:, :1]), xr[:, :1])        # position 0: no rotation
    assert m.init_kv_cache(2, 4, 2).k.shape == (2, 2, 64, 2)     # capacity 64
    assert m.init_kv_cache(2, 4, 2).length == 0
    assert m.IGNORE_INDEX == -100


def test_rotation_angles():
    """theta_i = 10000^(-i / (d/2 - 1)): from 1 down to 1e-4 (eq. M.2)."""
    theta = m.rotation_angles(8)
    np.testing.assert_allclose(theta, 10000.0 ** -np.linspace(0, 1, 4), rtol=1e-15)
    assert theta[0] == 1.0 and np.isclose(theta[-1], 1e-4)


def test_kv_cache_doubles_when_full():
    cache = m.init_kv_cache(1, 4, 2, capacity=4)
    k = rng.standard_normal((1, 2, 3, 2))
    cache.append(k, k)
    assert cache.k.shape[2] == 4 and cache.length == 3            # fits: no growth
    cache.append(k[:, :, :1], k[:, :, :1])
    assert cache.k.shape[2] == 4 and cache.length == 4            # exactly full: no growth
    cache.append(k[:, :, :1], k[:, :, :1])
    assert cache.k.shape[2] == 8 and cache.length == 5            # doubled
    big = rng.standard_normal((1, 2, 20, 2))
    cache.append(big, big)
    assert cache.k.shape[2] == 25 and cache.length == 25          # more than double: exact
    np.testing.assert_array_equal(cache.keys[:, :, 5:], big)
    np.testing.assert_array_equal(cache.values[:, :, :3], k)
