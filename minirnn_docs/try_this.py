"""Build-time "Try this" sections: prompts at the end of each tutorial, with answers computed
by the library while the docs are built (so they are never stale), folded away until opened."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

import minirnn as m
from minirnn.bench import median_time

TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"
VISIBLE = re.compile(r'^```python exec="on"(?P<attrs>[^\n]*)\n(?P<code>.*?)^```\s*$',
                     re.DOTALL | re.MULTILINE)


def tutorial_variables(page: str, session: str, blocks: int) -> dict:
    """The variables a student has after running the first ``blocks`` visible code blocks of
    ``session`` on ``tutorials/<page>.md``, exactly as the page shows them (output discarded).

    The answers start from these, so they use the tutorial's own setup, never a hidden one."""
    text = (TUTORIALS / f"{page}.md").read_text(encoding="utf-8")
    codes = [match["code"] for match in VISIBLE.finditer(text)
             if 'source="above"' in match["attrs"] and f'session="{session}"' in match["attrs"]]
    if len(codes) < blocks:
        raise ValueError(f"tutorial_variables: {page} has {len(codes)} visible blocks of "
                         f"session {session!r}, asked for {blocks}")
    namespace: dict = {"__name__": f"tutorial_{session}"}
    with contextlib.redirect_stdout(io.StringIO()):
        for code in codes[:blocks]:
            exec(compile(code, f"{page}.md", "exec"), namespace)
    if "plt" in namespace:
        namespace["plt"].close("all")
    return namespace


def _answer(prompt: str, answer: str) -> str:
    body = "\n".join("        " + line if line else "" for line in answer.strip().splitlines())
    return f"1. {prompt}\n\n    ??? success \"Answer\"\n{body}\n"


def gradient_checking() -> list[tuple[str, str]]:
    t = tutorial_variables("gradient-checking", "t1", 3)    # the layer, inputs, params
    forward, backward = t["scaled_tanh_forward"], t["scaled_tanh_backward"]
    inputs, params = t["inputs"], t["params"]
    errs = {eps: max(m.check_gradients(forward, backward, inputs, params, eps=eps).values())
            for eps in (1e-2, 1e-6, 1e-10)}

    def twice(dy, cache):
        dx, grads = backward(dy, cache)
        return cache[2]["alpha"] * dx, grads              # alpha applied a second time

    broken = m.check_gradients(forward, twice, inputs, params)
    bad = [k for k, e in broken.items() if e > 1e-7]
    alpha = float(params["alpha"])
    calls = []

    def counted(x, params):
        calls.append(1)
        return forward(x, params)

    m.check_gradients(counted, backward, inputs, params)
    sizes = sum(a.size for a in (*inputs.values(), *params.values()))
    arrays = len(inputs) + len(params)
    extra = len(calls) - 2 * sizes
    assert extra == 1 + arrays, (len(calls), sizes, arrays)   # the answer below explains them
    shapes = ", ".join(f"`{k}` {np.shape(v)}" for k, v in {**inputs, **params}.items())
    return [
        ("Check the tutorial's layer with `check_gradients(scaled_tanh_forward, "
         "scaled_tanh_backward, inputs, params, eps=...)` for `eps` of `1e-2`, `1e-6` and "
         "`1e-10`. Which step gives the smallest error, and why?",
         "Largest relative error: " + ", ".join(f"{e:.1e} at eps = {eps:g}"
                                                for eps, e in errs.items())
         + ". Near 1e-6 truncation ($\\varepsilon^2$) and rounding ($1/\\varepsilon$) "
           "balance (G.2); larger steps add truncation error, smaller ones rounding."),
        ("Write a backward that multiplies the input gradient by `params[\"alpha\"]` once "
         "more (a slip when copying `dt`) and check it. Which arrays fail, and by how much?",
         f"Only {', '.join(f'`{k}`' for k in bad)} (relative error "
         f"{max(broken[k] for k in bad):.2f}); `W` and "
         "`alpha` still pass, so the report points at the broken line. The wrong gradient is "
         f"$\\alpha = {alpha:g}$ times the right one, and the relative error of (G.3) between "
         f"$g$ and $\\alpha g$ is $|\\alpha - 1| / (\\alpha + 1) = "
         f"{abs(alpha - 1) / (alpha + 1):.2f}$."),
        ("How many times does `check_gradients` run `scaled_tanh_forward` for the tutorial's "
         f"{shapes}? (Wrap the forward in a function that counts its calls.)",
         f"{len(calls)} times: two per number of x, W and alpha ({sizes} numbers, "
         f"{2 * sizes} calls), and {extra} more: one that gives the output and the cache for "
         f"the analytic gradients, and {arrays}, one per array, in which "
         "`numerical_gradient` runs the forward once to read the output's shape before it "
         "nudges that array. Finite differences cost two forward passes per input element, "
         "which is why checks use tiny shapes."),
    ]


