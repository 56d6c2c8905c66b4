"""``python -m minirnn tour``: a guided check that every mechanism is right, and a race.

(a) gradchecks every forward/backward pair on small random float64 data against finite
differences; (b) computes retention and gated retention three ways, and attention with and
without a KV cache, and compares; (c) trains the tiny language models on associative
recall (MQAR) with the same budget; (d) asks each for an answer and times one generated token
at three context lengths; (e) checks the vision pieces and trains the three image classifiers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from .attention import (
    attention_backward,
    attention_forward,
    init_mha_params,
    mha_backward,
    mha_forward,
    mha_step,
    softmax_backward,
    softmax_forward,
)
from .bench import median_time
from .blocks import count_parameters
from .classifiers import RMTConfig, ViRConfig, ViTConfig
from .delta import delta_rule_chunkwise, delta_rule_chunkwise_backward, delta_rule_forms
from .deltanet import deltanet_backward, deltanet_forward, init_deltanet_params
from .gated import (
    gated_retention_chunkwise,
    gated_retention_chunkwise_backward,
    gated_retention_forms,
)
from .gated_msr import gated_msr_backward, gated_msr_forward, init_gated_msr_params
from .gradcheck import check_gradients, rel_error
from .gru import gru_backward, gru_forward, init_gru_params
from .lstm import init_lstm_params, lstm_backward, lstm_forward
from .minrnn import (
    init_mingru_params,
    init_minlstm_params,
    mingru_backward,
    mingru_forward,
    minlstm_backward,
    minlstm_forward,
)
from .mlstm import (
    mlstm_parallel,
    mlstm_parallel_backward,
    mlstm_recurrent,
    mlstm_recurrent_backward,
)
from .models import (
    DeltaNetConfig,
    GatedConfig,
    GatedDeltaNetConfig,
    LSTMConfig,
    RetNetConfig,
    RNNConfig,
    TransformerConfig,
)
from .msr import init_msr_params, msr_backward, msr_forward
from .registry import build_model
from .retention import retention_forms
from .rnn import (
    init_rnn_params,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)
from .tasks import RecallTask, ShapesTask
from .train import TrainConfig, evaluate, generate, train
from .vision import (
    manhattan_decay_mask,
    masa_backward,
    masa_forward,
    patchify,
    retention_2d_parallel,
    retention_2d_scan,
    retention_2d_scan_backward,
    unpatchify,
    vision_embed_backward,
    vision_embed_forward,
)

# float64 central differences with eps = 1e-6 agree with a correct backward to about 1e-9;
# a wrong backward gives errors of order 1e-2 or more. 1e-7 separates the two with room to spare.
GRADCHECK_TOL = 1e-7
# Two ways of computing the same float64 function differ only in the order of sums: about
# 1e-16 relative. 1e-10 leaves room for long sums and still catches any real mistake.
AGREE_TOL = 1e-10


class GradcheckCase(NamedTuple):
    mechanism: str
    forward: Callable
    backward: Callable
    inputs: dict
    params: dict | None
    eps: float = 1e-6       # the finite-difference step (G.3)


def gradcheck_cases(seed: int = 0) -> Iterator[GradcheckCase]:
    """The forward/backward pairs the tour checks, each on a small random example."""
    rng = np.random.default_rng(seed)
    B, T, D, H = 2, 5, 3, 4
    params = init_rnn_params(D, H, seed=seed)
    yield GradcheckCase("rnn step", rnn_step_forward, rnn_step_backward,
                        {"x": rng.standard_normal((B, D)), "h_prev": rng.standard_normal((B, H))},
                        params)
    yield GradcheckCase("rnn sequence (BPTT)", rnn_forward, rnn_backward,
                        {"x": rng.standard_normal((B, T, D)), "h0": rng.standard_normal((B, H))},
                        params)
    yield GradcheckCase("softmax", softmax_forward, softmax_backward,
                        {"x": rng.standard_normal((B, T))}, None)
    h, d = 2, 3
    qkv = {"q": rng.standard_normal((B, h, T, d)), "k": rng.standard_normal((B, h, T, d)),
           "v": rng.standard_normal((B, h, T, d))}
    yield GradcheckCase("attention (causal)", attention_forward, attention_backward, qkv, None)
    yield GradcheckCase("attention (full)", lambda q, k, v: attention_forward(q, k, v, False),
                        attention_backward, qkv, None)
    mha_params = init_mha_params(6, 2, seed=seed)
    mha_params.update({k: 0.1 * rng.standard_normal(6) for k in ("bq", "bv", "bo")})
    gamma = np.array([0.9, 0.5])
    for form, (forward, backward) in retention_forms(chunk_size=2).items():
        yield GradcheckCase(f"retention ({form})",
                            lambda q, k, v, forward=forward: forward(q, k, v, gamma),
                            backward, qkv, None)
    msr_params = init_msr_params(4, 2, 3, seed=seed)
    x_msr = rng.standard_normal((B, T, 4))
    for form in ("parallel", "recurrent", "chunkwise"):
        yield GradcheckCase(f"multi-scale retention ({form})",
                            lambda x, params, form=form: msr_forward(x, params, 2, form,
                                                                     chunk_size=2),
                            msr_backward, {"x": x_msr}, msr_params)
    gates = {**qkv, "log_decay": np.log(rng.uniform(0.3, 0.95, (B, h, T)))}
    yield GradcheckCase("gated retention (chunkwise)",
                        lambda q, k, v, log_decay: gated_retention_chunkwise(
                            q, k, v, log_decay, 2),
                        gated_retention_chunkwise_backward, gates, None)
    gated_params = init_gated_msr_params(4, 2, 3, seed=seed)
    gated_params["Wa"] = rng.standard_normal((4, 2))                 # gates that vary
    yield GradcheckCase("gated multi-scale retention",
                        lambda x, params: gated_msr_forward(x, params, 2, "chunkwise",
                                                            chunk_size=2),
                        gated_msr_backward, {"x": x_msr}, gated_params)
    keys = qkv["k"] / np.linalg.norm(qkv["k"], axis=-1, keepdims=True)   # unit, as the layer's
    delta = {**qkv, "k": keys, "beta": rng.uniform(0.1, 1.0, (B, h, T)),
             "log_decay": gates["log_decay"]}
    yield GradcheckCase("gated delta rule (chunkwise)",
                        lambda q, k, v, beta, log_decay: delta_rule_chunkwise(
                            q, k, v, beta, 2, log_decay),
                        delta_rule_chunkwise_backward, delta, None)
    delta_params = init_deltanet_params(4, 2, 3, gated=True, seed=seed)
    delta_params["Wa"] = rng.standard_normal((4, 2))                 # gates that vary
    # Step 1e-6: at 1e-5 the normalisation's curvature (DR.11) makes the truncation error of Wq's
    # gradient 1e-6; at 1e-7 rounding in the gates' gradients reaches 1e-7 (ba). At 1e-6 every
    # entry stays below 6e-8 for seeds 0 to 5.
    yield GradcheckCase("gated DeltaNet layer",
                        lambda x, params: deltanet_forward(x, params, 2, "chunkwise",
                                                           chunk_size=2),
                        deltanet_backward, {"x": x_msr}, delta_params, eps=1e-6)
    image = rng.standard_normal((B, 4, 4, 1))
    embed = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3),
             "cls": rng.standard_normal(3), "pos": rng.standard_normal((5, 3))}
    yield GradcheckCase("patch embedding, to the pixels",
                        lambda images, params: vision_embed_forward(images, params, 2),
                        vision_embed_backward, {"images": image}, embed)
    grid_qkv = {"q": rng.standard_normal((B, h, 6, d)), "k": rng.standard_normal((B, h, 6, d)),
                "v": rng.standard_normal((B, h, 6, d))}
    yield GradcheckCase("MaSA (Manhattan decay)",
                        lambda q, k, v: masa_forward(q, k, v, (2, 3), gamma),
                        masa_backward, grid_qkv, None)
    yield GradcheckCase("2-D retention (four scans)",
                        lambda q, k, v: retention_2d_scan(q, k, v, (2, 3), gamma),
                        retention_2d_scan_backward, grid_qkv, None)
    yield GradcheckCase("multi-head attention", lambda x, params: mha_forward(x, params, 2),
                        mha_backward, {"x": rng.standard_normal((B, T, 6))}, mha_params)
    # the recurrent cells and the bridge draw from their own generator, so the examples of
    # the cases above do not depend on them
    rng = np.random.default_rng([seed, 27])
    lstm_params = init_lstm_params(D, H, seed=seed)
    yield GradcheckCase("lstm sequence (BPTT)",
                        lambda x, h0, c0, params: lstm_forward(x, h0, params, c0),
                        lstm_backward, {"x": 0.5 * rng.standard_normal((B, T, D)),
                                        "h0": rng.standard_normal((B, H)),
                                        "c0": rng.standard_normal((B, H))}, lstm_params)
    gru_params = init_gru_params(D, H, seed=seed)
    gru_params["bh"] = 0.5 * rng.standard_normal(3 * H)
    for reset in ("after", "before"):
        yield GradcheckCase(f"gru sequence (reset {reset})",
                            lambda x, h0, params, reset=reset: gru_forward(x, h0, params, reset),
                            gru_backward, {"x": 0.5 * rng.standard_normal((B, T, D)),
                                           "h0": rng.standard_normal((B, H))}, gru_params)
    for form in ("sequential", "parallel"):
        yield GradcheckCase(f"minGRU ({form} scan)",
                            lambda x, h0, params, form=form: mingru_forward(x, h0, params, form),
                            mingru_backward, {"x": rng.standard_normal((B, T, D)),
                                              "h0": rng.standard_normal((B, H))},
                            init_mingru_params(D, H, seed=seed))
    yield GradcheckCase("minLSTM (parallel scan)",
                        lambda x, h0, params: minlstm_forward(x, h0, params, "parallel"),
                        minlstm_backward, {"x": rng.standard_normal((B, T, D)),
                                           "h0": rng.standard_normal((B, H))},
                        init_minlstm_params(D, H, seed=seed))
    mlstm_inputs = {"q": rng.standard_normal((B, 2, T, 3)),
                    "k": rng.standard_normal((B, 2, T, 3)),
                    "v": rng.standard_normal((B, 2, T, 2)),
                    "i_pre": rng.standard_normal((B, 2, T)),
                    "f_pre": rng.standard_normal((B, 2, T))}
    yield GradcheckCase("mLSTM (recurrent)", mlstm_recurrent, mlstm_recurrent_backward,
                        mlstm_inputs, None)
    yield GradcheckCase("mLSTM (parallel)", mlstm_parallel, mlstm_parallel_backward,
                        mlstm_inputs, None)


def table(header: list[str], rows: list[list[str]]) -> str:
    """Format rows as a plain-text table that fits an 80-column terminal."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), line] + [fmt.format(*map(str, r)) for r in rows])


