"""Vision: patches are a reshape and the embedding a convolution; positions are what breaks
permutation equivariance; the Manhattan decay factorises; full and decomposed MaSA agree exactly
when they should and not otherwise; softmax-free 2-D retention has an exact scan form; ViR's
class token must go last. Every backward is gradchecked, down to the pixels."""

import numpy as np
import pytest
from helpers import GRAD_FLOOR, assert_gradcheck
from hypothesis import given
from hypothesis import strategies as st

from minirnn import (
    RMT,
    RelationTask,
    RMTConfig,
    ShapesTask,
    ViR,
    ViRConfig,
    ViT,
    ViTConfig,
    bidirectional_scan,
    check_gradients,
    decayed_attention_backward,
    decayed_attention_forward,
    manhattan_decay_mask,
    masa_backward,
    masa_decomposed_backward,
    masa_decomposed_forward,
    masa_forward,
    patchify,
    rel_error,
    retention_2d_parallel,
    retention_2d_parallel_backward,
    retention_2d_scan,
    retention_2d_scan_backward,
    unpatchify,
    vision_embed_backward,
    vision_embed_forward,
    vision_mix_backward,
    vision_mix_forward,
)
from minirnn.blocks import blocks_forward

TOL = 1e-10


@st.composite
def images(draw):
    P = draw(st.integers(1, 4))
    gh, gw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    B, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.standard_normal((B, gh * P, gw * P, C)), P


@st.composite
def grids(draw, max_side=4):
    H, W = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    h = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    B, d, dv = draw(st.integers(1, 2)), draw(st.sampled_from([2, 4])), draw(st.integers(1, 3))
    q, k = rng.standard_normal((2, B, h, H * W, d))
    v = rng.standard_normal((B, h, H * W, dv))
    gamma = rng.uniform(0.05, 1.0, h)
    return q, k, v, (H, W), gamma, rng


# --- from pixels to tokens -----------------------------------------------------------------------