def bptt() -> list[tuple[str, str]]:
    t = tutorial_variables("bptt", "t2", 4)              # the tutorial's x, params, dh, norms, g
    dh, norms, T, cache = t["dh"], t["norms"], t["T"], t["cache"]
    dh_all = np.repeat(dh[:, -1:], T, axis=1)
    every = np.linalg.norm(m.rnn_backward(dh_all, cache)[0], axis=(0, 2))
    ratio = norms[0] / norms[-1]
    g, clipped = t["g"], t["clipped"]
    flat = np.concatenate([v.ravel() for v in g.values()])
    flat_c = np.concatenate([clipped[k].ravel() for k in g])
    cos = float(flat @ flat_c / np.linalg.norm(flat) / np.linalg.norm(flat_c))
    return [
        (f"In the first experiment (orthogonal $W_h$, T = {T}, the loss reads only the last "
         "state), how much smaller is the gradient reaching $x_0$ than the one reaching "
         "$x_{T-1}$? Use the tutorial's `norms`.",
         f"`norms[0] / norms[-1]` = {ratio:.2e}, about a factor {ratio ** (1 / (T - 1)):.4f} "
         "per step: even with all singular values 1, the tanh derivative, below 1 wherever "
         "$h \\ne 0$, shrinks it a little at every step back."),
        ("Let the loss read every state with the same upstream vector, "
         "`dh_all = np.repeat(dh[:, -1:], T, axis=1)`, and backpropagate it through the first "
         "experiment's `cache` (`rnn_backward(dh_all, cache)`; the later blocks keep their "
         "runs under other names). How does the gradient at $x_0$ change?",
         f"It grows from {norms[0]:.2e} to {every[0]:.2e} (and at $x_{{T-1}}$ it stays "
         f"{every[-1]:.2e}, since only the last loss reaches it): the losses of nearby steps "
         "reach $x_0$ through few factors, so short-range learning still works; only the "
         "long-range part vanishes."),
        ("In the clipping experiment ($W_h$ scaled by 2), does clipping to a global norm of 1 "
         "change the *direction* of the gradient `g`?",
         f"No: the cosine between `clipped` and `g` is {cos:.6f}. Clipping only rescales all "
         "gradients together (O.4, derived in session 6)."),
    ]


def attention_kv_cache() -> list[tuple[str, str]]:
    t = tutorial_variables("attention-kv-cache", "t3", 2)   # x (20 tokens), params, heads, full
    x, params, heads, D, full = t["x"], t["params"], t["heads"], t["D"], t["full"]
    cache = m.init_kv_cache(1, D, heads)
    first, _ = m.mha_step(x[:, :15], params, heads, cache)      # a prompt of 15 in one call
    rest = [m.mha_step(x[:, i], params, heads, cache)[0] for i in range(15, 20)]
    err = m.rel_error(np.concatenate([first, np.stack(rest, axis=1)], axis=1), full)
    x2 = x.copy()
    x2[:, 4] += 1.0
    causal = np.abs(m.mha_forward(x2, params, heads)[0][:, 0] - full[:, 0]).max()
    free = m.mha_forward(x, params, heads, causal=False)[0][:, 0]
    free2 = m.mha_forward(x2, params, heads, causal=False)[0][:, 0]
    return [
        ("How many bytes does a float32 KV cache hold after 1000 tokens of one sequence, "
         "for D = 512 and one layer?",
         f"Keys and values, 2 x 1000 x 512 numbers of 4 bytes: {2 * 1000 * 512 * 4:,} bytes "
         "(about 4 MB), growing with every token."),
        ("With the decoding section's `x`, `params` and `heads`, feed the first 15 tokens to "
         "`mha_step` in one call (a prompt), then the last 5 one at a time, into a fresh "
         "`init_kv_cache(1, D, heads)`. Do the outputs match `full`?",
         f"Yes: largest relative difference {err:.1e}. A prompt is the $T_q > 1$ case of "
         "(A.4); the cache does not care how the tokens arrived."),
        ("Add 1 to token 4 of `x` and run `mha_forward` again. By how much does output 0 "
         "change (largest absolute difference) with the causal mask? Without it "
         "(`causal=False` for both runs)?",
         f"With the mask: {causal:.1e}, exactly nothing, since query 0 sees only token 0. "
         f"Without it: {np.abs(free2 - free).max():.2f}, since every query then sees the "
         "future."),
    ]


