"""Known mistakes of the softmax, attention, KV-cache and group-norm exercises, as numbers."""

from __future__ import annotations

from functools import partial

import numpy as np

from .mistake import Mistake


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(c, form="correct"):
    y, dy = _softmax(c["x"]), c["dy"]
    dx = {"correct": y * (dy - (dy * y).sum(-1, keepdims=True)),
          "no subtraction": y * dy,
          "diagonal": y * (1 - y) * dy,
          "sign": y * ((dy * y).sum(-1, keepdims=True) - dy),
          "mean": y * (dy - (dy * y).mean(-1, keepdims=True)),
          "no leading y": dy - (dy * y).sum(-1, keepdims=True),
          "no y in sum": y * (dy - dy.sum(-1, keepdims=True)),
          "wrong axis": y * (dy - (dy * y).sum(0, keepdims=True))}[form]
    return {"dx": dx}


def attention_backward(c, subtraction=True, scale_power=1, dv_transposed=True,
                       dk_transposed=True, leading_p=True, softmax_axis=-1):
    q, k, v, dout = c["q"], c["k"], c["v"], c["dout"]
    T, d = q.shape[-2], q.shape[-1]
    scale = 1 / np.sqrt(d)
    S = np.where(np.tril(np.ones((T, T), dtype=bool)), (q @ np.swapaxes(k, -1, -2)) * scale,
                 -np.inf)
    P = _softmax(S)
    PT = np.swapaxes(P, -1, -2)
    dv = (PT if dv_transposed else P) @ dout
    dP = dout @ np.swapaxes(v, -1, -2)
    inner = dP - (dP * P).sum(softmax_axis, keepdims=True) if subtraction else dP
    dS = P * inner if leading_p else inner
    s = scale ** scale_power
    dk = ((np.swapaxes(dS, -1, -2) if dk_transposed else dS) @ q) * s
    return {"dq": (dS @ k) * s, "dk": dk, "dv": dv}


def kv_decode(c, append=True, mask="end", duplicate=False, output_projection=True, scale=True,
              value_bias=True):
    """The kv_cache_step exercise's outputs: a prompt of 3 tokens, then 3 single tokens."""
    x, p, h = c["x"], c["params"], 2
    B, _, D = x.shape
    d = D // h

    def heads(y):                                       # (B, T, D) -> (B, h, T, d)
        return y.reshape(B, y.shape[1], h, d).transpose(0, 2, 1, 3)

    keys, values, outs = [], [], []
    for chunk in (x[:, :3], x[:, 3:4], x[:, 4:5], x[:, 5:6]):
        q = heads(chunk @ p["Wq"] + p["bq"])
        k = heads(chunk @ p["Wk"])
        v = heads(chunk @ p["Wv"] + (p["bv"] if value_bias else 0.0))
        if append:
            keys.append(k)
            values.append(v)
            if duplicate:
                keys.append(k)
                values.append(v)
        K = np.concatenate(keys, axis=2) if append else k
        V = np.concatenate(values, axis=2) if append else v
        Tq, Tk = q.shape[2], K.shape[2]
        i, j = np.arange(Tq)[:, None], np.arange(Tk)[None, :]
        allowed = {"end": j <= i + Tk - Tq, "start": j <= i, "strict": j < i + Tk - Tq}[mask]
        with np.errstate(invalid="ignore"):
            S = (q @ np.swapaxes(K, -1, -2)) * (1 / np.sqrt(d) if scale else 1.0)
            out = _softmax(np.where(allowed, S, -np.inf)) @ V
        merged = out.transpose(0, 2, 1, 3).reshape(B, Tq, D)
        outs.append(merged @ p["Wo"] + p["bo"] if output_projection else merged)
    return {"outputs (prompt, then one token at a time)": np.concatenate(outs, axis=1)}


