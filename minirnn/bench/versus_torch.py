"""PyTorch twins of minirnn's layers and models, used only to time them against minirnn.

DeltaNet's twin solves each chunk's triangular system with ``torch.linalg.solve_triangular``.

Same shapes, same equations (retention with its three normalisations, rotation, per-head group
norm, swish gate; pre-LN blocks with tanh-GELU feed-forward), float32, autograd for the
backward. Imported only by ``python -m minirnn bench torch`` when torch is installed (the
``[bench]`` extra); CI does not install torch, so this file is left out of the coverage figure.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from .._checks.core import trusted
from ..msr import msr_gammas, rotation_angles
from .timing import interleaved, summary


def _rotate(x: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs (2i, 2i+1) of x (B, h, T, d) by n theta_i, eq. (M.2)."""
    T, d = x.shape[-2], x.shape[-1]
    angles = torch.tensor(np.outer(np.arange(T), rotation_angles(d)), dtype=x.dtype)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).flatten(-2)


def _decay(gamma: np.ndarray, T: int, dtype) -> torch.Tensor:
    n = np.arange(T)
    lag = n[:, None] - n[None, :]
    D = np.where(lag >= 0, gamma[:, None, None] ** np.maximum(lag, 0), 0.0)
    return torch.tensor(D, dtype=dtype)


def retention_parallel(q, k, v, gamma: np.ndarray):
    """Normalised parallel retention, eq. (R.6)."""
    d = q.shape[-1]
    D = _decay(gamma, q.shape[-2], q.dtype)
    D = D / D.sum(-1, keepdim=True).sqrt()
    R = (q @ k.transpose(-1, -2)) * d ** -0.5 * D
    c = R.sum(-1, keepdim=True).abs().clamp(min=1.0)
    return (R @ v) / c


def retention_chunkwise(q, k, v, gamma: np.ndarray, chunk: int):
    """Normalised chunkwise retention, eq. (R.8), with the global row counts."""
    B, h, T, d = q.shape
    q = q * d ** -0.5
    gammas = torch.tensor(gamma, dtype=q.dtype)
    S = q.new_zeros(B, h, d, v.shape[-1])
    z = q.new_zeros(B, h, d)
    s = torch.zeros(h, dtype=q.dtype)
    outs = []
    for start in range(0, T, chunk):
        qc, kc, vc = (x[:, :, start:start + chunk] for x in (q, k, v))
        L = qc.shape[2]
        p = gammas[:, None] ** torch.arange(L + 1, dtype=q.dtype)
        xi, zeta, gL = p[:, 1:], p[:, :L].flip(-1), p[:, L]
        rows = xi * s[:, None] + p[:, :L].cumsum(-1)
        a = rows.rsqrt()[None, :, :, None]
        inner = (qc @ kc.transpose(-1, -2)) * _decay(gamma, L, q.dtype)
        P = a * (inner @ vc + xi[None, :, :, None] * (qc @ S))
        r = a[..., 0] * (inner.sum(-1) + xi * torch.einsum("bhjd,bhd->bhj", qc, z))
        outs.append(P / r.abs().clamp(min=1.0)[..., None])
        kz = kc * zeta[None, :, :, None]
        S = gL[None, :, None, None] * S + kz.transpose(-1, -2) @ vc
        z = gL[None, :, None] * z + kz.sum(2)
        s = gL * s + p[:, :L].sum(-1)
    return torch.cat(outs, dim=2)


def gated_retention_chunkwise(q, k, v, log_decay, chunk: int):
    """Normalised gated retention chunk by chunk, eqs. (GR.3)-(GR.5): retention's chunkwise
    form with the segment decay of the log-gates and the global row counts."""
    B, h, T, d = q.shape
    q = q * d ** -0.5
    S = q.new_zeros(B, h, d, v.shape[-1])
    z = q.new_zeros(B, h, d)
    s = q.new_zeros(B, h)
    outs = []
    for start in range(0, T, chunk):
        qc, kc, vc = (x[:, :, start:start + chunk] for x in (q, k, v))
        b = log_decay[:, :, start:start + chunk].cumsum(-1)
        Gamma = (b[..., :, None] - b[..., None, :]).clamp(max=0).exp().tril()
        xi, zeta = b.exp(), (b[..., -1:] - b).clamp(max=0).exp()
        kappa = (xi * s[..., None] + Gamma.sum(-1)).rsqrt()
        R = (qc @ kc.transpose(-1, -2)) * (Gamma * kappa[..., None])
        carried = (kappa * xi)[..., None]
        P = R @ vc + carried * (qc @ S)
        r = R.sum(-1) + carried[..., 0] * torch.einsum("bhjd,bhd->bhj", qc, z)
        outs.append(P / r.abs().clamp(min=1.0)[..., None])
        kz = kc * zeta[..., None]
        S = xi[..., -1, None, None] * S + kz.transpose(-1, -2) @ vc
        z = xi[..., -1, None] * z + kz.sum(2)
        s = xi[..., -1] * s + zeta.sum(-1)
    return torch.cat(outs, dim=2)