def retention_three_faces() -> list[tuple[str, str]]:
    t = tutorial_variables("retention-three-faces", "t4", 2)   # q, k, v, gamma, par, rng
    q, k, v, gamma, par, rng = t["q"], t["k"], t["v"], t["gamma"], t["par"], t["rng"]
    T = q.shape[2]
    agree = {}
    for normalize in (False, True):
        p = m.retention_parallel(q, k, v, gamma, normalize=normalize)[0]
        rec = m.retention_recurrent(q, k, v, gamma, normalize=normalize)[0]
        chk = m.retention_chunkwise(q, k, v, gamma, 7, normalize=normalize)[0]
        agree[normalize] = max(m.rel_error(rec, p), m.rel_error(chk, p))
    pieces, state = [], None
    for start in range(0, T, 7):
        if state is not None:
            state = state._replace(s=np.zeros_like(state.s))    # restart the count
        out, state, _ = m.retention_parallel(q[:, :, start:start + 7], k[:, :, start:start + 7],
                                             v[:, :, start:start + 7], gamma, state=state)
        pieces.append(out)
    local = np.concatenate(pieces, axis=2)
    first = m.rel_error(local[:, :, :7], par[:, :, :7])
    dout = rng.standard_normal(par.shape)
    _, _, pc = m.retention_parallel(q, k, v, gamma)
    _, _, cc = m.retention_chunkwise(q, k, v, gamma, 7)
    back = max(m.rel_error(a, b) for a, b in zip(
        m.retention_chunkwise_backward(dout, cc)[:3], m.retention_parallel_backward(dout, pc)[:3]))
    T2 = 2048
    q2, k2 = rng.standard_normal((2, 1, 2, T2, 32))
    v2 = rng.standard_normal((1, 2, T2, 32))
    t_par = median_time(lambda: m.retention_parallel(q2, k2, v2, gamma), 3, 1)
    t_chk = median_time(lambda: m.retention_chunkwise(q2, k2, v2, gamma, 128), 3, 1)
    return [
        ("With the tutorial's `q`, `k`, `v` and `gamma`, run the three forms (chunks of 7) with "
         "`normalize=False` and with `normalize=True`. Do they agree in both cases?",
         f"Yes: largest relative difference {agree[False]:.1e} without and {agree[True]:.1e} "
         "with the normalisations, because (R.7) and (R.8) carry them exactly."),
        ("What breaks if the chunkwise form restarts the count $s_n$ in every chunk (a pitfall "
         "of public RetNet code)? Call `retention_parallel` on chunks of 7 tokens, passing the "
         "state on, but before each chunk set `state = state._replace(s=np.zeros_like(state.s))`"
         ", and compare with `par`.",
         f"The outputs differ from the parallel form by {m.rel_error(local, par):.1e} "
         f"(relative; {first:.1e} on the first chunk, which has the right count): every row "
         "after the first chunk gets the wrong row factor $\\kappa_n = 1/\\sqrt{s_n}$ (R.8)."),
        ("Do the backward passes agree too? Draw `dout = rng.standard_normal(par.shape)` and "
         "compare `retention_chunkwise_backward` (chunks of 7) with "
         "`retention_parallel_backward`.",
         f"Chunkwise against parallel: largest relative difference {back:.1e} over dQ, dK, dV."),
        (f"Time the parallel form and the chunkwise form (chunks of 128) at T = {T2}, with "
         f"`q`, `k`, `v` of shape (1, 2, {T2}, 32) drawn by `rng.standard_normal` and the "
         "tutorial's `gamma`.",
         f"Parallel {1e3 * t_par:.0f} ms, chunkwise {1e3 * t_chk:.0f} ms on the machine that "
         f"built this page. The parallel form does about $T^2(d + d_v)$ multiply-adds per head "
         f"({T2 ** 2 * 64 / 1e6:.0f} million) in a few large products; the chunkwise form "
         f"about $T C (d + d_v) + T d\\,d_v$ ({(T2 * 128 * 64 + T2 * 32 * 32) / 1e6:.0f} "
         f"million) in {T2 // 128} sequential steps. Which one wins at this length depends "
         "on how well the machine runs large products; the parallel form's $T^2$ memory "
         "decides for long sequences."),
    ]


