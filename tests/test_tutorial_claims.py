"""The sentences of tutorials 8 and 9 that say two things are equal (or bounded) are held to the
numbers the pages print: the training-free part of tutorial 8 runs here from the page itself,
and the transposition argument of tutorial 9 is checked on models of every kind."""

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

from minirnn import (
    GatedConfig,
    RelationTask,
    RMTConfig,
    ViRConfig,
    ViTConfig,
    build_model,
    msr_gammas,
)

TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"


def run_blocks(page: str, until: str) -> tuple[dict, str]:
    """Execute the page's code blocks before the heading ``until``, in one namespace."""
    text = (TUTORIALS / page).read_text()
    text = text[:text.index(until)]
    namespace, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        for code in re.findall(r'```python exec="on"[^\n]*\n(.*?)\n```', text, re.S):
            exec(code, namespace)                  # the blocks' own asserts run too
    return namespace, printed.getvalue()


def test_tutorial_8_memories_without_training():
    ns, printed = run_blocks("which-memory.md", "## Part 2")
    capacity, distractors, reassigned = (ns["rows"](ns[t]) for t in
                                         ("capacity", "distractors", "reassigned"))
    # "its row and retention's are computed from the same pairs and are identical"
    assert capacity["gated retention"] == capacity["retention"]
    # "The gate stops the clock on the distractors and its row does not move"
    assert len(set(distractors["gated retention"])) == 1
    assert distractors["retention"][-1] < distractors["retention"][0] - 0.5
    # "linear attention ... matches or beats the gated memory in every column of both tables"
    for table in (capacity, distractors):
        assert all(a >= b for a, b in zip(table["linear attention"], table["gated retention"]))
    # re-assigned keys: the gated memory equals retention; the delta rule stays highest
    assert reassigned["gated retention"] == reassigned["retention"]
    assert reassigned["DeltaNet"][-1] > reassigned["retention"][-1] > \
        reassigned["linear attention"][-1]
    # the printed sentences carry the table's numbers
    assert f"{capacity['linear attention'][2]:.2f} at $N = d$" in printed
    assert f"DeltaNet stays at {reassigned['DeltaNet'][-1]:.2f}" in printed


def test_tutorial_8_an_untrained_gated_model_has_retnets_decays():
    model = build_model(GatedConfig(12, d_model=32, n_heads=2, n_layers=2, dv=16, d_ff=64,
                                    chunk_size=16))
    tokens = np.random.default_rng(0).integers(0, 12, (4, 9))
    params = model.init(seed=0)
    alpha = model.gates(params, tokens)                          # (layers, B, h, T)
    assert not np.any(params["blocks.0.mix.Wa"]) and params["blocks.0.mix.ba"].dtype == np.float32
    np.testing.assert_allclose(alpha, np.broadcast_to(msr_gammas(2)[None, None, :, None],
                                                      alpha.shape), rtol=1e-7)   # ba in float32


def transposes(images: np.ndarray, p: int):
    """The image transposed, and the image with only its patches transposed in place."""
    B, Y, X, C = images.shape
    in_place = images.reshape(B, Y // p, p, X // p, p, C).transpose(0, 1, 4, 3, 2, 5)
    return images.transpose(0, 2, 1, 3), in_place.reshape(images.shape)


@pytest.mark.parametrize("config, invariant", [(RMTConfig, True), (ViRConfig, False),
                                               (ViTConfig, False)])
def test_tutorial_9_only_the_full_rmt_form_answers_an_image_and_its_transpose_alike(config,
                                                                                      invariant):
    """Tutorial 9: the full-form RMT-style model (no rotation, no positions, mean pooling)
    gives a transposed image the answer of the image with only its patches transposed, for any
    parameters; ViR and ViT (learned positions) do not, so the bound is the RMT model's alone."""
    task = RelationTask(size=12, cell=4)
    model = build_model(config(task.n_classes, image_size=task.size, patch_size=4))
    params = model.init(seed=1, dtype=np.float64)                 # exact to rounding
    images, _ = task.batch(np.random.default_rng(2), 16)
    transposed, in_place = transposes(images, 4)
    gap = np.abs(model.predict(params, transposed) - model.predict(params, in_place)).max()
    assert (gap < 1e-10) == invariant, gap


def test_tutorial_9_a_same_row_image_transposed_is_a_same_column_image():
    """The other half of the argument: transposing maps the classes onto each other, and
    transposing each patch in place leaves the relation task's clean images unchanged."""
    task = RelationTask(size=12, cell=4)
    rng = np.random.default_rng(3)
    for label, other in ((0, 1), (1, 0), (2, 2)):
        clean = task.draw(rng, label)[None, :, :, None]
        transposed, in_place = transposes(clean, 4)
        assert np.array_equal(in_place, clean)
        squares = np.argwhere(transposed[0, ::4, ::4, 0] > 0)
        same_row, same_col = squares[0, 0] == squares[1, 0], squares[0, 1] == squares[1, 1]
        assert [same_row, same_col, not (same_row or same_col)].index(True) == other