class MSR(nn.Module):
    """Multi-scale retention (gated: the gates come from the tokens, eq. (GR.9))."""

    def __init__(self, D: int, n_heads: int, dv: int, form: str = "parallel", chunk: int = 16,
                 eps: float = 1e-5, gated: bool = False, tau: float = 1.0):
        super().__init__()
        self.h, self.dv, self.form, self.chunk, self.tau = n_heads, dv, form, chunk, tau
        self.gamma = msr_gammas(n_heads)
        self.a = nn.Linear(D, n_heads) if gated else None
        self.q, self.k = nn.Linear(D, D, bias=False), nn.Linear(D, D, bias=False)
        self.v = nn.Linear(D, n_heads * dv, bias=False)
        self.gate = nn.Linear(D, n_heads * dv, bias=False)
        self.o = nn.Linear(n_heads * dv, D, bias=False)
        self.norm = nn.GroupNorm(n_heads, n_heads * dv, eps=eps)

    def forward(self, x):
        B, T, D = x.shape

        def heads(t, w):
            return t.view(B, T, self.h, w).transpose(1, 2)

        q, k = _rotate(heads(self.q(x), D // self.h)), _rotate(heads(self.k(x), D // self.h))
        v = heads(self.v(x), self.dv)
        if self.a is not None:
            log_decay = nn.functional.logsigmoid(self.a(x)).transpose(1, 2) / self.tau
            chunk = self.chunk if self.form == "chunkwise" else T   # parallel: one chunk
            o = gated_retention_chunkwise(q, k, v, log_decay, chunk)
        elif self.form == "parallel":
            o = retention_parallel(q, k, v, self.gamma)
        else:
            o = retention_chunkwise(q, k, v, self.gamma, self.chunk)
        y = self.norm(o.transpose(1, 2).reshape(B * T, -1)).view(B, T, -1)   # per token, head
        return self.o(nn.functional.silu(self.gate(x)) * y)


def delta_rule_chunkwise(q, k, v, beta, log_decay, chunk: int):
    """The delta rule chunk by chunk, eqs. (DR.6)-(DR.7): per chunk the UT transform
    ``T_c = M^{-1} diag(beta)`` (torch's unit lower triangular solve), ``W``, ``U``, the
    corrections ``U - W S``, the output and the state handed on. ``log_decay`` None: plain."""
    B, h, T, d = q.shape
    scale = d ** -0.5
    S = q.new_zeros(B, h, d, v.shape[-1])
    outs = []
    for start in range(0, T, chunk):
        qc, kc, vc, bc = (x[:, :, start:start + chunk] for x in (q, k, v, beta))
        L = qc.shape[2]
        if log_decay is None:
            Gamma = torch.ones(L, L, dtype=q.dtype).tril()
            xi = zeta = torch.ones(L, dtype=q.dtype)
        else:
            b = log_decay[:, :, start:start + chunk].cumsum(-1)
            Gamma = (b[..., :, None] - b[..., None, :]).clamp(max=0).exp().tril()
            xi, zeta = b.exp(), (b[..., -1:] - b).exp()
        KK = (kc @ kc.transpose(-1, -2)) * Gamma
        M = torch.eye(L, dtype=q.dtype) + (bc[..., None] * KK).tril(-1)
        T_c = torch.linalg.solve_triangular(M, torch.diag_embed(bc), upper=False,
                                            unitriangular=True)
        W = T_c @ (xi[..., None] * kc)
        U = T_c @ vc - W @ S
        R = (qc @ kc.transpose(-1, -2)).tril() * Gamma
        outs.append(scale * (xi[..., None] * (qc @ S) + R @ U))
        S = xi[..., -1, None, None] * S + kc.transpose(-1, -2) @ (zeta[..., None] * U)
    return torch.cat(outs, dim=2)


class DeltaNet(nn.Module):
    """The DeltaNet layer (gated: gated DeltaNet): unit queries and keys, beta = sigmoid,
    the delta rule chunkwise, per-head group norm, swish gate."""

    def __init__(self, D: int, n_heads: int, dv: int, gated: bool, chunk: int, eps: float,
                 tau: float = 1.0):
        super().__init__()
        self.h, self.dv, self.chunk, self.tau = n_heads, dv, chunk, tau
        self.q, self.k = nn.Linear(D, D, bias=False), nn.Linear(D, D, bias=False)
        self.v = nn.Linear(D, n_heads * dv, bias=False)
        self.gate = nn.Linear(D, n_heads * dv, bias=False)
        self.o = nn.Linear(n_heads * dv, D, bias=False)
        self.beta = nn.Linear(D, n_heads)
        self.a = nn.Linear(D, n_heads) if gated else None
        self.norm = nn.GroupNorm(n_heads, n_heads * dv, eps=eps)

    def forward(self, x):
        B, T, D = x.shape

        def heads(t, w):
            return t.view(B, T, self.h, w).transpose(1, 2)

        def unit(t):                                    # (DR.11)
            return t / (t * t).sum(-1, keepdim=True).add(1e-6).sqrt()

        q, k = unit(heads(self.q(x), D // self.h)), unit(heads(self.k(x), D // self.h))
        v = heads(self.v(x), self.dv)
        beta = torch.sigmoid(self.beta(x)).transpose(1, 2)
        log_decay = None if self.a is None else \
            nn.functional.logsigmoid(self.a(x)).transpose(1, 2) / self.tau
        o = delta_rule_chunkwise(q, k, v, beta, log_decay, self.chunk)
        y = self.norm(o.transpose(1, 2).reshape(B * T, -1)).view(B, T, -1)
        return self.o(nn.functional.silu(self.gate(x)) * y)


class Block(nn.Module):
    def __init__(self, D: int, mix: nn.Module, d_ff: int):
        super().__init__()
        self.ln1, self.ln2, self.mix = nn.LayerNorm(D), nn.LayerNorm(D), mix
        self.ff = nn.Sequential(nn.Linear(D, d_ff), nn.GELU(approximate="tanh"),
                                nn.Linear(d_ff, D))

    def forward(self, x):
        x = x + self.mix(self.ln1(x))
        return x + self.ff(self.ln2(x))


class CausalMHA(nn.Module):
    def __init__(self, D: int, n_heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(D, n_heads, batch_first=True)

    def forward(self, x):
        T = x.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        return self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]


class MinGRU(nn.Module):
    """minGRU, eq. (MIN.4): ``h_t = (1 - z_t) h_{t-1} + z_t h_bar_t`` with ``z`` and ``h_bar``
    from the input alone, scanned token by token (minirnn's sequential form)."""

    def __init__(self, D: int, H: int):
        super().__init__()
        self.z, self.h_bar = nn.Linear(D, H), nn.Linear(D, H)

    def forward(self, x):
        z, h_bar = torch.sigmoid(self.z(x)), self.h_bar(x)
        h = x.new_zeros(x.shape[0], h_bar.shape[-1])
        hs = []
        for t in range(x.shape[1]):
            h = (1 - z[:, t]) * h + z[:, t] * h_bar[:, t]
            hs.append(h)
        return torch.stack(hs, dim=1), h


class LM(nn.Module):
    """The torch twin of one of minirnn's language models, built from its config."""

    def __init__(self, config):
        super().__init__()
        c, self.kind = config, config.kind
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        if c.kind in ("rnn", "lstm", "gru", "mingru"):
            cells = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
            self.rnn = MinGRU(c.d_model, c.hidden) if c.kind == "mingru" else \
                cells[c.kind](c.d_model, c.hidden, batch_first=True)
            self.head = nn.Linear(c.hidden, c.vocab_size)
            return
        if c.kind == "transformer":
            self.pos = nn.Parameter(0.1 * torch.randn(c.max_len, c.d_model))
            mixes = [CausalMHA(c.d_model, c.n_heads) for _ in range(c.n_layers)]
        elif c.kind in ("delta", "gated-delta"):
            mixes = [DeltaNet(c.d_model, c.n_heads, c.dv, c.kind == "gated-delta", c.chunk_size,
                              c.eps, getattr(c, "tau", 1.0)) for _ in range(c.n_layers)]
        else:
            mixes = [MSR(c.d_model, c.n_heads, c.dv, c.form, c.chunk_size, c.eps,
                         c.kind == "gated", getattr(c, "tau", 1.0)) for _ in range(c.n_layers)]
        self.blocks = nn.ModuleList(Block(c.d_model, m, c.d_ff) for m in mixes)
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)

    def forward(self, tokens):
        x = self.embed(tokens)
        if hasattr(self, "rnn"):
            return self.head(self.rnn(x)[0])
        if self.kind == "transformer":
            x = x + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


# --- 3. against PyTorch CPU eager ---------------------------------------------------------------

TUTORIAL = dict(B=32, T=16, D=32, H=64, n_heads=2, V=32)
COMPUTE = dict(B=8, T=256, D=256, H=256, n_heads=4, V=32)   # the arithmetic dominates


def torch_benchmark(thread_counts=(1, 2), quick=False, seed=0) -> list[dict]:
    """Forward + backward of each layer and one training step of each language model, minirnn
    against PyTorch eager autograd (float32, same shapes, the same thread count on both sides:
    NumPy's BLAS through threadpoolctl, ``torch.set_num_threads``).

    The two sides run interleaved in small warm blocks
    ([`interleaved`][minirnn.bench.timing.interleaved]); every ratio is the median of the
    per-round ratios minirnn / PyTorch with its interquartile range. Layers at the tutorial
    sizes; language models also at a size where the arithmetic dominates the per-call overhead
    (B = 8, T = 256, D = 256, 4 heads). Every language model has a PyTorch twin (``nn.RNN``,
    ``nn.LSTM``, ``nn.GRU``; minGRU, retention, gated retention and the delta rule written out
    with the same equations). minirnn's calls are timed as inside a model: checked
    once, then trusted (``minirnn._checks.core.trusted``); a language model's training step
    checks its own inputs at every call anyway. With ``n > 1`` threads a language model's step
    is also timed on ``n`` workers (``workers_ms``, ``workers_ratio``): its loss and gradients
    as ``n`` shards of the batch in threads, one BLAS thread each
    ([`DataParallel`][minirnn.parallel.DataParallel]).
    """
    from .timing import threads

    rows = []
    with contextlib.ExitStack() as pools:           # the DataParallel threads, closed at the end
        for n in thread_counts:
            with threads(n):
                for size, dims in (("tutorial", TUTORIAL), ("compute", COMPUTE)):
                    if quick:
                        dims = dict(dims, B=2, T=8, D=8, H=8)
                    rounds, block = (3, 1) if quick else (30, 3) if size == "tutorial" else (12, 1)
                    for name, fns in _pairs(size, seed=seed, workers=n, pools=pools, **dims):
                        fns["minirnn"]()                # checked once, then trusted:
                        with trusted():                 # timed as inside a model
                            times = interleaved(fns, rounds, block)
                        row = {"threads": n, "size": size, "layer": name}
                        ratios = {"ratio": ("minirnn", "torch")}
                        if "workers" in fns:
                            ratios["workers_ratio"] = ("workers", "torch")
                        row.update(summary(times, ratios))
                        rows.append(row)
    return rows


def _pairs(size, B, T, D, H, n_heads, V, seed, workers=1, pools=None):
    """``(name, {"minirnn": function, "torch": function})`` of every comparison at one size;
    with ``workers > 1`` a language model's training step is also timed as ``"workers"``
    (its loss and gradients on that many shards in threads, ``DataParallel``)."""
    from ..attention import init_mha_params, mha_backward, mha_forward
    from ..layers import cross_entropy, layer_norm_backward, layer_norm_forward
    from ..msr import init_msr_params, msr_backward, msr_forward
    from ..rnn import init_rnn_params, rnn_backward, rnn_forward

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    f32 = np.float32
    x = rng.standard_normal((B, T, D)).astype(f32)
    dy_d = rng.standard_normal((B, T, D)).astype(f32)
    xt, dyt = torch.tensor(x, requires_grad=True), torch.tensor(dy_d)
    pairs = []
    if size == "tutorial":
        p = init_rnn_params(D, H, seed=seed, dtype=f32)
        dh = rng.standard_normal((B, T, H)).astype(f32)
        h0 = np.zeros((B, H), f32)
        rnn = torch.nn.RNN(D, H, batch_first=True)
        dht = torch.tensor(dh)
        pairs.append((f"Elman RNN, T={T}", lambda: rnn_backward(dh, rnn_forward(x, h0, p)[1]),
                      lambda: torch.autograd.backward(rnn(xt)[0], dht)))
        mp = init_mha_params(D, n_heads, seed=seed, dtype=f32)
        mha = torch.nn.MultiheadAttention(D, n_heads, batch_first=True)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        pairs.append(("causal multi-head attention",
                      lambda: mha_backward(dy_d, mha_forward(x, mp, n_heads)[1]),
                      lambda: torch.autograd.backward(
                          mha(xt, xt, xt, attn_mask=mask, need_weights=False)[0], dyt)))
        lp = {"w": np.ones(D, f32), "b": np.zeros(D, f32)}
        ln = torch.nn.LayerNorm(D)
        pairs.append(("layer norm", lambda: layer_norm_backward(dy_d, layer_norm_forward(x, lp)[1]),
                      lambda: torch.autograd.backward(ln(xt), dyt)))
        logits = rng.standard_normal((B, T, V)).astype(f32)
        targets = rng.integers(0, V, (B, T))
        lt, tt = torch.tensor(logits, requires_grad=True), torch.tensor(targets)
        pairs.append(("softmax cross-entropy", lambda: cross_entropy(logits, targets),
                      lambda: torch.nn.functional.cross_entropy(
                          lt.reshape(-1, V), tt.reshape(-1)).backward()))
        dv = D // n_heads
        sp = init_msr_params(D, n_heads, dv, seed=seed, dtype=f32)
        for form in ("parallel", "chunkwise"):
            twin = MSR(D, n_heads, dv, form, chunk=8)
            pairs.append((f"multi-scale retention ({form})",
                          lambda form=form: msr_backward(
                              dy_d, msr_forward(x, sp, n_heads, form, chunk_size=8)[2]),
                          lambda twin=twin: torch.autograd.backward(twin(xt), dyt)))
    pairs = [(name, {"minirnn": ours, "torch": theirs}) for name, ours, theirs in pairs]
    for name, config in _models(size, B, T, D, H, n_heads, V).items():
        pairs.append((f"{name} LM training step",
                      _training_steps(config, rng, B, T, V, seed, workers, pools)))
    return pairs


def _models(size, B, T, D, H, n_heads, V):
    """Every language model, at the tutorial size (the tour's configs) or the compute size."""
    from ..models import (
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
    from ..tour import tour_models

    tour = tour_models(V) if size == "tutorial" and D == TUTORIAL["D"] else None
    if tour is not None:
        dv, d_ff, chunk = tour["retnet"].dv, tour["retnet"].d_ff, tour["retnet"].chunk_size
    else:
        dv, d_ff, chunk = D // n_heads, 4 * D, min(T, 64)
    models = {"rnn": RNNConfig(V, d_model=D, hidden=H),
              "lstm": LSTMConfig(V, d_model=D, hidden=H),
              "gru": GRUConfig(V, d_model=D, hidden=H),
              "mingru": MinGRUConfig(V, d_model=D, hidden=H),
              "transformer": TransformerConfig(V, d_model=D, n_heads=n_heads, n_layers=2,
                                               d_ff=d_ff, max_len=max(T, 64))}
    for name, config_class in (("retnet", RetNetConfig), ("gated", GatedConfig),
                               ("delta", DeltaNetConfig), ("gated-delta", GatedDeltaNetConfig)):
        models[name] = config_class(V, d_model=D, n_heads=n_heads, n_layers=2, dv=dv, d_ff=d_ff,
                                    form="chunkwise", chunk_size=chunk)
    if tour is not None and any(models[name] != config for name, config in tour.items()):
        raise RuntimeError("the benchmark's tutorial size no longer matches the tour's models")
    return models


def _training_steps(config, rng, B, T, V, seed, workers=1, pools=None):
    """One training step (loss, backward, clipping, AdamW) of a model and of its twin; with
    ``workers > 1`` also the model's step on that many shards in threads."""
    from ..optim import AdamW, clip_grad_norm
    from ..parallel import DataParallel
    from ..registry import build_model

    tokens, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    tt_tokens, tt_targets = torch.tensor(tokens), torch.tensor(targets)
    model = build_model(config)
    params = model.init(seed)
    opt = AdamW()
    state = opt.init(params)

    def step(losses):
        _, grads = losses.loss_and_grads(params, tokens, targets)
        opt.update(params, clip_grad_norm(grads, 1.0)[0], state, 1e-3)

    twin = LM(config)
    torch_opt = torch.optim.AdamW(twin.parameters(), lr=1e-3, weight_decay=0.01)

    def theirs():
        loss = torch.nn.functional.cross_entropy(twin(tt_tokens).reshape(-1, V),
                                                 tt_targets.reshape(-1))
        torch_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
        torch_opt.step()

    fns = {"minirnn": lambda: step(model), "torch": theirs}
    if workers > 1:
        shards = pools.enter_context(DataParallel(model, workers))
        fns["workers"] = lambda: step(shards)
    return fns