def three_models() -> list[tuple[str, str]]:
    from dataclasses import replace

    t = tutorial_variables("three-models", "three", 1)          # the tutorial's task, configs
    task, configs = t["task"], t["configs"]
    counts = {name: m.count_parameters(m.build_model(c).init(seed=0))
              for name, c in configs.items()}
    tokens, targets = task.batch(np.random.default_rng(0), 4)
    c = configs["retnet"]
    losses, logits = {}, {}
    for form in ("parallel", "chunkwise", "recurrent"):
        model = m.build_model(replace(c, form=form))
        params = model.init(seed=0, dtype=np.float64)
        losses[form] = model.loss_and_grads(params, tokens, targets)[0]
        logits[form] = model.forward(params, tokens)[0]
    spread = max(losses.values()) - min(losses.values())
    apart = max(m.rel_error(logits[f], logits["parallel"]) for f in ("chunkwise", "recurrent"))
    tr = configs["transformer"]
    n = tr.max_len
    kv = 2 * tr.n_layers * n * tr.d_model
    d = c.d_model // c.n_heads
    state = c.n_layers * c.n_heads * (d * c.dv + d + 1)
    return [
        ("How many parameters does each of the tutorial's three `configs` have (use "
         "`count_parameters(build_model(config).init(seed=0))`)?",
         ", ".join(f"{name}: {k:,}" for name, k in counts.items())
         + ": the counts the training table prints (training changes values, not shapes)."),
        ("Compute the RetNet's loss on one batch of the recall `task`, "
         "`tokens, targets = task.batch(np.random.default_rng(0), 4)`, with `form='parallel'`, "
         "`'chunkwise'` and `'recurrent'` (`dataclasses.replace(configs['retnet'], form=...)`, "
         "the same `init(seed=0, dtype=np.float64)`, and `model.loss_and_grads`). Same number?",
         f"Loss {losses['parallel']:.6f} in every form (largest difference {spread:.1e}; the "
         f"logits differ by at most {apart:.1e} relative): the forms are one function."),
        (f"How many numbers does each model carry to decode after {n} tokens, the most the "
         f"transformer's `max_len = {n}` allows? And after 1000 tokens?",
         f"After {n}: RNN {configs['rnn'].hidden} (one hidden vector); transformer {kv:,} "
         f"(a key and a value of width {tr.d_model} for each of {tr.n_layers} layers and {n} "
         f"tokens); RetNet {state:,} ($S$, $z$ and $s$ of {c.n_heads} heads in each of "
         f"{c.n_layers} layers). After 1000: the RNN and the RetNet carry the same numbers; "
         f"this transformer cannot get there at all, because its learned position embedding "
         f"has only {n} rows (a transformer without that limit would need "
         f"{2 * tr.n_layers * 1000 * tr.d_model:,}, growing with every token)."),
    ]