def gradcheck_table(seed: int = 0) -> tuple[str, bool]:
    """Part (a): the gradcheck table and whether every row passed."""
    rows, ok = [], True
    for case in gradcheck_cases(seed):
        report = check_gradients(case.forward, case.backward, case.inputs, case.params, seed=seed,
                                 eps=case.eps)
        for name, err in report.items():
            passed = err < GRADCHECK_TOL
            ok &= passed
            rows.append([case.mechanism, name, f"{err:.2e}", "pass" if passed else "FAIL"])
    return table(["mechanism", "input/parameter", "max rel error", "result"], rows), ok


def kv_cache_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): attention decoded with a KV cache against the full causal forward."""
    rng = np.random.default_rng(seed)
    B, T, D, n_heads = 2, 12, 8, 2
    params = init_mha_params(D, n_heads, seed=seed)
    x = rng.standard_normal((B, T, D))
    full, _ = mha_forward(x, params, n_heads)
    prompt, cache = mha_step(x[:, :4], params, n_heads)
    steps = [mha_step(x[:, t], params, n_heads, cache)[0] for t in range(4, T)]
    decoded = np.concatenate([prompt, np.stack(steps, axis=1)], axis=1)
    err = rel_error(decoded, full)
    return table(["computed as", "compared with", "rel diff", "result"],
                 [["KV cache: prompt of 4, then 1 by 1", "full causal forward", f"{err:.1e}",
                   "pass" if err <= AGREE_TOL else "FAIL"]]), err <= AGREE_TOL


def retention_forms_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): the three forms of retention, outputs and gradients, on one random example."""
    rng = np.random.default_rng(seed)
    B, h, T, d, dv = 2, 3, 50, 8, 6
    q, k = rng.standard_normal((2, B, h, T, d))
    v = rng.standard_normal((B, h, T, dv))
    gamma = 1 - 2.0 ** (-5 - np.arange(h))          # the paper's decays 1 - 2^(-5-i)
    dout = rng.standard_normal((B, h, T, dv))
    rows, all_ok = [], True
    for normalize in (False, True):
        ref = None
        for chunk in (None, 1, 7, 16, 64):
            for form, (forward, backward) in retention_forms(chunk).items():
                if (chunk is None) == (form == "chunkwise"):
                    continue                       # parallel and recurrent once, then chunks
                out, _, cache = forward(q, k, v, gamma, normalize=normalize)
                got = (out, *backward(dout, cache)[:3])
                if ref is None:
                    ref = got                      # the parallel form, computed first
                    continue
                errs = [rel_error(a, b) for a, b in zip(got, ref, strict=True)]
                ok = max(errs) <= AGREE_TOL
                all_ok &= ok
                rows.append([form + (f", chunk {chunk}" if chunk else ""),
                             "on" if normalize else "off"] + [f"{e:.1e}" for e in errs]
                            + ["pass" if ok else "FAIL"])
    header = ["form vs parallel", "normalize", "out", "dq", "dk", "dv", "result"]
    return table(header, rows), all_ok


