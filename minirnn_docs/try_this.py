"""Build-time "Try this" sections: prompts at the end of each tutorial, with answers computed
by the library while the docs are built (so they are never stale), folded away until opened."""

from __future__ import annotations

import numpy as np

import minirnn as m
from minirnn.bench import median_time


def _answer(prompt: str, answer: str) -> str:
    body = "\n".join("        " + line if line else "" for line in answer.strip().splitlines())
    return f"1. {prompt}\n\n    ??? success \"Answer\"\n{body}\n"


def gradient_checking() -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    params = m.init_rnn_params(3, 4, seed=0)
    inputs = {"x": rng.standard_normal((2, 3)), "h_prev": rng.standard_normal((2, 4))}
    errs = {eps: max(m.check_gradients(m.rnn_step_forward, m.rnn_step_backward, inputs,
                                       params, eps=eps).values())
            for eps in (1e-2, 1e-6, 1e-10)}

    def transposed(dh, cache):
        dx, dh_prev, grads = m.rnn_step_backward(dh, cache)
        return dx, dh_prev, {**grads, "Wh": grads["Wh"].T}

    broken = m.check_gradients(m.rnn_step_forward, transposed, inputs, params)
    bad = [k for k, e in broken.items() if e > 1e-7]
    calls = []

    def counted(x, h_prev, params):
        calls.append(1)
        return m.rnn_step_forward(x, h_prev, params)

    m.check_gradients(counted, m.rnn_step_backward, inputs, params)
    sizes = sum(a.size for a in (*inputs.values(), *params.values()))
    return [
        ("Run `check_gradients` on `rnn_step_forward`/`rnn_step_backward` with `eps` of "
         "`1e-2`, `1e-6` and `1e-10`. Which step gives the smallest error, and why?",
         "Largest relative error: " + ", ".join(f"{e:.1e} at eps = {eps:g}"
                                                for eps, e in errs.items())
         + ". Near 1e-6 truncation ($\\varepsilon^2$) and rounding ($1/\\varepsilon$) "
           "balance (G.2); larger steps add truncation error, smaller ones rounding."),
        ("Write a backward that returns `dWh` transposed and check it. Which arrays fail?",
         f"Only {', '.join(bad)} (relative error "
         f"{max(broken[k] for k in bad):.1e}); every other array passes, so the report "
         "points at the broken line."),
        ("How many times does `check_gradients` run the forward for `rnn_step_forward` with "
         "B = 2, D = 3, H = 4?",
         f"{len(calls)} times: two per number of x, h_prev, Wx, Wh and b ({sizes} numbers, "
         f"{2 * sizes} calls), and {len(calls) - 2 * sizes} more for the outputs and the "
         "analytic gradients. Finite differences cost two forward passes per input element, "
         "which is why checks use tiny shapes."),
    ]


def bptt() -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    T, D, H = 60, 4, 8
    params = m.init_rnn_params(D, H, seed=0)
    x = rng.standard_normal((1, T, D))
    h, cache = m.rnn_forward(x, np.zeros((1, H)), params)
    last, every = np.zeros_like(h), np.ones_like(h)
    last[:, -1] = 1.0
    norms = {name: np.linalg.norm(m.rnn_backward(dh, cache)[0], axis=(0, 2))
             for name, dh in (("last", last), ("every", every))}
    p2 = dict(params, Wh=2.0 * params["Wh"])
    _, c2 = m.rnn_forward(x, np.zeros((1, H)), p2)
    g = m.rnn_backward(last, c2)[2]
    clipped, _ = m.clip_grad_norm(g, 1.0)
    flat = np.concatenate([v.ravel() for v in g.values()])
    flat_c = np.concatenate([v.ravel() for v in clipped.values()])
    cos = float(flat @ flat_c / np.linalg.norm(flat) / np.linalg.norm(flat_c))
    return [
        (f"With the orthogonal $W_h$ of `init_rnn_params` and T = {T}, how much gradient "
         "reaches $x_0$ compared with $x_{T-1}$ when the loss reads only the last state?",
         f"$\\|dx_0\\| / \\|dx_{{T-1}}\\| = {norms['last'][0] / norms['last'][-1]:.1e}$: "
         "even with all singular values 1, the tanh derivative below 1 shrinks it step "
         "after step."),
        ("Make the loss read every state (`dh` all ones). How does the gradient at $x_0$ "
         "change?",
         f"It grows from {norms['last'][0]:.1e} to {norms['every'][0]:.2f}: the nearby "
         "steps' losses reach $x_0$ through few factors, so short-range learning still "
         "works; only the long-range part vanishes."),
        ("With $\\rho = 2$, does clipping to a global norm of 1 change the *direction* of the "
         "gradient?",
         f"No: the cosine between the clipped and the original gradient is {cos:.6f}. "
         "Clipping only rescales all gradients together (O.4)."),
    ]