def step_through() -> list[tuple[str, str]]:
    f = m.chunk_decays(0.5, 3, np.zeros(1))
    return [
        ("Run `python -m minirnn step retention --form chunkwise --chunk-size 3 --T 7`. How "
         "many chunks are there, and how long is the last?",
         "Three chunks, rows 0-2, 3-5 and 6: the last has one token, and the form handles it "
         "without padding."),
        ("In session 1, why is `delta` all ones at `t = 2`?",
         "It is the last step (`t = 2` counts from 0, like the code): nothing comes back from "
         "a later step ($da_{T+1} = 0$ in (RNN.3)), so `delta` is just `dh[:, 2]`, which the "
         "script sets to ones."),
        ("Break on `minirnn.retention.chunk_decays` (the function that builds the "
         "`RetentionChunkDecays` of a chunk) and print `xi` for a chunk of 3 with gamma = 0.5.",
         f"`{f.xi[0].tolist()}`: $\\gamma^{{j+1}}$ for rows 0, 1, 2 (the carried state is one "
         "step old for the chunk's first row)."),
    ]


def multiscale_retention() -> list[tuple[str, str]]:
    gammas = m.msr_gammas(8)
    t = tutorial_variables("multiscale-retention", "t7", 4)   # o, w, b of the group-norm section
    o, w, b = t["o"], t["w"], t["b"]
    variance = o.var(axis=-1).mean()
    change = {}
    for eps in (0.0, 1e-5):
        y = m.group_norm_forward(o, w, b, eps)[0]
        change[eps] = {factor: np.abs(m.group_norm_forward(factor * o, w, b, eps)[0] - y).max()
                       for factor in (1000.0, 1e-3)}
    return [
        ("How far back does head 7 of an 8-head layer remember?",
         f"$\\gamma_7 = 1 - 2^{{-12}}$, about {1 / (1 - gammas[7]):.0f} tokens: "
         "token $m$ weighs $\\gamma^{n-m}$, so the weights sum to about $1/(1-\\gamma)$ "
         "and the average age they give is about as large."),
        ("Multiply the group norm's input `o` by 1000, then by 1/1000, with `eps=0` and with "
         "the default `eps=1e-5`. When does the scale of the retention output matter?",
         f"With `eps=0` never: largest change {change[0.0][1000.0]:.1e} (x1000) and "
         f"{change[0.0][1e-3]:.1e} (x1/1000). With `eps=1e-5`: {change[1e-5][1000.0]:.1e} "
         f"when the input grows, but {change[1e-5][1e-3]:.2f} when it shrinks, because the "
         f"groups' variance (on average {variance:.2f} here) then falls to about "
         f"{variance * 1e-6:.0e}, below $\\epsilon$, "
         "which then dominates the root of (M.3). The normalisations of retention leave its "
         "scale free; the layer ignores that scale only while every group's variance stays "
         "well above $\\epsilon$."),
        ("Rotate a query at position 5 and a key at position 2, then both at 105 and 102. "
         "Compare the two dot products.",
         "They are equal (up to rounding): the rotation makes $\\tilde q_n\\cdot\\tilde k_m$ "
         "depend only on $n - m$ (M.2). The tutorial above checks it."),
    ]


