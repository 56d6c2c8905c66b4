"""Hypothesis feeds every public function of minirnn that takes arrays one wrong argument.

For each function a *valid* call is drawn (random sizes, random numbers); then one argument is
replaced by a wrong version of itself. The rule every case must satisfy:

* non-contiguous arrays, read-only arrays and nested lists **must work** and give the same
  result as the original call;
* NaN or inf in an input, an empty axis (T = 0 included), a wrong dtype, a broken parameter
  dict, an out-of-range decay, chunk size or head count, a wrong cache **must raise**
  ``ValueError`` or ``TypeError`` whose message names the argument;
* anything else (an extra or missing axis, one axis a different size) may work, with finite
  output, or raise as above.

Never an ``IndexError``, a ``KeyError``, an ``AttributeError``, a broadcasting error from deep
inside or a NaN in the output. The number of cases tried is printed at the end of the run
(``conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minirnn as m

WORK, RAISE, EITHER = "must work", "must raise", "may work"

# Each example tries ~40 broken arguments, so 25 examples per function already make ~34,000
# cases; the `ci` profile's 100 would add a minute to CI and has found nothing more.
AT_MOST_25 = settings(max_examples=min(settings.default.max_examples, 25))


@dataclass
class Call:
    """A valid call ``f(**kwargs)`` and what its documentation allows."""

    f: Callable
    kwargs: dict
    scalars: dict                       # argument -> values that must be rejected
    optional: frozenset = frozenset()   # dict keys that may be left out
    free_dict: bool = False             # dict keys and shapes are the caller's choice
    converts: bool = False              # integer arrays are converted, not rejected
    minus_inf: frozenset = frozenset()  # arguments where -inf is documented (masked logits)
    reports_nan: bool = False           # a NaN gradient is reported in the result, not raised
    names: frozenset = frozenset()      # how error messages may start ("func: ...")
    none_ok: frozenset = frozenset()    # array arguments where None is documented (no gates)


def normal(draw, *shape):
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).standard_normal(shape)


def sizes(draw):
    return dict(B=draw(st.integers(1, 3)), T=draw(st.integers(1, 6)),
                D=draw(st.sampled_from([2, 4, 6])), H=draw(st.integers(1, 4)),
                h=draw(st.sampled_from([1, 2])), d=draw(st.sampled_from([2, 4])),
                dv=draw(st.integers(1, 3)), V=draw(st.integers(2, 7)))


BAD_GAMMA = [-0.1, 1.5, float("nan"), float("inf"), 1j, "0.9", np.full((5,), 0.5)]
BAD_COUNT = [0, -1, 2.5, True, "2", None]
BAD_EPS = [-1e-5, float("nan"), "small"]
MHA_BIASES = frozenset({"bq", "bv", "bo"})
PROJ = ("Wq", "Wk", "Wv")


def only(params, keys):
    """The entries of a parameter dict that a function reads (the rest it passes over)."""
    return {key: params[key] for key in keys}


def build(name, draw) -> Call:
    """A valid call of the public function ``name`` with drawn sizes."""
    z = sizes(draw)
    B, T, D, H, h, d, dv, V = (z[k] for k in "B T D H h d dv V".split())
    gamma = draw(st.sampled_from([0.5, np.linspace(0.0, 1.0, h)]))
    qkv = dict(q=normal(draw, B, h, T, d), k=normal(draw, B, h, T, d),
               v=normal(draw, B, h, T, dv))
    tokens = np.random.default_rng(T).integers(0, V, (B, T))
    g = -np.abs(normal(draw, B, h, T))                     # log-gates <= 0
    beta = np.abs(np.tanh(normal(draw, B, h, T)))          # writing strengths in [0, 1]
    nh = 2 if D % 2 == 0 else 1
    P, C = draw(st.integers(1, 3)), draw(st.integers(1, 2))         # patch size, channels
    calls = {
        "rnn_step_forward": lambda: Call(m.rnn_step_forward, dict(
            x=normal(draw, B, D), h_prev=normal(draw, B, H), params=m.init_rnn_params(D, H)),
            {}),
        "rnn_forward": lambda: Call(m.rnn_forward, dict(
            x=normal(draw, B, T, D), h0=normal(draw, B, H), params=m.init_rnn_params(D, H)), {}),
        "softmax_forward": lambda: Call(m.softmax_forward, dict(x=normal(draw, B, T), axis=-1),
                                        {"axis": [2, -3, 1.0, None]}, minus_inf={"x"}),
        "attention_forward": lambda: Call(m.attention_forward, dict(qkv), {}),
        "mha_forward": lambda: Call(m.mha_forward, dict(
            x=normal(draw, B, T, D), params=m.init_mha_params(D, nh), n_heads=nh),
            {"n_heads": [*BAD_COUNT, 3 * D + 1]}, optional=MHA_BIASES),
        "mha_step": lambda: Call(m.mha_step, dict(
            x=normal(draw, B, D), params=m.init_mha_params(D, nh), n_heads=nh),
            {"n_heads": [*BAD_COUNT, 3 * D + 1], "state": ["state", m.init_kv_cache(B + 1, D, nh)]},
            optional=MHA_BIASES),
        "retention_parallel": lambda: Call(m.retention_parallel, dict(qkv, gamma=gamma),
                                           {"gamma": BAD_GAMMA}),
        "retention_recurrent": lambda: Call(m.retention_recurrent, dict(qkv, gamma=gamma),
                                            {"gamma": BAD_GAMMA, "state": ["state", (1, 2)]}),
        "retention_chunkwise": lambda: Call(m.retention_chunkwise, dict(
            qkv, gamma=gamma, chunk_size=draw(st.integers(1, T + 2))),
            {"gamma": BAD_GAMMA, "chunk_size": BAD_COUNT, "state": ["state"]}),
        "retention_final_state": lambda: Call(m.retention_final_state, dict(
            k=qkv["k"], v=qkv["v"], gamma=gamma), {"gamma": BAD_GAMMA}),
        "delta_rule_parallel": lambda: Call(m.delta_rule_parallel, dict(
            qkv, beta=beta, log_decay=g), {"scale": [0.0, -1.0, float("nan"), "1"],
                                           "state": ["state", (1, 2)]},
            none_ok=frozenset({"log_decay"})),
        "delta_rule_recurrent": lambda: Call(m.delta_rule_recurrent, dict(
            qkv, beta=beta), {"log_decay": [1.0, "g"], "state": ["state", (1, 2)]}),
        "delta_rule_chunkwise": lambda: Call(m.delta_rule_chunkwise, dict(
            qkv, beta=beta, chunk_size=draw(st.integers(1, T + 2)), log_decay=g),
            {"chunk_size": BAD_COUNT, "state": ["state"]}, none_ok=frozenset({"log_decay"})),
        "delta_chunk_transform": lambda: Call(m.delta_chunk_transform, dict(
            k=qkv["k"], v=qkv["v"], beta=beta, log_decay=g), {},
            none_ok=frozenset({"log_decay"})),
        "delta_decays": lambda: Call(m.delta_decays, dict(log_decay=g, beta=beta), {},
                                     none_ok=frozenset({"log_decay"})),
        "solve_unit_lower": lambda: Call(m.solve_unit_lower, dict(
            lower=np.tril(normal(draw, B, T, T), -1), rhs=normal(draw, B, T, dv)),
            {"transpose": [None, "yes"]}),
        "log_decay_gradient": lambda: Call(m.log_decay_gradient, dict(
            zip(("Gamma", "xi", "zeta"), m.delta_decays(g, beta)), dGamma=normal(draw, B, h, T, T),
            dxi=normal(draw, B, h, T), dzeta=normal(draw, B, h, T), dxi_last=normal(draw, B, h)),
            {}),
        "segment_decay": lambda: Call(m.segment_decay, dict(log_decay=g), {}),
        "gated_chunk_decays": lambda: Call(m.gated_chunk_decays, dict(
            log_decay=g, s_prev=np.abs(normal(draw, B, h))), {"normalize": [None, "yes"]}),
        "gated_retention_parallel": lambda: Call(m.gated_retention_parallel, dict(
            qkv, log_decay=g), {"normalize": [None, "yes"]}),
        "gated_retention_recurrent": lambda: Call(m.gated_retention_recurrent, dict(
            qkv, log_decay=g), {"state": ["state", (1, 2), m.RetentionState(0, 0, 0, 0)]}),
        "gated_retention_chunkwise": lambda: Call(m.gated_retention_chunkwise, dict(
            qkv, log_decay=g, chunk_size=draw(st.integers(1, T + 2))),
            {"chunk_size": BAD_COUNT, "state": ["state"]}),
        "gated_retention_final_state": lambda: Call(m.gated_retention_final_state, dict(
            k=qkv["k"], v=qkv["v"], log_decay=g), {}),
        "gated_decay_gradient": lambda: Call(m.gated_decay_gradient, dict(
            q=qkv["q"], dq=normal(draw, B, h, T, d), k=qkv["k"], dk=normal(draw, B, h, T, d),
            log_decay=g, s=1.0 + np.abs(normal(draw, B, h, T))), {"normalize": [None, 1]}),
        "retention_decay_gradient": lambda: Call(m.retention_decay_gradient, dict(
            q=qkv["q"], dq=normal(draw, B, h, T, d), k=qkv["k"], dk=normal(draw, B, h, T, d),
            gamma=np.linspace(0.5, 1.0, h)), {"gamma": [*BAD_GAMMA, 0.0], "state": ["state"]}),
        "msr_gammas": lambda: Call(m.msr_gammas, dict(
            n_heads=h, params=m.init_msr_params(d * h, h, dv, learn_decay=True)),
            {"n_heads": BAD_COUNT}, free_dict=True),
        "msr_project": lambda: Call(m.msr_project, dict(
            x=normal(draw, B, T, d * h), params=only(m.init_msr_params(d * h, h, dv), PROJ),
            n_heads=h),
            {"n_heads": [*BAD_COUNT, 5], "start": [-1, 1.5]}, free_dict=True),
        "msr_project_backward": lambda: Call(m.msr_project_backward, dict(
            dq=normal(draw, B, h, T, d), dk=normal(draw, B, h, T, d),
            dv=normal(draw, B, h, T, dv), x=normal(draw, B, T, d * h),
            params=only(m.init_msr_params(d * h, h, dv), PROJ)), {"start": [-1, 1.5]},
            free_dict=True),
        "msr_output": lambda: Call(m.msr_output, dict(
            o=normal(draw, B, h, T, dv), x=normal(draw, B, T, d * h),
            params=only(m.init_msr_params(d * h, h, dv), ("Wg", "Wo", "gn_w", "gn_b"))),
            {"eps": BAD_EPS}, free_dict=True),
        "patchify": lambda: Call(m.patchify, dict(images=normal(draw, B, 2 * P, 4 * P, C),
                                                  patch_size=P),
                                 {"patch_size": [*BAD_COUNT, 2 * P + 1]}),
        "unpatchify": lambda: Call(m.unpatchify, dict(
            patches=normal(draw, B, 8, P * P * C), image_shape=(2 * P, 4 * P, C),
            patch_size=P), {"patch_size": [*BAD_COUNT, 2 * P + 1],
                            "image_shape": [(1, 2), None]}),
        "vision_embed_forward": lambda: Call(m.vision_embed_forward, dict(
            images=normal(draw, B, 2 * P, 2 * P, C),
            params={"W": normal(draw, P * P * C, D), "b": normal(draw, D),
                    "cls": normal(draw, D), "pos": normal(draw, 5, D)}, patch_size=P),
            {"patch_size": [*BAD_COUNT, 2 * P + 1], "cls_position": ["middle", 0]},
            optional={"pos"}),
        "manhattan_decay_mask": lambda: Call(m.manhattan_decay_mask, dict(
            n_y=2, n_x=T, gamma=gamma), {"gamma": BAD_GAMMA[:-1], "n_y": BAD_COUNT,
                                         "n_x": BAD_COUNT}),
        "decayed_attention_forward": lambda: Call(m.decayed_attention_forward, dict(
            qkv, Gamma=m.manhattan_decay_mask(1, T, 0.7)), {"variant": ["exact", None]}),
        "masa_forward": lambda: Call(m.masa_forward, dict(qkv, grid=(1, T), gamma=gamma),
                                     {"gamma": BAD_GAMMA, "grid": [(2, T), None, (T,)],
                                      "variant": ["exact"]}),
        "masa_decomposed_forward": lambda: Call(m.masa_decomposed_forward, dict(
            qkv, grid=(T, 1), gamma=gamma), {"gamma": BAD_GAMMA, "grid": [(2, T), None]}),
        "retention_2d_parallel": lambda: Call(m.retention_2d_parallel, dict(
            qkv, grid=(1, T), gamma=gamma), {"gamma": BAD_GAMMA, "grid": [(T, 2), 3]}),
        "retention_2d_scan": lambda: Call(m.retention_2d_scan, dict(
            qkv, grid=(T, 1), gamma=gamma), {"gamma": BAD_GAMMA, "grid": [(T, 2), 3]}),
        "bidirectional_scan": lambda: Call(m.bidirectional_scan, dict(
            u=normal(draw, B, h, T, 2), gamma=gamma, axis=2),
            {"gamma": BAD_GAMMA, "axis": [0, 1, 4, 1.5, None]}),
        "vision_mix_forward": lambda: mix_call(draw, B, T, D, nh),
        "gated_msr_gates": lambda: Call(m.gated_msr_gates, dict(
            x=normal(draw, B, T, d * h),
            params=only(m.init_gated_msr_params(d * h, h, dv), ("Wa", "ba"))),
            {"tau": [0.0, -1.0, float("nan"), "1"]}, free_dict=True),
        "gated_msr_forward": lambda: Call(m.gated_msr_forward, dict(
            x=normal(draw, B, T, d * h), params=m.init_gated_msr_params(d * h, h, dv),
            n_heads=h, form=draw(st.sampled_from(["parallel", "recurrent", "chunkwise"])),
            chunk_size=2), {"n_heads": [*BAD_COUNT, 5], "form": ["fast", 1], "eps": BAD_EPS,
                            "tau": [0.0, float("inf")]}),
        "gated_msr_step": lambda: Call(m.gated_msr_step, dict(
            x=normal(draw, B, d * h), params=m.init_gated_msr_params(d * h, h, dv), n_heads=h),
            {"n_heads": [*BAD_COUNT, 5], "state": ["state", m.RetentionState(0, 0, 0, 0)],
             "eps": BAD_EPS, "tau": [0.0]}),
        "gated_msr_gates_backward": lambda: Call(m.gated_msr_gates_backward, dict(
            dlog_decay=normal(draw, B, h, T), x=normal(draw, B, T, d * h),
            a=normal(draw, B, T, h),
            params=only(m.init_gated_msr_params(d * h, h, dv), ("Wa",))),
            {"tau": [0.0, -1.0, float("nan"), "1"]}, free_dict=True),
        "l2_normalize": lambda: Call(m.l2_normalize, dict(x=normal(draw, B, T, d)),
                                     {"eps": [-1.0, float("nan"), "small"]}),
        "deltanet_forward": lambda: Call(m.deltanet_forward, dict(
            x=normal(draw, B, T, d * h),
            params=m.init_deltanet_params(d * h, h, dv, gated=draw(st.booleans())), n_heads=h,
            form=draw(st.sampled_from(["parallel", "recurrent", "chunkwise"])), chunk_size=2),
            {"n_heads": [*BAD_COUNT, 5], "form": ["fast", 1], "eps": BAD_EPS,
             "tau": [0.0, float("inf")], "state": ["state", m.RetentionState(0, 0, 0, 0)]},
            optional=frozenset({"Wa", "ba"})),
        "deltanet_step": lambda: Call(m.deltanet_step, dict(
            x=normal(draw, B, d * h), params=m.init_deltanet_params(d * h, h, dv), n_heads=h),
            {"n_heads": [*BAD_COUNT, 5], "state": ["state", m.RetentionState(0, 0, 0, 0)],
             "eps": BAD_EPS, "tau": [0.0]}, optional=frozenset({"Wa", "ba"})),
        "msr_forward": lambda: Call(m.msr_forward, dict(
            x=normal(draw, B, T, d * h), params=m.init_msr_params(d * h, h, dv), n_heads=h,
            form=draw(st.sampled_from(["parallel", "recurrent", "chunkwise"])), chunk_size=2),
            {"n_heads": [*BAD_COUNT, 5], "form": ["fast", 1], "eps": BAD_EPS}),
        "msr_step": lambda: Call(m.msr_step, dict(
            x=normal(draw, B, d * h), params=m.init_msr_params(d * h, h, dv), n_heads=h),
            {"n_heads": [*BAD_COUNT, 5], "state": ["state"], "eps": BAD_EPS}),
        "group_norm_forward": lambda: Call(m.group_norm_forward, dict(
            x=normal(draw, B, T, h, dv), w=normal(draw, h, dv), b=normal(draw, h, dv)),
            {"eps": BAD_EPS}),
        "rotate": lambda: Call(m.rotate, dict(x=normal(draw, B, T, d), start=T),
                               {"start": [-1, 1.5, "0", None]}),
        "decay_mask": lambda: Call(m.decay_mask, dict(gamma=gamma, T=T),
                                   {"gamma": BAD_GAMMA[:-1], "T": BAD_COUNT}),
        "chunk_decays": lambda: Call(m.chunk_decays, dict(
            gamma=np.linspace(0.0, 1.0, h), L=T, s_prev=np.abs(normal(draw, h))),
            {"gamma": BAD_GAMMA, "L": BAD_COUNT, "normalize": [None, "yes"]}),
        "score_normaliser_backward": lambda: Call(m.score_normaliser_backward, dict(
            dout=normal(draw, B, h, T, dv), out=normal(draw, B, h, T, dv),
            r=normal(draw, B, h, T), c=1.0 + np.abs(normal(draw, B, h, T))), {}),
        "mean_last": lambda: Call(m.mean_last, dict(x=normal(draw, B, T, D)), {}),
        "matmul_few_rows": lambda: Call(m.matmul_few_rows, dict(a=normal(draw, B, D),
                                                                W=normal(draw, D, H)), {}),
        "weight_gradient": lambda: Call(m.weight_gradient, dict(x=normal(draw, B, T, D),
                                                                dy=normal(draw, B, T, H)), {}),
        "standardize": lambda: Call(m.standardize, dict(x=normal(draw, B, T, D), eps=1e-5),
                                    {"eps": BAD_EPS}),
        "standardize_backward": lambda: Call(m.standardize_backward, dict(
            dxhat=normal(draw, B, T, D), xhat=normal(draw, B, T, D),
            sigma=0.5 + np.abs(normal(draw, B, T, 1))), {}),
        "split_heads": lambda: Call(m.split_heads, dict(x=normal(draw, B, T, D), n_heads=nh),
                                    {"n_heads": [*BAD_COUNT, 3 * D + 1]}),
        "merge_heads": lambda: Call(m.merge_heads, dict(x=normal(draw, B, h, T, d)), {}),
        "linear_forward": lambda: Call(m.linear_forward, dict(
            x=normal(draw, B, T, D), params={"W": normal(draw, D, H), "b": normal(draw, H)}), {},
            optional={"b"}),
        "layer_norm_forward": lambda: Call(m.layer_norm_forward, dict(
            x=normal(draw, B, T, D), params={"w": normal(draw, D), "b": normal(draw, D)}),
            {"eps": BAD_EPS}),
        "ffn_forward": lambda: Call(m.ffn_forward, dict(x=normal(draw, B, T, D), params={
            "W1": normal(draw, D, H), "b1": normal(draw, H), "W2": normal(draw, H, D),
            "b2": normal(draw, D)}), {}),
        "gelu_forward": lambda: Call(m.gelu_forward, dict(x=normal(draw, B, T)), {}),
        "embedding_forward": lambda: Call(m.embedding_forward, dict(
            tokens=tokens, W=normal(draw, V, D)), {}),
        "cross_entropy": lambda: Call(m.cross_entropy, dict(
            logits=normal(draw, B, T, V), targets=tokens), {"ignore_index": [0.5, "x"]}),
        "rel_error": lambda: Call(m.rel_error, dict(a=normal(draw, B, T), b=normal(draw, B, T)),
                                  {}, converts=True),
        "numerical_gradient": lambda: Call(m.numerical_gradient, dict(
            f=np.tanh, x=normal(draw, B, D), dout=normal(draw, B, D)),
            {"f": [None, "tanh"], "eps": [0.0, -1e-6, float("nan")]}, converts=True),
        "clip_grad_norm": lambda: Call(m.clip_grad_norm, dict(
            grads={"W": normal(draw, D, H), "b": normal(draw, H)}, max_norm=1.0),
            {"max_norm": [0.0, -1.0, float("nan"), "1"]}, free_dict=True, reports_nan=True),
        "count_parameters": lambda: Call(m.count_parameters, dict(
            params={"W": normal(draw, D, H), "b": normal(draw, H)}), {}, free_dict=True,
            converts=True, reports_nan=True),
        "lstm_step_forward": lambda: Call(m.lstm_step_forward, dict(
            x=normal(draw, B, D), h_prev=normal(draw, B, H), c_prev=normal(draw, B, H),
            params=m.init_lstm_params(D, H)), {}),
        "lstm_forward": lambda: Call(m.lstm_forward, dict(
            x=normal(draw, B, T, D), h0=normal(draw, B, H), params=m.init_lstm_params(D, H),
            c0=normal(draw, B, H)), {}, none_ok=frozenset({"c0"})),
        "lstm_step_backward": lambda: lstm_step_backward_call(draw, B, D, H),
        "sigmoid": lambda: Call(m.sigmoid, dict(a=normal(draw, B, T)), {}),
        "gru_step_forward": lambda: Call(m.gru_step_forward, dict(
            x=normal(draw, B, D), h_prev=normal(draw, B, H), params=m.init_gru_params(D, H),
            reset=draw(st.sampled_from(["after", "before"]))), {"reset": ["middle", None, 1]}),
        "gru_forward": lambda: Call(m.gru_forward, dict(
            x=normal(draw, B, T, D), h0=normal(draw, B, H), params=m.init_gru_params(D, H),
            reset=draw(st.sampled_from(["after", "before"]))), {"reset": ["middle", None, 1]}),
        "log_sigmoid": lambda: Call(m.log_sigmoid, dict(a=normal(draw, B, T)), {}),
        "linear_scan_sequential": lambda: Call(m.linear_scan_sequential, dict(
            log_decay=-np.abs(normal(draw, B, T, H)), u=normal(draw, B, T, H),
            h0=normal(draw, B, H)), {}),
        "linear_scan_parallel": lambda: Call(m.linear_scan_parallel, dict(
            log_decay=-np.abs(normal(draw, B, T, H)), u=normal(draw, B, T, H),
            h0=normal(draw, B, H)), {}),
        "mingru_forward": lambda: Call(m.mingru_forward, dict(
            x=normal(draw, B, T, D), h0=normal(draw, B, H), params=m.init_mingru_params(D, H),
            form=draw(st.sampled_from(["sequential", "parallel"]))),
            {"form": ["fast", None, 1]}),
        "minlstm_forward": lambda: Call(m.minlstm_forward, dict(
            x=normal(draw, B, T, D), h0=normal(draw, B, H), params=m.init_minlstm_params(D, H),
            form=draw(st.sampled_from(["sequential", "parallel"]))),
            {"form": ["fast", None, 1]}),
        "mlstm_recurrent": lambda: Call(m.mlstm_recurrent, dict(
            **qkv, i_pre=normal(draw, B, h, T), f_pre=normal(draw, B, h, T)), {"state": ["s"]}),
        "mlstm_parallel": lambda: Call(m.mlstm_parallel, dict(
            **qkv, i_pre=normal(draw, B, h, T), f_pre=normal(draw, B, h, T)), {"state": ["s"]}),
        "mlstm_normaliser_backward": lambda: Call(m.mlstm_normaliser_backward, dict(
            dout=normal(draw, B, h, T, dv), out=normal(draw, B, h, T, dv),
            r=normal(draw, B, h, T), mu=normal(draw, B, h, T)), {}),
        "check_gradients": lambda: Call(m.check_gradients, dict(
            forward=m.rnn_step_forward, backward=m.rnn_step_backward,
            inputs={"x": normal(draw, B, D), "h_prev": normal(draw, B, H)},
            params=m.init_rnn_params(D, H)),
            {"forward": [None], "backward": ["rnn_step_backward"]}, converts=True),
    }
    if name in calls:
        call = calls[name]()
        call.names = frozenset({name, *ALIASES.get(name, ())})
        return call
    if name in BACKWARD:
        return backward_call(name, draw)
    call = model_call(name, draw, z, tokens)
    cls_name = name.split(".")[0]
    call.names = frozenset({"generate", *(f"{cls_name}.{f}" for f in
                                          ("loss_and_grads", "forward", "start"))})
    return call


def lstm_step_backward_call(draw, B, D, H) -> Call:
    """lstm_step_backward takes two upstream gradients, dh and dc."""
    h, c, cache = m.lstm_step_forward(normal(draw, B, D), normal(draw, B, H),
                                      normal(draw, B, H), m.init_lstm_params(D, H))
    wrong = m.gelu_forward(normal(draw, B, D))[1]
    return Call(m.lstm_step_backward, dict(dh=normal(draw, *h.shape), dc=normal(draw, *c.shape),
                                           cache=cache), {"cache": [None, (h, c, cache), wrong]})


def mix_call(draw, B, T, D, nh) -> Call:
    """vision_mix_forward: the decays are an argument of every mixer but attention."""
    mixer = draw(st.sampled_from(["attention", "masa", "masa_decomposed", "retention"]))
    gamma = None if mixer == "attention" else np.full(nh, 0.8)
    return Call(m.vision_mix_forward, dict(
        x=normal(draw, B, T, D), params={k: normal(draw, D, D) for k in (*PROJ, "Wo")},
        n_heads=nh, mixer=mixer, grid=(1, T), gamma=gamma),
        {"n_heads": [*BAD_COUNT, 3 * D + 1], "mixer": ["lstm", None]})


# functions whose errors may come from the public function they delegate to
ALIASES: dict = {}

# backward -> (forward, name of the upstream gradient, position of the cache in the output)
BACKWARD = {
    "rnn_step_backward": ("rnn_step_forward", "dh", 1),
    "rnn_backward": ("rnn_forward", "dh", 1),
    "lstm_backward": ("lstm_forward", "dh", 1),
    "gru_step_backward": ("gru_step_forward", "dh", 1),
    "gru_backward": ("gru_forward", "dh", 1),
    "linear_scan_sequential_backward": ("linear_scan_sequential", "dh", 1),
    "linear_scan_parallel_backward": ("linear_scan_parallel", "dh", 1),
    "mingru_backward": ("mingru_forward", "dh", 1),
    "minlstm_backward": ("minlstm_forward", "dh", 1),
    "mlstm_recurrent_backward": ("mlstm_recurrent", "dout", 2),
    "mlstm_parallel_backward": ("mlstm_parallel", "dout", 2),
    "softmax_backward": ("softmax_forward", "dy", 1),
    "attention_backward": ("attention_forward", "dout", 1),
    "mha_backward": ("mha_forward", "dy", 1),
    "retention_parallel_backward": ("retention_parallel", "dout", 2),
    "retention_recurrent_backward": ("retention_recurrent", "dout", 2),
    "retention_chunkwise_backward": ("retention_chunkwise", "dout", 2),
    "msr_backward": ("msr_forward", "dy", 2),
    "msr_output_backward": ("msr_output", "dout", 1),
    "gated_msr_backward": ("gated_msr_forward", "dy", 2),
    "vision_embed_backward": ("vision_embed_forward", "dz", 1),
    "decayed_attention_backward": ("decayed_attention_forward", "dout", 1),
    "masa_backward": ("masa_forward", "dout", 1),
    "masa_decomposed_backward": ("masa_decomposed_forward", "dout", 1),
    "retention_2d_parallel_backward": ("retention_2d_parallel", "dout", 1),
    "retention_2d_scan_backward": ("retention_2d_scan", "dout", 1),
    "vision_mix_backward": ("vision_mix_forward", "dy", 1),
    "gated_retention_parallel_backward": ("gated_retention_parallel", "dout", 2),
    "delta_rule_parallel_backward": ("delta_rule_parallel", "dout", 2),
    "delta_rule_recurrent_backward": ("delta_rule_recurrent", "dout", 2),
    "delta_rule_chunkwise_backward": ("delta_rule_chunkwise", "dout", 2),
    "delta_output_backward": ("delta_rule_parallel", "dout", 2),
    "l2_normalize_backward": ("l2_normalize", "dy", 1),
    "deltanet_backward": ("deltanet_forward", "dy", 2),
    "gated_retention_recurrent_backward": ("gated_retention_recurrent", "dout", 2),
    "gated_retention_chunkwise_backward": ("gated_retention_chunkwise", "dout", 2),
    "group_norm_backward": ("group_norm_forward", "dy", 1),
    "linear_backward": ("linear_forward", "dy", 1),
    "layer_norm_backward": ("layer_norm_forward", "dy", 1),
    "ffn_backward": ("ffn_forward", "dy", 1),
    "gelu_backward": ("gelu_forward", "dy", 1),
    "embedding_backward": ("embedding_forward", "dy", 1),
}


def backward_call(name, draw) -> Call:
    forward_name, upstream, at = BACKWARD[name]
    fwd = build(forward_name, draw)
    out = fwd.f(**fwd.kwargs)
    other = build("gelu_forward" if name != "gelu_backward" else "linear_forward", draw)
    wrong_cache = other.f(**other.kwargs)[1]
    return Call(getattr(m, name), {upstream: normal(draw, *out[0].shape), "cache": out[at]},
                {"cache": [None, out, wrong_cache]}, names=frozenset({name}))


MODELS = {"RNNLM": (m.RNNLM, m.RNNConfig), "LSTMLM": (m.LSTMLM, m.LSTMConfig),
          "GRULM": (m.GRULM, m.GRUConfig), "MinGRULM": (m.MinGRULM, m.MinGRUConfig),
          "TransformerLM": (m.TransformerLM, m.TransformerConfig),
          "RetNetLM": (m.RetNetLM, m.RetNetConfig), "GatedLM": (m.GatedLM, m.GatedConfig),
          "GatedDeltaNetLM": (m.GatedDeltaNetLM, m.GatedDeltaNetConfig)}
SMALL = dict(d_model=4, n_heads=2, n_layers=1, d_ff=8, dv=2, chunk_size=2, hidden=4)


def model_call(name, draw, z, tokens) -> Call:
    cls_name, method = name.split(".")
    cls, config_cls = MODELS[cls_name]
    fields = config_cls.__dataclass_fields__
    model = cls(config_cls(vocab_size=z["V"], **{k: v for k, v in SMALL.items() if k in fields}))
    params = model.init(seed=draw(st.integers(0, 9)), dtype=np.float64)
    if method == "loss_and_grads":
        return Call(model.loss_and_grads, dict(params=params, tokens=tokens,
                                               targets=np.roll(tokens, -1, axis=1)), {})
    if method == "forward":
        return Call(model.forward, dict(params=params, tokens=tokens), {})
    return Call(lambda params, prompt, n_tokens, top_k: m.generate(
        model, params, prompt, n_tokens, top_k=top_k),
        dict(params=params, prompt=tokens, n_tokens=2, top_k=None),
        {"n_tokens": [-1, 1.5, "2"], "top_k": [0, -2, 1.5]})


FUNCTIONS = [*[n for n in m.__all__ if n in {
    "rnn_step_forward", "rnn_forward", "softmax_forward", "attention_forward", "mha_forward",
    "mha_step", "retention_parallel", "retention_recurrent", "retention_chunkwise",
    "retention_final_state", "msr_forward", "msr_step", "group_norm_forward", "rotate",
    "decay_mask", "linear_forward", "layer_norm_forward", "ffn_forward", "gelu_forward",
    "embedding_forward", "cross_entropy", "rel_error", "numerical_gradient", "clip_grad_norm",
    "count_parameters", "check_gradients", "chunk_decays", "score_normaliser_backward",
    "standardize", "standardize_backward", "split_heads", "merge_heads", "segment_decay",
    "mean_last", "matmul_few_rows", "weight_gradient",
    "gated_chunk_decays", "gated_retention_parallel", "gated_retention_recurrent",
    "gated_retention_chunkwise", "gated_retention_final_state", "gated_decay_gradient",
    "retention_decay_gradient", "msr_gammas", "msr_project", "msr_project_backward",
    "msr_output", "gated_msr_gates", "gated_msr_forward", "gated_msr_step", "patchify",
    "unpatchify", "vision_embed_forward", "manhattan_decay_mask", "decayed_attention_forward",
    "masa_forward", "masa_decomposed_forward", "retention_2d_parallel", "retention_2d_scan",
    "bidirectional_scan", "vision_mix_forward", "delta_rule_parallel", "delta_rule_recurrent",
    "delta_rule_chunkwise", "delta_chunk_transform", "delta_decays", "solve_unit_lower",
    "log_decay_gradient", "gated_msr_gates_backward", "l2_normalize", "deltanet_forward",
    "deltanet_step", "lstm_step_forward", "lstm_forward", "lstm_step_backward", "sigmoid",
    "gru_step_forward", "gru_forward", "log_sigmoid", "linear_scan_sequential",
    "linear_scan_parallel", "mingru_forward", "minlstm_forward", "mlstm_recurrent",
    "mlstm_parallel", "mlstm_normaliser_backward"}], *BACKWARD,
    *[f"{c}.{meth}" for c in MODELS for meth in ("loss_and_grads", "forward", "generate")]]

# public functions that take no arrays (sizes, names, paths, configs): covered elsewhere
NO_ARRAYS = {"build_model", "causal_mask", "init_kv_cache", "init_mha_params", "init_msr_params",
             "init_gated_msr_params", "init_deltanet_params",
             "init_rnn_params", "init_lstm_params", "init_gru_params", "init_mingru_params",
             "init_minlstm_params", "make_task",
             "rotation_angles", "rotation_phases", "rotation_table", "warmup_cosine",
             "retention_forms", "gated_retention_forms", "vision_cores", "config_to_dict",
             "delta_rule_forms",
             "config_from_dict",
             "load_checkpoint", "save_checkpoint", "train", "evaluate",
             "shard_rows"}     # (tests/test_parallel.py tries its wrong sizes)


def test_every_public_function_is_covered():
    import inspect
    public = {n for n in m.__all__ if inspect.isfunction(getattr(m, n))}
    covered = {f.split(".")[-1] for f in FUNCTIONS}          # "RNNLM.generate" -> generate
    assert public - NO_ARRAYS == covered & public


# --- ways to break one argument ------------------------------------------------------------------

def array_breakers(value: np.ndarray, draw, call: Call, arg: str):
    """(label, wrong value, expectation) for one array argument."""
    ints = value.dtype.kind in "iu"
    if value.ndim:
        yield "non-contiguous", np.repeat(value, 2, axis=-1)[..., ::2], WORK
        yield "nested list", value.tolist(), WORK
        axis = draw(st.integers(0, value.ndim - 1))
        yield f"empty axis {axis}", np.take(value, [], axis=axis), RAISE
        yield f"missing axis {axis}", np.take(value, 0, axis=axis), EITHER
        grown = np.concatenate([value, np.take(value, [0], axis=axis)], axis=axis)
        yield f"axis {axis} one longer", grown, EITHER
    ro = value.copy()
    ro.flags.writeable = False
    yield "read-only", ro, WORK
    yield "extra axis", value[None], EITHER
    yield "None", None, EITHER if arg in call.none_ok else RAISE
    for dt in (np.complex128, object, "U3"):
        yield f"dtype {np.dtype(dt)}", value.astype(dt), RAISE
    if not ints:
        yield "dtype bool", value.astype(bool), EITHER if call.converts else RAISE
    if ints:
        yield "float tokens", value + 0.5, RAISE
        yield "token out of range", value + 1000, RAISE
        yield "negative token", value - 1000, RAISE
    elif value.size:
        for bad in (np.nan, np.inf, -np.inf):
            broken = value.copy()
            broken.flat[draw(st.integers(0, value.size - 1))] = bad
            ok = (bad == -np.inf and arg in call.minus_inf) or call.reports_nan
            yield f"{bad} inside", broken, EITHER if ok else RAISE


def dict_breakers(value: dict, draw, call: Call):
    """(label, wrong dict, expectation) for a parameter or gradient dict."""
    key = draw(st.sampled_from(sorted(value)))
    free = EITHER if call.free_dict else RAISE
    missing = EITHER if key in call.optional else free
    yield f"missing {key!r}", {k: v for k, v in value.items() if k != key}, missing
    yield "unknown key", {**value, "extra": np.zeros(2)}, free
    yield "not a dict", list(value.values()), RAISE
    yield f"{key!r} a string", {**value, key: "W"}, RAISE
    target = value[key]
    if isinstance(target, np.ndarray) and target.dtype.kind == "f":
        grown = np.zeros(tuple(n + 1 for n in target.shape))
        yield f"{key!r} wrong shape", {**value, key: grown}, free
        yield f"{key!r} integer", {**value, key: target.astype(np.int64)}, \
            EITHER if call.converts else RAISE
        broken = target.copy()
        broken.flat[draw(st.integers(0, target.size - 1))] = np.nan
        yield f"{key!r} with NaN", {**value, key: broken}, EITHER if call.reports_nan else RAISE
        ro = target.copy()
        ro.flags.writeable = False
        yield f"{key!r} read-only", {**value, key: ro}, WORK


def breakers(call: Call, draw):
    """Every way of breaking one argument of ``call``: (argument, label, value, expectation)."""
    for arg, value in call.kwargs.items():
        if isinstance(value, np.ndarray):
            for label, bad, expect in array_breakers(value, draw, call, arg):
                yield arg, label, bad, expect
        elif isinstance(value, dict):
            for label, bad, expect in dict_breakers(value, draw, call):
                yield arg, label, bad, expect
    for arg, values in call.scalars.items():
        for bad in values:
            yield arg, f"= {bad!r}"[:40], bad, RAISE


# --- judging one case ----------------------------------------------------------------------------

def float_arrays(result):
    if isinstance(result, np.ndarray):
        yield result
    elif isinstance(result, dict):
        for v in result.values():
            yield from float_arrays(v)
    elif isinstance(result, tuple):
        for v in result:
            yield from float_arrays(v)
    elif isinstance(result, float):
        yield np.asarray(result)


def same(a, b):
    xs, ys = list(float_arrays(a)), list(float_arrays(b))
    return len(xs) == len(ys) and all(
        x.shape == y.shape and np.allclose(x, y, rtol=1e-12, atol=1e-12) for x, y in zip(xs, ys))


def judge(call: Call, arg: str, label: str, bad, expect: str, reference):
    try:
        result = call.f(**{**call.kwargs, arg: bad})
    except (ValueError, TypeError) as err:
        assert expect != WORK, f"{arg} {label} must work, got {type(err).__name__}: {err}"
        assert arg in str(err), f"{arg} {label}: the message does not name {arg!r}: {err}"
        prefix = str(err).split(":")[0]
        assert prefix in call.names, f"{arg} {label}: the message does not start with the " \
            f"function's name: {err}"
        return "raised"
    assert expect != RAISE, f"{arg} {label} was accepted silently"
    if call.reports_nan and ("nan" in label.lower() or "inf" in label):
        if isinstance(result, tuple):      # clip_grad_norm: the norm it returns is not finite
            assert not np.isfinite(result[1]), f"{arg} {label}: the norm is finite"
        return "reported"
    for a in float_arrays(result):
        if a.dtype.kind == "f":
            assert np.all(np.isfinite(a)), f"{arg} {label}: non-finite output"
    if expect == WORK:
        assert same(result, reference), f"{arg} {label}: a different result"
    return "worked"


@pytest.mark.parametrize("name", FUNCTIONS)
@given(data=st.data())
@AT_MOST_25
def test_every_wrong_argument(name, data, bad_input_cases):
    """A valid call with drawn sizes and numbers, then every way of breaking one argument."""
    call = build(name, data.draw)
    reference = call.f(**call.kwargs)
    for arg, label, bad, expect in breakers(call, data.draw):
        bad_input_cases[judge(call, arg, label, bad, expect, reference)] += 1


# --- float32 in, float32 out ------------------------------------------------------------------

FLOAT64_BY_DESIGN = {"decay_mask", "rel_error", "numerical_gradient", "count_parameters",
                     "check_gradients", "segment_decay", "retention_decay_gradient",
                     "msr_gammas", "manhattan_decay_mask", "log_sigmoid"}
# (documented to compute in, or return, float64)


def to_float32(value, key=None):
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, dict):
        return {k: to_float32(v, k) for k, v in value.items()}
    if key == "cache" and hasattr(value, "_fields"):    # a cache passed as an argument
        return type(value)(*(to_float32(v) for v in value))
    return value


TOKENS_OUT = {f"{c}.generate" for c in MODELS}      # their results are tokens, not floats
# (loss or norm, gradients): every part is an output, not a state or cache
WHOLE_RESULT = {"cross_entropy", "clip_grad_norm", *(f"{c}.loss_and_grads" for c in MODELS)}


@pytest.mark.parametrize("name", [f for f in FUNCTIONS
                                  if f not in FLOAT64_BY_DESIGN and f not in TOKENS_OUT])
@given(data=st.data())
@AT_MOST_25
def test_float32_inputs_give_float32_results(name, data):
    """The output (every gradient, for a backward or a loss) is float32 when the inputs are, and
    close to the float64 result (float32 keeps about 7 digits; 1e-3 leaves room for
    cancellation); a scalar (a loss, a norm) is compared too."""
    if name in BACKWARD:
        forward_name, _, at = BACKWARD[name]
        fwd = build(forward_name, data.draw)
        dy = normal(data.draw, *fwd.f(**fwd.kwargs)[0].shape)
        run = [getattr(m, name)(cast(dy), fwd.f(**cast(fwd.kwargs))[at])
               for cast in (lambda v: v, lambda v: {k: to_float32(x) for k, x in v.items()}
                            if isinstance(v, dict) else to_float32(v))]
    else:
        call = build(name, data.draw)    # the output; states keep their float64 counts
        run = [r[0] if isinstance(r, tuple) and name not in WHOLE_RESULT else r
               for r in (call.f(**call.kwargs), call.f(**to_float32(call.kwargs)))]
    wide, narrow = (list(float_arrays(r)) for r in run)
    assert len(wide) == len(narrow), f"{name}: {len(wide)} results in float64, {len(narrow)}"
    arrays = 0
    for a, b in zip(wide, narrow, strict=True):
        assert a.dtype == np.float64, f"{name}: a {a.dtype} result from float64 inputs"
        if a.ndim:
            assert b.dtype == np.float32, f"{name}: a {b.dtype} result from float32 inputs"
            arrays += 1
        scale = max(float(np.max(np.abs(a))), 1.0)
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3 * scale)
    assert arrays, f"{name}: no array result was checked"


def float_slots(kwargs):
    """(argument, key or None) of every float64 array in a call's arguments."""
    for arg, value in kwargs.items():
        if arg in ("gamma", "log_decay", "s", "s_prev"):   # decays, gates and counts are always
            continue                                     # used in float64 (decay_mask)
        if isinstance(value, np.ndarray) and value.dtype == np.float64:
            yield arg, None
        elif isinstance(value, dict):
            yield from ((arg, key) for key, v in value.items()
                        if isinstance(v, np.ndarray) and v.dtype == np.float64)