def gated_forms_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): gated retention's three forms, with random gates, including the gates'
    gradient."""
    rng = np.random.default_rng(seed + 1)
    B, h, T, d, dv = 2, 3, 50, 8, 6
    q, k = rng.standard_normal((2, B, h, T, d))
    v = rng.standard_normal((B, h, T, dv))
    log_decay = np.log(rng.uniform(0.5, 1.0, (B, h, T)))             # gates in (0.5, 1)
    dout = rng.standard_normal((B, h, T, dv))
    rows, all_ok, ref = [], True, None
    for chunk in (None, 7, 16):
        for form, (forward, backward) in gated_retention_forms(chunk).items():
            if (chunk is None) == (form == "chunkwise"):
                continue
            out, _, cache = forward(q, k, v, log_decay)
            got = (out, *backward(dout, cache)[:4])
            if ref is None:
                ref = got                              # the parallel form, computed first
                continue
            errs = [rel_error(a, b) for a, b in zip(got, ref, strict=True)]
            ok = max(errs) <= AGREE_TOL
            all_ok &= ok
            rows.append([form + (f", chunk {chunk}" if chunk else "")]
                        + [f"{e:.1e}" for e in errs] + ["pass" if ok else "FAIL"])
    header = ["gated, vs parallel", "out", "dq", "dk", "dv", "dlog_decay", "result"]
    return table(header, rows), all_ok


def delta_forms_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): the delta rule's three forms on unit keys, plain and gated, including the
    gradients of the writing strengths and the gates."""
    rng = np.random.default_rng(seed + 2)
    B, h, T, d, dv = 2, 3, 50, 8, 6
    q, k = rng.standard_normal((2, B, h, T, d))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)                   # unit keys
    v = rng.standard_normal((B, h, T, dv))
    beta = rng.uniform(0.0, 1.0, (B, h, T))
    dout = rng.standard_normal((B, h, T, dv))
    rows, all_ok = [], True
    for gated in (False, True):
        log_decay = np.log(rng.uniform(0.5, 1.0, (B, h, T))) if gated else None
        ref = None
        for chunk in (None, 7, 16):
            for form, (forward, backward) in delta_rule_forms(chunk).items():
                if (chunk is None) == (form == "chunkwise"):
                    continue
                out, state, cache = forward(q, k, v, beta, log_decay)
                grads = backward(dout, cache)[:5]
                got = (out, state.S, *(grad for grad in grads if grad is not None))
                if ref is None:
                    ref = got                          # the parallel form, computed first
                    continue
                errs = [rel_error(a, b) for a, b in zip(got, ref, strict=True)]
                ok = max(errs) <= AGREE_TOL
                all_ok &= ok
                rows.append([form + (f", chunk {chunk}" if chunk else ""),
                             "gated" if gated else "plain", f"{errs[0]:.1e}", f"{errs[1]:.1e}",
                             f"{max(errs[2:]):.1e}", "pass" if ok else "FAIL"])
    header = ["delta rule, vs parallel", "gates", "out", "state", "max grad", "result"]
    return table(header, rows), all_ok