def which_memory() -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    d, T = 16, 40
    k = rng.standard_normal((1, 1, T, d))
    v = rng.standard_normal((1, 1, T, d))
    closed = np.full((1, 1, T), -0.05)
    closed[..., 20] = -50.0                                          # one closed gate
    S_all = m.gated_retention_final_state(k, v, closed).S
    S_late = m.gated_retention_final_state(k[:, :, 20:], v[:, :, 20:], closed[:, :, 20:]).S
    flat = np.zeros((1, 1, T))
    lin = m.gated_retention_final_state(k, v, flat).S
    total = (k[0, 0].T @ v[0, 0])
    gamma = 0.9
    return [
        ("In Part 1, which memory does the gated one become when its gate is 1 on every "
         "token?",
         "Linear attention: with $g_t = 0$ the segment decay is the plain causal mask. "
         f"`gated_retention_final_state` with zero log-gates gives $\\sum_m k_m^\\top v_m$ "
         f"(largest difference {np.abs(lin[0, 0] - total).max():.1e})."),
        ("Close one gate (`log_decay = -50` at token 20) and compare the final state with the "
         "state of tokens 20 onward alone. Use `gated_retention_final_state(k, v, log_decay)` "
         "with random `k`, `v` of shape (1, 1, 40, 16) and `log_decay = -0.05` elsewhere.",
         f"They agree to {np.abs(S_all - S_late).max():.1e}: the gate of token 20 multiplies "
         "the state before token 20 writes, so a closed gate erases everything before it in "
         "one step, the reset that a fixed decay can only approximate by waiting."),
        ("About how many distractors does retention with gamma = 0.9 survive before a pair's "
         "weight falls below the cross-talk of one other pair, about $1/\\sqrt{d}$ for d = 16?",
         f"$0.9^M < 1/4$ for $M > {np.log(0.25) / np.log(gamma):.1f}$: about "
         f"{int(np.ceil(np.log(0.25) / np.log(gamma)))} tokens. In the table every pair is "
         "followed by M distractors, 8 (M + 1) tokens in all, so when the state is read the "
         "oldest pair has decayed by $\\gamma^{8M+7}$: "
         + ", ".join(f"$\\gamma^{{{8 * M + 7}}} = {gamma ** (8 * M + 7):.2g}$ at M = {M}"
                     for M in (0, 2)) + ". At M = 2 it is already past that point, and "
         "retention's row falls from there."),
    ]


def memory_that_corrects() -> list[tuple[str, str]]:
    from minirnn.memory_probe import recall_accuracy

    t = tutorial_variables("memory-that-corrects", "delta", 1)   # keys, order, k, v, T
    keys, order, d = t["keys"], t["order"], t["d"]
    k, v, T, v_old, v_new, cosine = t["k"], t["v"], t["T"], t["v_old"], t["v_new"], t["cosine"]
    re_assigned = t["re_assigned"]
    half = m.delta_rule_recurrent(k, k, v, np.full((1, 1, T), 0.5))[2].S[0, 0]
    read = keys[0] @ half[re_assigned + 1]                  # S[0] is the state before token 0
    before = keys[0] @ half[re_assigned]
    exact = np.abs(read - (0.5 * v_new + 0.5 * before)).max()
    q_mat, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, 9)))
    k_orth = q_mat.T[order][None, None]
    S_end = m.delta_rule_recurrent(k_orth, k_orth, v, np.ones((1, 1, T)))[2].S[0, 0, -1]
    end = q_mat.T[0] @ S_end
    gammas = (0.1, 0.3, 0.5, 0.7, 0.75, 0.8, 0.9, 0.95)
    probe = dict(n_pairs=4, rounds=8, d=16)
    delta = recall_accuracy("DeltaNet", **probe)
    ret = {g: recall_accuracy("retention", gamma=g, **probe) for g in gammas}
    best = max(ret, key=ret.get)
    cost = {(g, gap): recall_accuracy("retention", n_pairs=8, gap=gap, d=16, gamma=g)
            for g in (0.9, best) for gap in (0, 16)}
    return [
        ("In the first experiment, write with $\\beta_t = 0.5$ for every token "
         "(`delta_rule_recurrent(k, k, v, np.full((1, 1, T), 0.5))`). How close does "
         "DeltaNet's answer for key 0 get to `v_new` at $t = 9$, and why? (Hint: the state "
         "moves half way along the gradient of $\\|k S - v\\|^2$.)",
         f"Cosine {cosine(read, v_new):.2f} with `v_new` and {cosine(read, v_old):.2f} with "
         "`v_old`. For a unit key (DR.1) gives $k_0 S_9 = (1 - \\beta) k_0 S_8 + \\beta\\, "
         "v_{new}$: the read moves half way from the old answer to the new value (the largest "
         f"difference from $\\tfrac12 k_0 S_8 + \\tfrac12 v_{{new}}$ is {exact:.1e})."),
        ("Make the nine keys orthogonal: `q_mat, _ = np.linalg.qr(np.random.default_rng(0)"
         ".standard_normal((d, 9)))`, keys `q_mat.T`, and the stream `q_mat.T[order]` with the "
         "same `values`. What does DeltaNet ($\\beta_t = 1$) return for key 0 at the end now?",
         f"`v_new` itself (largest difference {np.abs(end - v_new).max():.1e}, cosine "
         f"{cosine(end, v_new):.3f}): a write with key $k_j$ changes what only $k_j$ reads, "
         "so the eight writes after $t = 9$ no longer disturb key 0."),
        ("In table (c), how close can retention get to DeltaNet at $R = 8$ by choosing its "
         "$\\gamma$ (`recall_accuracy(\"retention\", n_pairs=4, rounds=8, gamma=...)` from "
         "`minirnn.memory_probe`), and what does that $\\gamma$ cost in table (b)?",
         f"Not all the way: DeltaNet reads {delta:.2f} of the keys right; retention's best "
         f"$\\gamma$ of {', '.join(f'{g:g}' for g in gammas)} is {best:g} with "
         f"{ret[best]:.2f} (" + ", ".join(f"{ret[g]:.2f} at {g:g}" for g in gammas if g != best)
         + "). A smaller $\\gamma$ forgets the old values faster but also the latest one, so "
         "below the best it gets worse again. In table (b), with 8 pairs, that $\\gamma$ "
         f"costs: {cost[best, 0]:.2f} instead of {cost[0.9, 0]:.2f} without distractors and "
         f"{cost[best, 16]:.2f} instead of {cost[0.9, 16]:.2f} at M = 16. A fixed decay "
         "trades old pairs for stale values; the delta rule removes the stale value itself."),
    ]