DECAYS_ONLY = {"chunk_decays", "gated_chunk_decays"}     # no float argument but decays


@pytest.mark.parametrize("name", [f for f in FUNCTIONS if f not in FLOAT64_BY_DESIGN
                                  and f not in BACKWARD and f not in DECAYS_ONLY
                                  and f not in TOKENS_OUT])
@given(data=st.data())
@AT_MOST_25
def test_one_float64_input_promotes_the_result(name, data):
    """Mixed precision follows NumPy's promotion: one float64 array among float32 ones makes
    the output float64 (nothing is silently rounded to float32). For a loss the output is the
    gradient, and where gradients come as a dict (a model's loss, clip_grad_norm) the float64
    entry's own gradient stays float64."""
    call = build(name, data.draw)
    slots = list(float_slots(call.kwargs))
    assert slots, f"{name}: no float64 argument to promote"
    arg, key = data.draw(st.sampled_from(slots))
    kwargs = to_float32(call.kwargs)
    if key is None:
        kwargs[arg] = call.kwargs[arg]
    else:
        kwargs[arg] = {**kwargs[arg], key: call.kwargs[arg][key]}
    result = call.f(**kwargs)
    if name == "cross_entropy":
        out = result[1]                                              # the gradient
    elif name == "clip_grad_norm" or name.endswith(".loss_and_grads"):
        out = result[0 if name == "clip_grad_norm" else 1][key]      # that entry's gradient
    else:
        out = result[0] if isinstance(result, tuple) else result
    assert out.dtype == np.float64, f"{name}: float64 {arg}[{key}] gave {out.dtype}"