def msr_forms_table(seed: int = 0) -> tuple[str, bool]:
    """Part (b): the whole multi-scale retention layer (group norm eps = 1e-5) in each form."""
    rng = np.random.default_rng(seed)
    params = init_msr_params(16, 4, 8, seed=seed)
    x = rng.standard_normal((2, 50, 16))
    dy = rng.standard_normal(x.shape)
    y_ref, _, cache = msr_forward(x, params, 4)
    dx_ref, g_ref, _ = msr_backward(dy, cache)
    rows, all_ok = [], True
    for form, chunk in (("recurrent", None), ("chunkwise", 7), ("chunkwise", 16)):
        y, _, cache = msr_forward(x, params, 4, form, chunk_size=chunk)
        dx, grads, _ = msr_backward(dy, cache)
        errs = [rel_error(y, y_ref), rel_error(dx, dx_ref),
                max(rel_error(grads[key], g_ref[key]) for key in params)]
        ok = max(errs) <= AGREE_TOL
        all_ok &= ok
        rows.append([form + (f", chunk {chunk}" if chunk else ""), *(f"{e:.1e}" for e in errs),
                     "pass" if ok else "FAIL"])
    return table(["MSR layer vs parallel", "out", "dx", "d(params)", "result"], rows), all_ok


def tour_models(vocab_size: int, max_len: int = 64) -> dict:
    """The tiny models of parts (c) and (d), of comparable size."""
    return {
        "rnn": RNNConfig(vocab_size, d_model=32, hidden=64),
        "lstm": LSTMConfig(vocab_size, d_model=32, hidden=64),
        "transformer": TransformerConfig(vocab_size, d_model=32, n_heads=2, n_layers=2,
                                         d_ff=64, max_len=max_len),
        "retnet": RetNetConfig(vocab_size, d_model=32, n_heads=2, n_layers=2, dv=16, d_ff=64,
                               form="chunkwise", chunk_size=16),
        "gated": GatedConfig(vocab_size, d_model=32, n_heads=2, n_layers=2, dv=16, d_ff=64,
                             form="chunkwise", chunk_size=16),
        "delta": DeltaNetConfig(vocab_size, d_model=32, n_heads=2, n_layers=2, dv=16, d_ff=64,
                                form="chunkwise", chunk_size=16),
        "gated-delta": GatedDeltaNetConfig(vocab_size, d_model=32, n_heads=2, n_layers=2, dv=16,
                                           d_ff=64, form="chunkwise", chunk_size=16),
    }