def group_norm_backward(c, mean_term=True, xhat_term=1.0, with_w=True, reduce="sum",
                        sigma_power=1):
    x, w, dy = c["x"], c["w"], c["dy"]
    mu = x.mean(-1, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
    xhat = (x - mu) / sigma
    dxhat = dy * w if with_w else dy
    dx = dxhat - (dxhat.mean(-1, keepdims=True) if mean_term else 0.0)\
        - xhat_term * xhat * (dxhat * xhat).mean(-1, keepdims=True)
    axes = (0, 1)
    total = (lambda a: a.sum(axis=axes)) if reduce == "sum" else (lambda a: a.mean(axis=axes))
    return {"dx": dx / sigma ** sigma_power, "dw": total(dy * xhat), "db": total(dy)}


SOFTMAX_MISTAKES = tuple(
    Mistake(message, "(A.2)", hint, partial(softmax_backward, form=form))
    for form, message, hint in (
        ("no subtraction", "the subtraction term is missing: only y * dy",
         "every y_i depends on every x_j through the normaliser"),
        ("diagonal", "only the diagonal of the Jacobian, y (1 - y) dy",
         "what does changing x_j do to y_i when i != j?"),
        ("sign", "the sign is flipped: y (sum(dy y) - dy)",
         "increasing x_i increases y_i; what sign must dx_i have when only dy_i is positive?"),
        ("mean", "the sum is a mean: y (dy - mean(dy y))",
         "the Jacobian-vector product sums over the whole row"),
        ("no leading y", "the leading factor y is missing: dy - sum(dy y)",
         "the Jacobian diag(y) - y y^T has y in both terms"),
        ("no y in sum", "the sum leaves out y: y (dy - sum(dy))",
         "which weights does y y^T put on dy in the sum?"),
        ("wrong axis", "the sum runs over the wrong axis (down the columns)",
         "the probabilities that compete are those of one row"),
    ))

ATTENTION_MISTAKES = (
    Mistake("the softmax backward lacks its subtraction term", "(A.7)",
            "every weight in a row depends on every score of that row",
            partial(attention_backward, subtraction=False)),
    Mistake("the 1/sqrt(d) scale is missing from dq and dk", "(A.8)",
            "S = Q K^T / sqrt(d): what does the constant do to the gradient?",
            partial(attention_backward, scale_power=0)),
    Mistake("the 1/sqrt(d) scale is applied twice to dq and dk", "(A.8)",
            "how many times does the scale appear in S?",
            partial(attention_backward, scale_power=2)),
    Mistake("dV = P dO: the transpose of P is missing", "(A.6)",
            "value m collects the weight that every query gave it: a column of P",
            partial(attention_backward, dv_transposed=False)),
    Mistake("dK = dS Q: the transpose of dS is missing", "(A.8)",
            "key m meets every query through column m of S",
            partial(attention_backward, dk_transposed=False)),
    Mistake("the softmax backward lacks its leading factor P, so masked positions get "
            "gradient", "(A.7)", "what is the gradient of a weight that is exactly 0?",
            partial(attention_backward, leading_p=False)),
    Mistake("the softmax backward sums over the wrong axis (queries instead of keys)", "(A.7)",
            "the weights that compete are those of one query", partial(
                attention_backward, softmax_axis=-2)),
)

KV_MISTAKES = (
    Mistake("the new keys and values are not appended to the cache, so each token sees only "
            "itself", "(A.4)", "where do later tokens find the earlier keys?",
            partial(kv_decode, append=False)),
    Mistake("the causal mask is aligned to the start, not the end: a new token sees only the "
            "first cached tokens", "(A.4)",
            "query i of Tq new ones sits at position Tk - Tq + i", partial(kv_decode,
                                                                            mask="start")),
    Mistake("the causal mask is off by one: a token cannot see itself", "(A.4)",
            "is key j = i allowed for query i?", partial(kv_decode, mask="strict")),
    Mistake("the keys and values are appended twice", "(A.9)",
            "how many copies of each token should the cache hold?",
            partial(kv_decode, duplicate=True)),
    Mistake("the output projection Wo (and bo) is missing", "(A.9)",
            "what maps the merged heads back to the model width?",
            partial(kv_decode, output_projection=False)),
    Mistake("the 1/sqrt(d) scale of the scores is missing", "(A.3)",
            "the scores are divided by the square root of the head width",
            partial(kv_decode, scale=False)),
    Mistake("the value bias bv is missing", "(A.9)",
            "which projections of the layer have a bias?", partial(kv_decode, value_bias=False)),
)

GROUP_NORM_MISTAKES = (
    Mistake("only the direct path: dxhat / sigma, without the mean and variance terms",
            "(L.4)", "mu and sigma depend on every x of the group, too",
            partial(group_norm_backward, mean_term=False, xhat_term=0.0)),
    Mistake("the mean term is dropped", "(L.4)", "what does shifting every x by 1 do to xhat?",
            partial(group_norm_backward, mean_term=False)),
    Mistake("the xhat (variance) term is dropped", "(L.4)",
            "sigma depends on x; what does its derivative add?",
            partial(group_norm_backward, xhat_term=0.0)),
    Mistake("the sign of the xhat (variance) term is flipped", "(L.4)",
            "a larger sigma makes every |xhat| smaller",
            partial(group_norm_backward, xhat_term=-1.0)),
    Mistake("the gradient reaching xhat is dy, without the scale w", "(M.4)",
            "y = xhat w + b", partial(group_norm_backward, with_w=False)),
    Mistake("dw and db are averaged over the tokens instead of summed", "(M.4)",
            "every token's loss adds up, so how do their gradients combine?",
            partial(group_norm_backward, reduce="mean")),
    Mistake("divided by sigma^2 instead of sigma", "(L.4)",
            "xhat = (x - mu) / sigma has one factor 1/sigma",
            partial(group_norm_backward, sigma_power=2)),
)