def vision() -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    model = m.ViR(m.ViRConfig(n_classes=3, image_size=8, patch_size=4, d_model=8, n_heads=2,
                              n_layers=2, d_ff=16))
    params = model.init(0, dtype=np.float64)
    x = rng.standard_normal((1, 8, 8, 1))
    last = np.abs(model.saliency(params, x, label=0)).max()
    model.cls_position = "first"
    first = np.abs(model.saliency(params, x, label=0)).max()
    q, k = rng.standard_normal((2, 1, 2, 16, 4))
    v = rng.standard_normal((1, 2, 16, 3))
    par, _ = m.retention_2d_parallel(q, k, v, (4, 4), [0.5, 0.9])
    scan, _ = m.retention_2d_scan(q, k, v, (4, 4), [0.5, 0.9])
    D = m.manhattan_decay_mask(4, 4, 0.5)
    return [
        ("Put ViR's class token first (`model.cls_position = \"first\"`, see the `ViR` and "
         "`Classifier` docstrings) and compute its `saliency` map. What do you get, and why?",
         f"Exactly zero everywhere (largest entry {first:g}; with the token last it is "
         f"{last:.2e}): causal retention gives the first token only itself to read, in every "
         "layer."),
        ("Compute softmax-free 2-D retention on a 4 x 4 grid both ways, with "
         "`minirnn.vision.retention_2d_parallel` (all 16 x 16 scores) and "
         "`minirnn.vision.retention_2d_scan` (four 1-D scans), for random `q`, `k` of shape "
         "(1, 2, 16, 4), `v` of shape (1, 2, 16, 3), the grid `(4, 4)` and the decays "
         "`[0.5, 0.9]`. How far apart are they?",
         f"Relative difference {m.rel_error(scan, par):.1e}: the four scans compute the same "
         "function without the 16 x 16 scores."),
        ("What is the Manhattan decay between the two opposite corners of a 4 x 4 grid, with "
         "gamma = 0.5?",
         f"$0.5^6 = {D[0, 15]:g}$: three rows and three columns apart."),
    ]


SECTIONS = {
    "gradient-checking": gradient_checking, "bptt": bptt,
    "attention-kv-cache": attention_kv_cache, "retention-three-faces": retention_three_faces,
    "three-models": three_models, "step-through": step_through,
    "multiscale-retention": multiscale_retention, "which-memory": which_memory,
    "memory-that-corrects": memory_that_corrects, "vision": vision,
}


def section(name: str) -> str:
    """Markdown: the numbered prompts of tutorial ``name``, each with a folded answer."""
    return "\n".join(_answer(p, a) for p, a in SECTIONS[name]())