def training_table(steps: int = 500, seed: int = 0, progress: bool = False):
    """Part (c): the models trained on associative recall with the same budget."""
    task = RecallTask(n_pairs=4, n_queries=4, n_keys=16, n_values=16)
    config = TrainConfig(steps=steps, batch_size=32, lr=3e-3, eval_every=steps, seed=seed)
    rows, trained = [], {}
    for name, model_config in tour_models(task.vocab_size).items():
        model = build_model(model_config)
        result = train(model, model.init(seed), task, config, progress=progress)
        metrics = evaluate(model, result.params, task, n_batches=8, batch_size=64)
        trained[name] = (model, result.params)
        rows.append([name, f"{count_parameters(result.params):,}",
                     f"{result.history[-1]['loss']:.3f}", f"{metrics['loss']:.3f}",
                     f"{metrics['accuracy']:.1%}", f"{result.tokens_per_second:,.0f}"])
    header = ["model", "params", "train loss", "eval loss", "recall acc", "train tok/s"]
    return table(header, rows), task, trained


def decode_time(model, params, context: int, n_steps: int = 20, seed: int = 0,
                prompt_len: int = 512) -> float:
    """Median seconds per generated token after ``context`` tokens (batch 1).

    A real prompt of at most ``prompt_len`` tokens goes through ``start``; the rest of the
    context is filled without running it, since the cost of one step does not depend on what
    the past tokens were: a KV cache gets random keys and values up to ``context`` positions,
    a retention state just moves its position on (its size never changes). Every step decodes
    the same position: a cache is rewound, a state is reused.
    """
    rng = np.random.default_rng(seed)
    prompt = rng.integers(0, model.config.vocab_size, (1, min(context, prompt_len)))
    _, state = model.start(params, prompt)
    token = prompt[:, -1]
    caches = state if isinstance(state, list) and hasattr(state[0], "length") else None
    if caches is not None:                                   # transformer: grow every cache
        for cache in caches:
            extra = context - cache.length
            shape = (*cache.k.shape[:2], extra, cache.k.shape[3])
            cache.append(rng.standard_normal(shape).astype(cache.k.dtype),
                         rng.standard_normal(shape).astype(cache.v.dtype))
    elif isinstance(state, list):                            # retnet: a later position
        state = [s._replace(position=context) for s in state]
    lengths = [c.length for c in caches] if caches is not None else None

    def one_step():
        if lengths is not None:
            for cache, length in zip(caches, lengths):
                cache.length = length
        model.step(params, token, state)

    return median_time(one_step, repeat=n_steps, warmup=3)


