import numpy as np
import pytest

from minirnn.optim import SGD, Adam, AdamW, clip_grad_norm, warmup_cosine


def test_sgd_momentum_by_hand():
    params, grads = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, 1.0])}
    opt = SGD(momentum=0.9)
    state = opt.init(params)
    opt.update(params, grads, state, lr=0.1)       # u = g
    np.testing.assert_allclose(params["w"], [0.95, -2.1])
    opt.update(params, grads, state, lr=0.1)       # u = 0.9 g + g = 1.9 g
    np.testing.assert_allclose(params["w"], [0.95 - 0.095, -2.1 - 0.19])


def test_adam_first_step_is_lr_times_sign_and_second_by_hand():
    params, g = {"w": np.array([1.0, -1.0])}, np.array([0.2, -3.0])
    opt = Adam(eps=0.0)
    state = opt.init(params)
    opt.update(params, {"w": g}, state, lr=0.01)   # bias-corrected m / sqrt(v) = sign(g)
    np.testing.assert_allclose(params["w"], [0.99, -0.99])
    g2 = np.array([0.4, 1.0])
    opt.update(params, {"w": g2}, state, lr=0.01)
    m = 0.9 * 0.1 * g + 0.1 * g2
    v = 0.999 * 0.001 * g * g + 0.001 * g2 * g2
    step = 0.01 * (m / (1 - 0.9 ** 2)) / np.sqrt(v / (1 - 0.999 ** 2))
    np.testing.assert_allclose(params["w"], np.array([0.99, -0.99]) - step, rtol=1e-12)


def test_adamw_decouples_weight_decay():
    params = {"w": np.array([2.0])}
    zero = {"w": np.array([0.0])}
    opt = AdamW(weight_decay=0.1)
    state = opt.init(params)
    opt.update(params, zero, state, lr=0.5)        # zero gradient: only the decay acts
    np.testing.assert_allclose(params["w"], [2.0 * (1 - 0.05)])
    coupled = {"w": np.array([2.0])}
    Adam(weight_decay=0.1).update(coupled, zero, Adam().init(coupled), lr=0.5)
    np.testing.assert_allclose(coupled["w"], [1.5])  # L2 through Adam: a full lr-sized step


def test_clip_and_schedule():
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    clipped, norm = clip_grad_norm(grads, 1.0)
    assert norm == 5.0 and np.isclose(np.sqrt(sum(np.sum(g ** 2) for g in clipped.values())), 1)
    assert grads["a"][0] == 3.0                     # input untouched
    same, _ = clip_grad_norm(grads, 10.0)
    np.testing.assert_array_equal(same["b"], grads["b"])
    assert warmup_cosine(0, 1.0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 1.0, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 1.0, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine(110, 1.0, 10, 110, min_lr=0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="grads must have the keys of params"):
        SGD().update({"w": np.zeros(1)}, {"v": np.zeros(1)}, {}, 0.1)