def attention_kv_cache() -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    D, h = 8, 2
    params = m.init_mha_params(D, h, seed=0)
    x = rng.standard_normal((1, 5, D))
    full, _ = m.mha_forward(x, params, h)
    cache, steps = None, []
    for t in range(5):
        y, cache = m.mha_step(x[:, t], params, h, cache)
        steps.append(y)
    err = m.rel_error(np.stack(steps, axis=1), full)
    x2 = x.copy()
    x2[:, 4] += 1.0
    causal_same = np.allclose(m.mha_forward(x2, params, h)[0][:, 0], full[:, 0])
    free = m.mha_forward(x, params, h, causal=False)[0][:, 0]
    free2 = m.mha_forward(x2, params, h, causal=False)[0][:, 0]
    return [
        ("How many bytes does a float32 KV cache hold after 1000 tokens of one sequence, "
         "for D = 512 and one layer?",
         f"Keys and values, 2 x 1000 x 512 numbers of 4 bytes: {2 * 1000 * 512 * 4:,} bytes "
         "(about 4 MB), growing with every token."),
        ("Decode 5 tokens one at a time with `mha_step` and compare with `mha_forward` on "
         "all 5. How large is the difference?",
         f"Largest relative difference {err:.1e}: the same numbers up to rounding."),
        ("Change token 4. Does output 0 change with the causal mask? Without it?",
         f"With the mask: {'unchanged' if causal_same else 'changed'}. Without it: changed "
         f"by {np.abs(free2 - free).max():.2f}: every query then sees the future."),
    ]


def retention_three_faces() -> list[tuple[str, str]]:
    from minirnn.exercises import BY_NAME, exercise_source, load_source

    exercise = BY_NAME["retention_chunkwise"]            # the catalogue's "local count" slip
    chunkwise = load_source(exercise_source(exercise, solution=True,
                                            edits=exercise.mistake("local-count").edits),
                            "local_count").retention_chunkwise

    rng = np.random.default_rng(0)
    B, h, T, d, dv = 1, 2, 40, 8, 4
    q, k = rng.standard_normal((2, B, h, T, d))
    v = rng.standard_normal((B, h, T, dv))
    gamma = np.array([0.9, 0.99])
    agree = {}
    for normalize in (False, True):
        par = m.retention_parallel(q, k, v, gamma, normalize=normalize)[0]
        rec = m.retention_recurrent(q, k, v, gamma, normalize=normalize)[0]
        chk = m.retention_chunkwise(q, k, v, gamma, 16, normalize=normalize)[0]
        agree[normalize] = max(m.rel_error(rec, par), m.rel_error(chk, par))
    par, _, pc = m.retention_parallel(q, k, v, gamma)
    local = chunkwise(q, k, v, gamma, 16)[0]
    dout = rng.standard_normal(par.shape)
    _, _, cc = m.retention_chunkwise(q, k, v, gamma, 16)
    back = max(m.rel_error(a, b) for a, b in zip(
        m.retention_chunkwise_backward(dout, cc)[:3], m.retention_parallel_backward(dout, pc)[:3]))
    T2 = 2048
    q2, k2 = rng.standard_normal((2, 1, 2, T2, 32))
    v2 = rng.standard_normal((1, 2, T2, 32))
    t_par = median_time(lambda: m.retention_parallel(q2, k2, v2, gamma), 3, 1)
    t_chk = median_time(lambda: m.retention_chunkwise(q2, k2, v2, gamma, 128), 3, 1)
    return [
        ("Run the three forms with `normalize=False` and with `normalize=True`. Do they agree "
         "in both cases?",
         f"Yes: largest relative difference {agree[False]:.1e} without and {agree[True]:.1e} "
         "with the normalisations, because (R.7) and (R.8) carry them exactly."),
        ("What breaks if the chunkwise form restarts the count $s_n$ in every chunk (a pitfall "
         "of public RetNet code)?",
         f"The outputs differ from the parallel form by {m.rel_error(local, par):.1e} "
         "(relative): every row after the first chunk gets the wrong row factor "
         "$a_n = 1/\\sqrt{s_n}$ (R.8)."),
        ("Do the backward passes agree too?",
         f"Chunkwise against parallel: largest relative difference {back:.1e} over dQ, dK, dV."),
        (f"Time the parallel form and the chunkwise form (chunks of 128) at T = {T2}.",
         f"Parallel {1e3 * t_par:.0f} ms, chunkwise {1e3 * t_chk:.0f} ms on the machine that "
         "built this page: the parallel form does $T^2$ work, the chunkwise form $T C$."),
    ]