@given(images())
def test_patchify_is_the_loops_and_unpatchify_inverts_it(case):
    x, P = case
    B, H, W, C = x.shape
    patches = patchify(x, P)
    loops = np.zeros_like(patches)
    for b in range(B):
        for gy in range(H // P):
            for gx in range(W // P):
                for py in range(P):
                    for px in range(P):
                        for c in range(C):
                            loops[b, gy * (W // P) + gx, (py * P + px) * C + c] = \
                                x[b, gy * P + py, gx * P + px, c]
    np.testing.assert_array_equal(patches, loops)
    np.testing.assert_array_equal(unpatchify(patches, (H, W, C), P), x)


@given(images(), st.integers(1, 5))
def test_the_patch_embedding_is_a_stride_p_convolution(case, D):
    x, P = case
    B, H, W, C = x.shape
    rng = np.random.default_rng(D)
    kernel = rng.standard_normal((P, P, C, D))                       # (kh, kw, in, out)
    bias = rng.standard_normal(D)
    params = {"W": kernel.reshape(P * P * C, D), "b": bias}
    z, _ = vision_embed_forward(x, params, P, cls_position=None)
    conv = np.zeros((B, H // P, W // P, D))
    for i in range(H // P):
        for j in range(W // P):
            window = x[:, i * P:(i + 1) * P, j * P:(j + 1) * P, :]     # stride P, no overlap
            conv[:, i, j] = np.einsum("bhwc,hwcd->bd", window, kernel) + bias
    np.testing.assert_allclose(z, conv.reshape(B, -1, D), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls_position", ["first", "last", None])
def test_gradcheck_the_front_end_down_to_the_pixels(cls_position):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 4, 2))
    N = 2 * 1 + (cls_position is not None)
    params = {"W": rng.standard_normal((32, 5)), "b": rng.standard_normal(5),
              "pos": rng.standard_normal((N, 5))}
    if cls_position is not None:
        params["cls"] = rng.standard_normal(5)
    assert_gradcheck(check_gradients(
        lambda images, params: vision_embed_forward(images, params, 4, cls_position),
        vision_embed_backward, {"images": x}, params))


# --- why positions are needed --------------------------------------------------------------------

def _vit(pos=True):
    model = ViT(ViTConfig(n_classes=3, image_size=8, patch_size=2, d_model=8, n_heads=2,
                          n_layers=1, d_ff=16))
    params = model.init(0, dtype=np.float64)
    if not pos:
        params["embed.pos"][:] = 0.0
    return model, params


def test_without_positions_a_block_is_permutation_equivariant_and_the_class_token_invariant():
    model, params = _vit()
    rng = np.random.default_rng(2)
    z = rng.standard_normal((2, 17, 8))                              # class token + 16 patches
    perm = np.concatenate([[0], 1 + rng.permutation(16)])            # the class token stays
    out, _, _ = blocks_forward(params, z, model.config.n_layers, model.mixer())
    out_p, _, _ = blocks_forward(params, z[:, perm], model.config.n_layers, model.mixer())
    np.testing.assert_allclose(out_p, out[:, perm], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_p[:, 0], out[:, 0], rtol=1e-12, atol=1e-12)


def test_with_positions_permuting_the_patches_changes_the_prediction():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 8, 1))
    patches = patchify(x, 2)
    shuffled = unpatchify(patches[:, rng.permutation(16)], (8, 8, 1), 2)
    for pos, same in ((False, True), (True, False)):
        model, params = _vit(pos)
        a, b = model.forward(params, x)[0], model.forward(params, shuffled)[0]
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12) == same


# --- the Manhattan decay and MaSA ----------------------------------------------------------------

@given(st.integers(1, 5), st.integers(1, 5), st.lists(st.floats(0.0, 1.0), min_size=1,
                                                      max_size=3))
def test_the_manhattan_mask_is_its_formula_and_a_kronecker_product(H, W, gammas):
    gamma = np.array(gammas)
    D = manhattan_decay_mask(H, W, gamma)
    DH, DW = manhattan_decay_mask(1, H, gamma), manhattan_decay_mask(1, W, gamma)
    for i, g in enumerate(gamma):
        np.testing.assert_allclose(D[i], np.kron(DH[i], DW[i]), rtol=1e-14, atol=0)
        for n in range(H * W):
            for m in range(H * W):
                dist = abs(n // W - m // W) + abs(n % W - m % W)
                assert D[i, n, m] == pytest.approx(g ** dist, rel=1e-14, abs=0)


@given(grids(), st.sampled_from(["code", "paper"]))
def test_full_and_decomposed_masa_agree_exactly_when_all_scores_are_equal(case, variant):
    q, k, v, grid, gamma, _ = case
    zero = np.zeros_like(q)                                          # every score is 0
    full, _ = masa_forward(zero, k, v, grid, gamma, variant)
    split, _ = masa_decomposed_forward(zero, k, v, grid, gamma, variant)
    assert rel_error(full, split) < TOL


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_full_and_decomposed_masa_differ_for_real_scores(variant):
    rng = np.random.default_rng(4)
    q, k = 2.0 * rng.standard_normal((2, 1, 2, 12, 4))
    v = rng.standard_normal((1, 2, 12, 3))
    full, _ = masa_forward(q, k, v, (3, 4), [0.8, 0.95], variant)
    split, _ = masa_decomposed_forward(q, k, v, (3, 4), [0.8, 0.95], variant)
    assert rel_error(full, split) > 0.05


@given(grids())
def test_the_code_form_is_the_paper_form_renormalised(case):
    q, k, v, grid, gamma, _ = case
    D = manhattan_decay_mask(*grid, gamma)
    _, paper = decayed_attention_forward(q, k, v, D, "paper")
    _, code = decayed_attention_forward(q, k, v, D, "code")
    renormalised = paper.A / paper.A.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(code.A, renormalised, rtol=1e-12, atol=1e-14)


def _flip(a, grid, axis):
    """Flip the token axis of (B, h, N, .) as the image would flip (axis 0: rows, 1: columns)."""
    H, W = grid
    g = a.reshape(*a.shape[:2], H, W, a.shape[-1])
    return np.flip(g, axis=2 + axis).reshape(a.shape)


def _transpose(a, grid):
    H, W = grid
    return np.swapaxes(a.reshape(*a.shape[:2], H, W, a.shape[-1]), 2, 3).reshape(a.shape)


@given(grids(), st.sampled_from([masa_forward, masa_decomposed_forward]), st.integers(0, 1))
def test_without_rotation_both_forms_are_flip_equivariant(case, form, axis):
    q, k, v, grid, gamma, _ = case
    out, _ = form(q, k, v, grid, gamma)
    flipped, _ = form(*(_flip(a, grid, axis) for a in (q, k, v)), grid, gamma)
    np.testing.assert_allclose(flipped, _flip(out, grid, axis), rtol=1e-10, atol=1e-12)


def test_on_a_square_grid_the_full_form_is_transpose_equivariant_and_the_decomposed_is_not():
    rng = np.random.default_rng(5)
    grid = (4, 4)
    q, k = 2.0 * rng.standard_normal((2, 1, 2, 16, 4))
    v = rng.standard_normal((1, 2, 16, 3))
    for form, equivariant in ((masa_forward, True), (masa_decomposed_forward, False)):
        out, _ = form(q, k, v, grid, [0.7, 0.9])
        moved, _ = form(*(_transpose(a, grid) for a in (q, k, v)), grid, [0.7, 0.9])
        assert np.allclose(moved, _transpose(out, grid), rtol=1e-10, atol=1e-12) == equivariant


# --- softmax-free 2-D retention: parallel = four scans -------------------------------------------

@given(grids(max_side=5))
def test_2d_retention_parallel_equals_the_four_scans_outputs_and_gradients(case):
    q, k, v, grid, gamma, rng = case
    par, pc = retention_2d_parallel(q, k, v, grid, gamma)
    scan, sc = retention_2d_scan(q, k, v, grid, gamma)
    assert rel_error(scan, par) < TOL
    dout = rng.standard_normal(par.shape)
    for a, b in zip(retention_2d_scan_backward(dout, sc), retention_2d_parallel_backward(dout, pc)):
        assert rel_error(a, b) < TOL


def test_the_bidirectional_scan_is_the_symmetric_decay_filter():
    rng = np.random.default_rng(6)
    u = rng.standard_normal((1, 2, 7, 3))
    gamma = np.array([0.5, 0.9])
    i = np.arange(7)
    for head in range(2):
        F = gamma[head] ** np.abs(i[:, None] - i[None, :])
        np.testing.assert_allclose(bidirectional_scan(u, gamma, 2)[0, head], F @ u[0, head],
                                   rtol=1e-12)


# --- gradient checks -----------------------------------------------------------------------------

@pytest.mark.no_cover   # finite differences, slow under line tracing; other tests cover the lines
@given(grids(max_side=3))
def test_gradcheck_every_2d_core(case):
    q, k, v, grid, gamma, _ = case
    qkv = {"q": q, "k": k, "v": v}
    for forward, backward in ((masa_forward, masa_backward),
                              (masa_decomposed_forward, masa_decomposed_backward)):
        for variant in ("code", "paper"):
            assert_gradcheck(check_gradients(
                lambda q, k, v, f=forward, var=variant: f(q, k, v, grid, gamma, var),
                backward, qkv, floor=GRAD_FLOOR))
    for forward, backward in ((retention_2d_parallel, retention_2d_parallel_backward),
                              (retention_2d_scan, retention_2d_scan_backward)):
        assert_gradcheck(check_gradients(lambda q, k, v, f=forward: f(q, k, v, grid, gamma),
                                         backward, qkv, floor=GRAD_FLOOR))


@pytest.mark.parametrize("mixer", ["attention", "masa", "masa_decomposed", "retention"])
def test_gradcheck_every_mixing_layer(mixer):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 4))
    params = {k: 0.5 * rng.standard_normal((4, 4)) for k in ("Wq", "Wk", "Wv", "Wo")}
    assert_gradcheck(check_gradients(
        lambda x, params: vision_mix_forward(x, params, 2, mixer, (2, 3), np.array([0.6, 0.9])),
        vision_mix_backward, {"x": x}, params, floor=GRAD_FLOOR))


def test_decayed_attention_gradcheck_with_a_zero_in_the_decay():
    rng = np.random.default_rng(8)
    q, k = rng.standard_normal((2, 1, 5, 3))
    v = rng.standard_normal((1, 5, 2))
    D = manhattan_decay_mask(1, 5, 0.0)                              # only the diagonal
    for variant in ("code", "paper"):
        out, _ = decayed_attention_forward(q, k, v, D, variant)
        assert np.all(np.isfinite(out))
        assert_gradcheck(check_gradients(
            lambda q, k, v, var=variant: decayed_attention_forward(q, k, v, D, var),
            decayed_attention_backward, {"q": q, "k": k, "v": v}, floor=GRAD_FLOOR))


@pytest.mark.parametrize("model_class, config_class",
                         [(ViT, ViTConfig), (RMT, RMTConfig), (ViR, ViRConfig)])
def test_gradcheck_the_classifiers_parameters_and_their_saliency(model_class, config_class):
    config = config_class(n_classes=3, image_size=4, patch_size=2, d_model=4, n_heads=2,
                          n_layers=1, d_ff=8)
    model = model_class(config)
    params = model.init(0, dtype=np.float64)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 4, 1))
    labels = np.array([[0], [2]])
    _, grads = model.loss_and_grads(params, x, labels)
    for key in ("embed.W", "blocks.0.mix.Wq", "head.W"):
        def f(value, key=key):
            return np.asarray(model.loss_and_grads({**params, key: value}, x, labels)[0])
        from minirnn import numerical_gradient
        assert rel_error(grads[key], numerical_gradient(f, params[key], np.array(1.0))) < 1e-7
    sal = model.saliency(params, x, label=1)
    from minirnn import numerical_gradient
    num = numerical_gradient(lambda img: model.forward(params, img)[0][:, 0, 1], x,
                             np.ones(2))
    assert rel_error(sal, num) < 1e-7


# --- ViR: the class token goes last --------------------------------------------------------------

def test_vir_class_token_last_sees_every_patch_and_first_sees_none():
    config = ViRConfig(n_classes=3, image_size=8, patch_size=2, d_model=8, n_heads=2,
                       n_layers=2, d_ff=16)
    model = ViR(config)
    params = model.init(0, dtype=np.float64)
    x = np.random.default_rng(10).standard_normal((1, 8, 8, 1))
    last = model.saliency(params, x, label=0)
    per_patch = np.abs(patchify(last, 2)).sum(axis=-1)[0]
    assert np.all(per_patch > 1e-8)                                  # every patch matters
    model.cls_position = "first"
    first = model.saliency(params, x, label=0)
    assert np.all(first == 0.0)                                      # exactly zero


# --- data and bad input --------------------------------------------------------------------------

def test_the_image_tasks_are_drawn_from_a_seed_and_balanced():
    for task in (ShapesTask(), RelationTask()):
        a, la = task.batch(np.random.default_rng(0), 300)
        b, _ = task.batch(np.random.default_rng(0), 300)
        np.testing.assert_array_equal(a, b)
        assert a.shape == (300, task.size, task.size, 1) and la.shape == (300, 1)
        assert a.dtype == np.float32
        assert set(np.unique(la)) == set(range(task.n_classes))
    task = RelationTask(size=12, cell=4)
    for label, same in ((0, (True, False)), (1, (False, True)), (2, (False, False))):
        ys, xs = np.nonzero(task.draw(np.random.default_rng(label), label))
        rows, cols = set(ys // 4), set(xs // 4)                      # the squares' grid cells
        assert len(ys) == 2 * 16 and ((len(rows) == 1), (len(cols) == 1)) == same


def test_image_tasks_refuse_impossible_sizes():
    with pytest.raises(ValueError, match="size must be at least 4"):
        ShapesTask(size=3)
    with pytest.raises(ValueError, match="cell = 5 must divide"):
        RelationTask(size=12, cell=5)


def test_bad_inputs_are_named():
    x = np.zeros((1, 6, 6, 1))
    with pytest.raises(ValueError, match="patch_size = 4 must divide the height and width"):
        patchify(x, 4)
    with pytest.raises(ValueError, match="gamma"):
        manhattan_decay_mask(2, 2, 1.5)
    model = ViT(ViTConfig(n_classes=3, image_size=8, patch_size=2))
    params = model.init(0)
    with pytest.raises(ValueError, match="images"):
        model.forward(params, np.zeros((1, 8, 8, 3), dtype=np.float32))  # 3 channels, not 1
    with pytest.raises(ValueError, match="grid"):
        masa_forward(np.zeros((1, 1, 6, 2)), np.zeros((1, 1, 6, 2)), np.zeros((1, 1, 6, 2)),
                     (2, 2), 0.5)


def test_classifier_inputs_are_checked():
    model = ViR(ViRConfig(n_classes=3, image_size=8, patch_size=4))
    params = model.init(0)
    x = np.zeros((2, 8, 8, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="labels"):
        model.loss_and_grads(params, x, np.array([[0], [3]]))          # class 3 of 3
    with pytest.raises(ValueError, match="labels"):
        model.loss_and_grads(params, x, np.array([[0, 1], [1, 2]]))    # not (B, 1)
    with pytest.raises(TypeError, match="labels"):
        model.loss_and_grads(params, x, np.array([[0.5], [1.0]]))
    _, cache = model.forward(params, x)
    with pytest.raises(ValueError, match="dlogits"):
        model.backward(np.zeros((2, 1, 4)), cache)
    with pytest.raises(ValueError, match="params"):
        model.forward({k: v for k, v in params.items() if k != "head.W"}, x)
    assert not hasattr(model, "start") and not hasattr(model, "step")   # not a language model
