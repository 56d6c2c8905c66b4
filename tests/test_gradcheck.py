import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirnn import check_gradients, numerical_gradient, rel_error


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    dout = np.array([[1.0, 2.0], [-1.0, 0.5]])
    grad = numerical_gradient(lambda z: np.sin(z), x, dout)
    np.testing.assert_allclose(grad, np.cos(x) * dout, rtol=1e-9, atol=1e-10)


def test_numerical_gradient_restores_x_even_when_f_raises():
    x = np.array([1.0, 2.0])
    calls = []

    def f(z):
        calls.append(z.copy())
        if len(calls) == 2:
            raise RuntimeError("boom")
        return z

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x, np.ones(2))
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_only_the_first_call_is_checked_but_a_line_typed_at_a_prompt_always_is():
    """The nudged calls skip minirnn's input checks (a NaN passed inside them goes through),
    except for code compiled from a prompt's pseudo-file, as pdb compiles a typed line."""
    from minirnn import rnn_step_forward
    from minirnn.rnn import init_rnn_params

    params, h = init_rnn_params(2, 3), np.zeros((1, 3))
    bad = np.array([[np.nan, 0.0]])
    typed = compile("rnn_step_forward(bad, h, params)", "<stdin>", "eval")
    outcomes = []

    def f(z):
        if outcomes:                                     # a nudged call
            try:
                rnn_step_forward(bad, h, params)         # from this file: not checked
                eval(typed, {"rnn_step_forward": rnn_step_forward, "bad": bad, "h": h,
                             "params": params})
                outcomes.append("typed line not checked")
            except ValueError as error:
                outcomes.append(str(error).split(":")[0])
        else:
            outcomes.append("first")
        return 2.0 * z

    grad = numerical_gradient(f, np.ones(2), np.ones(2))
    np.testing.assert_allclose(grad, [2.0, 2.0])
    assert outcomes == ["first"] + ["rnn_step_forward"] * 4
    with pytest.raises(ValueError, match="rnn_step_forward: x contains 1 non-finite"):
        rnn_step_forward(bad, h, params)                 # checked again afterwards


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=6))
def test_rel_error_is_zero_for_equal_and_bounded(values):
    a = np.array(values)
    assert rel_error(a, a) == 0.0
    assert 0.0 <= rel_error(a, -a) <= 1.0
    if np.any(a != 0):
        assert rel_error(a, -a) == 1.0  # opposite signs share nothing


def test_rel_error_of_zero_arrays_and_shape_mismatch():
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        rel_error(np.zeros(3), np.zeros(4))


def _square_forward(x, params=None):
    scale = 1.0 if params is None else params["w"]
    return scale * x ** 2, (x, scale)


def test_check_gradients_accepts_a_right_backward_and_flags_a_wrong_one():
    x = np.random.default_rng(0).standard_normal((3, 2))
    right = check_gradients(_square_forward, lambda d, c: 2 * c[0] * d, {"x": x})
    assert right["x"] < 1e-9
    wrong = check_gradients(_square_forward, lambda d, c: c[0] * d, {"x": x})  # forgot the 2
    assert wrong["x"] > 0.1


def test_check_gradients_with_params_and_count_mismatch():
    x = np.random.default_rng(1).standard_normal(4)
    params = {"w": np.array(1.5)}

    def backward(d, c):
        x, w = c
        return 2 * w * x * d, {"w": np.sum(x ** 2 * d)}

    report = check_gradients(_square_forward, backward, {"x": x}, params)
    assert set(report) == {"x", "params['w']"} and max(report.values()) < 1e-9
    with pytest.raises(ValueError, match="returned 1 values, expected 2"):
        check_gradients(_square_forward, lambda d, c: 2 * c[0] * d, {"x": x}, params)