def three_models() -> list[tuple[str, str]]:
    from minirnn.tour import tour_models

    models = tour_models(20)
    counts = {name: m.count_parameters(m.build_model(c).init(0)) for name, c in models.items()}
    c = models["retnet"]
    losses = {}
    tokens = np.random.default_rng(0).integers(0, 20, (2, 16))
    for form in ("parallel", "chunkwise", "recurrent"):
        from dataclasses import replace

        model = m.build_model(replace(c, form=form))
        losses[form] = model.loss_and_grads(model.init(0, np.float64), tokens,
                                            np.roll(tokens, -1, 1))[0]
    spread = max(losses.values()) - min(losses.values())
    t = models["transformer"]
    kv = 2 * t.n_layers * 1000 * t.d_model
    state = c.n_layers * (c.n_heads * (c.d_model // c.n_heads) * (c.dv + 1) + c.n_heads)
    return [
        ("How many parameters does each tour model have?",
         ", ".join(f"{name}: {n:,}" for name, n in counts.items()) + "."),
        ("Compute the RetNet's loss with `form='parallel'`, `'chunkwise'` and `'recurrent'`. "
         "Same number?",
         f"The three losses differ by at most {spread:.1e}: the forms are one function."),
        ("How many numbers does each model carry to decode token 1001?",
         f"RNN: {models['rnn'].hidden} (one hidden vector); transformer: {kv:,} (keys and "
         f"values of every layer and token); RetNet: {state:,} (S, z and s per layer), "
         "whatever the position."),
    ]


def step_through() -> list[tuple[str, str]]:
    f = m.chunk_decays(0.5, 3, np.zeros(1))
    return [
        ("Run `python -m minirnn step retention --form chunkwise --chunk-size 3 --T 7`. How "
         "many chunks are there, and how long is the last?",
         "Three chunks, rows 0-2, 3-5 and 6: the last has one token, and the form handles it "
         "without padding."),
        ("In session 1, why is `g` all ones at `t = 2`?",
         "It is the last step: nothing comes back from a later step, so $g_2 = dh_2$, which "
         "the script sets to ones."),
        ("Break on `chunk_decays` and print `xi` for a chunk of 3 with gamma = 0.5.",
         f"`{f.xi[0].tolist()}`: $\\gamma^{{j+1}}$ for rows 0, 1, 2 (the carried state is one "
         "step old for the chunk's first row)."),
    ]


def multiscale_retention() -> list[tuple[str, str]]:
    gammas = m.msr_gammas(8)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 6, 4, 8))
    w, b = np.ones((4, 8)), np.zeros((4, 8))
    y0 = m.group_norm_forward(x, w, b, eps=0.0)[0]
    y1 = m.group_norm_forward(1000.0 * x, w, b, eps=0.0)[0]
    return [
        ("How far back does head 7 of an 8-head layer remember?",
         f"$\\gamma_7 = 1 - 2^{{-12}}$, about {1 / (1 - gammas[7]):.0f} tokens: "
         "token $m$ weighs $\\gamma^{n-m}$, so the weights sum to about $1/(1-\\gamma)$ "
         "and the average age they give is about as large."),
        ("Multiply the input of `group_norm_forward` by 1000 (with `eps=0`). What changes?",
         f"Nothing: largest difference {np.abs(y1 - y0).max():.1e}. That is why the "
         "retention output's scale, which the normalisations leave free, cannot matter."),
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
         "state of tokens 20 onward alone.",
         f"They agree to {np.abs(S_all - S_late).max():.1e}: the gate of token 20 multiplies "
         "the state before token 20 writes, so a closed gate erases everything before it in "
         "one step, the reset that a fixed decay can only approximate by waiting."),
        ("About how many distractors does retention with gamma = 0.9 survive before a pair's "
         "weight falls below the cross-talk of one other pair, about $1/\\sqrt{d}$ for d = 16?",
         f"$0.9^M < 1/4$ for $M > {np.log(0.25) / np.log(gamma):.1f}$: about "
         f"{int(np.ceil(np.log(0.25) / np.log(gamma)))} tokens. In the table every pair is "
         "followed by M distractors, so the oldest of the 8 pairs is 7(M + 1) tokens old: "
         "already 21 at M = 2, past that point, and retention's row falls from there."),
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
        ("Put ViR's class token first (`model.cls_position = \"first\"`) and compute its "
         "saliency map. What do you get, and why?",
         f"Exactly zero everywhere (largest entry {first:g}; with the token last it is "
         f"{last:.2e}): causal retention gives the first token only itself to read, in every "
         "layer."),
        ("Compute softmax-free 2-D retention on a 4 x 4 grid both ways. How far apart are they?",
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
    "vision": vision,
}


def section(name: str) -> str:
    """Markdown: the numbered prompts of tutorial ``name``, each with a folded answer."""
    return "\n".join(_answer(p, a) for p, a in SECTIONS[name]())