def decoding_table(task, trained, contexts=(64, 4096, 65536), seed: int = 0) -> str:
    """Part (d): a few greedy answers from each trained model, and the per-token decode time
    at three context lengths (untrained models of the same shape, so any length works)."""
    lines = []
    tokens, targets = task.batch(np.random.default_rng(seed + 99), 1)
    prompt = tokens[0, :2 * task.n_pairs + 1]                   # pairs, then one query key
    lines.append(f"prompt: {task.decode(prompt)}   (answer: "
                 f"{task.decode([targets[0, 2 * task.n_pairs]])})")
    for name, (model, params) in trained.items():
        out = generate(model, params, prompt, 1, temperature=0)
        lines.append(f"  {name:<12} answers {task.decode(out[-1:])}")
    rows = []
    for name, config in tour_models(task.vocab_size, max_len=max(contexts) + 32).items():
        model = build_model(config)
        params = model.init(seed)
        times = [decode_time(model, params, c) for c in contexts]
        rows.append([name] + [f"{1e3 * t:.3f}" for t in times]
                    + [f"{times[-1] / times[0]:.2f}x"])
    header = ["model"] + [f"ms at {c}" for c in contexts] + \
        [f"{contexts[-1]} vs {contexts[0]}"]
    return "\n".join(lines) + "\n\n" + table(header, rows)


def vision_table(seed: int = 0, steps: int = 200) -> tuple[str, bool]:
    """Part (e): the exact facts of the vision page, then ViT, RMT and ViR trained on drawn
    shapes with the same budget."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 8, 12, 3))
    q, k = rng.standard_normal((2, 2, 2, 12, 4))
    v = rng.standard_normal((2, 2, 12, 3))
    Gamma = manhattan_decay_mask(3, 4, 0.7)
    vir = build_model(ViRConfig(3, image_size=8, patch_size=4, d_model=8, n_heads=2,
                                n_layers=2, d_ff=16))
    params = vir.init(seed, dtype=np.float64)
    vir.cls_position = "first"
    first = float(np.abs(vir.saliency(params, x[:, :, :8, :1])).max())
    facts = [("unpatchify(patchify(x)) == x",
              float(np.abs(unpatchify(patchify(x, 4), (8, 12, 3), 4) - x).max())),
             ("Manhattan decay == kron(Gamma^y, Gamma^x)",
              rel_error(Gamma, np.kron(manhattan_decay_mask(1, 3, 0.7),
                                   manhattan_decay_mask(1, 4, 0.7)))),
             ("2-D retention: four scans == parallel",
              rel_error(retention_2d_scan(q, k, v, (3, 4), [0.6, 0.9])[0],
                        retention_2d_parallel(q, k, v, (3, 4), [0.6, 0.9])[0])),
             ("ViR, class token first: |saliency|", first)]
    rows, ok = [], True
    for name, err in facts:
        ok &= err <= AGREE_TOL
        rows.append([name, f"{err:.1e}", "pass" if err <= AGREE_TOL else "FAIL"])
    text = table(["exact fact", "difference", "result"], rows)
    task = ShapesTask(size=16)
    config = TrainConfig(steps=steps, batch_size=32, lr=3e-3, eval_every=steps, seed=seed)
    rows = []
    for config_class in (ViTConfig, RMTConfig, ViRConfig):
        model = build_model(config_class(task.n_classes, image_size=16, patch_size=4))
        result = train(model, model.init(seed), task, config, progress=False)
        metrics = evaluate(model, result.params, task, n_batches=8, batch_size=64)
        rows.append([model.config.kind, f"{count_parameters(result.params):,}",
                     f"{metrics['accuracy']:.1%}"])
    return text + "\n\n" + table(["model", "params", "shapes accuracy"], rows), ok


def run_tour(seed: int = 0, out: Callable[[str], None] = print, steps: int = 500,
             progress: bool = False) -> bool:
    """Run every part of the tour, printing as it goes; return True when all checks pass.

    ``steps`` is the training budget of part (c), the same for every model.
    """
    out("minirnn tour: every mechanism, checked by the numbers\n")
    out(f"(a) Gradient checks: hand-written backward vs central differences\n"
        f"    (float64, pass if < {GRADCHECK_TOL:g})\n")
    text, ok = gradcheck_table(seed)
    out(text)
    out(f"\n(b) Retention, one function three ways: max relative difference from the\n"
        f"    parallel form (float64, B=2, h=3, T=50, gamma_i = 1 - 2^(-5-i); chunks of 7\n"
        f"    and 16 leave a shorter last chunk; pass if <= {AGREE_TOL:g})\n")
    text, forms_ok = retention_forms_table(seed)
    out(text)
    out("\n    Gated retention: a gate per token and head, drawn in (0.5, 1), normalised\n")
    text, gated_ok = gated_forms_table(seed)
    out(text)
    out("\n    The whole multi-scale retention layer (h=4, T=50, group norm eps = 1e-5)\n")
    text, msr_ok = msr_forms_table(seed)
    out(text)
    out("\n    The delta rule: unit keys, writing strengths in (0, 1), plain and gated\n"
        "    (gates in (0.5, 1)); max grad: the largest over dq, dk, dv, dbeta (and dg)\n")
    text, delta_ok = delta_forms_table(seed)
    out(text)
    out("\n    Attention, computed two ways (float64, max relative difference)\n")
    text, cache_ok = kv_cache_table(seed)
    out(text)
    ok = ok and forms_ok and gated_ok and msr_ok and delta_ok and cache_ok
    out(f"\n(c) The language models, trained on associative recall (MQAR)\n"
        f"    ({steps} steps of 32 sequences each, the same for every model)\n")
    text, task, trained = training_table(steps, seed, progress)
    out(text)
    out("\n(d) Decoding: a greedy answer from each model, and the time per generated token\n"
        "    (ms/token) after a context of 64, 4096 and 65536 tokens. The transformer\n"
        "    attends over a KV cache that grows; the others carry a state of\n"
        "    fixed size. At D = 32 a step is mostly Python and NumPy call overhead, and\n"
        "    RetNet's rotation, group norm and gate make more calls than a short cache\n"
        "    scan: the cache wins at short context, the fixed state once it is long.\n")
    out(decoding_table(task, trained, seed=seed))
    out(f"\n(e) Vision: patches, the Manhattan decay and 2-D retention, checked; then ViT,\n"
        f"    RMT and ViR trained on drawn shapes ({max(steps // 2, 1)} steps of 32 images)\n")
    text, vision_ok = vision_table(seed, max(steps // 2, 1))
    out(text)
    ok = ok and vision_ok
    out("\nAll checks passed." if ok else "\nSOME CHECKS FAILED.")
    return ok
