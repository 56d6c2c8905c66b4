"""Student-style wrong solutions for every catalogued mistake (test data).

``EDITS[exercise][i]`` turns the correct solution into one that makes mistake ``i`` of the
catalogue, the way a student would write it. :func:`rewritten` gives a second version of any
file with different code and the same math (every local variable renamed, ``a @ b`` written
``np.matmul(a, b)``, comments and layout gone), so the grader must recognise a mistake from
the numbers, not from the text.
"""

from __future__ import annotations

import ast

CUSTOM_ATTENTION = '''state.append(k, v)
    Tq, Tk = q.shape[2], state.keys.shape[2]
    scores = (q @ np.swapaxes(state.keys, -1, -2)){scale}
    allowed = np.arange(Tk)[None, :] {mask}
    scores = np.where(allowed, scores, -np.inf)
    w = np.exp(scores - scores.max(axis=-1, keepdims=True))
    out = (w / w.sum(axis=-1, keepdims=True)) @ state.values
    _unused = attention_forward'''
ATTENTION_LINE = "state.append(k, v)                                             # keep them " \
    "for later tokens\n    out, _ = attention_forward(q, state.keys, state.values, causal=True)"


def attention_edit(mask="<= np.arange(Tk - Tq, Tk)[:, None]", scale=" / np.sqrt(q.shape[-1])"):
    return ((ATTENTION_LINE, CUSTOM_ATTENTION.format(mask=mask, scale=scale)),)


GN = ("dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)\n"
      "          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma")
UNMASKED = ("        dOmega = dout / c.c[..., None]\n"
            "        dr = -np.sum(dout * c.out, axis=-1) / c.c * np.sign(c.r)")
UNDIVIDED = ("        dOmega = dout\n"
             "        dr = np.where(np.abs(c.r) > 1.0, -np.sum(dout * c.out, axis=-1)"
             " / c.c * np.sign(c.r), 0.0)")
NORMALISER = "        dOmega, dr = score_normaliser_backward(dout, c.out, c.r, c.c)"
R_LINE = 'r = r + carried[..., 0] * np.einsum("bhnd,bhd->bhn", q, state.z)'

DIST = "distance = np.abs(y[:, None] - y[None, :]) + np.abs(x[:, None] - x[None, :])"
POW = "Gamma = powers[:, distance]"
DY, DX = "np.abs(y[:, None] - y[None, :])", "np.abs(x[:, None] - x[None, :])"
GS = "S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]"
GZ = "z = alpha_S[:, :, n, None] * z + k[:, :, n]"
GC = "s = alpha[:, :, n] * s + 1.0"
DB = "db = qdq - np.sum(k * dk, axis=-1, dtype=np.float64)"
CUM = "dlog_decay = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1]"
COUNT = "    db += ds * (s - 1.0) - rho                                       # the count's share\n"
FINAL = ("        db[..., -1] += (np.sum(dfinal.S * final.S, axis=(-2, -1))   # one more row\n"
         "                        + np.sum(dfinal.z * final.z, axis=-1))\n")

EDITS = {
    "rnn_step_backward": [
        (("da = dh * (1.0 - cache.h ** 2)", "da = dh"),),
        (("da = dh * (1.0 - cache.h ** 2)", "da = dh * (1.0 - cache.h)"),),
        (("da = dh * (1.0 - cache.h ** 2)", "da = dh * (1.0 + cache.h * cache.h)"),),
        (('"Wh": cache.h_prev.T @ da', '"Wh": da.T @ cache.h_prev'),),
        (('"b": da.sum(axis=0)', '"b": da.sum(axis=0) / da.shape[0]'),),
        (("dh_prev = da @ cache.Wh.T", "dh_prev = da @ cache.Wh"),),
        (("dh_prev = da @ cache.Wh.T", "dh_prev = dh @ cache.Wh.T"),),
        (('grads = {"Wx": cache.x.T @ da, "Wh": cache.h_prev.T @ da, "b": da.sum(axis=0)}',
          'grads = {"Wx": cache.x.T @ dh, "Wh": cache.h_prev.T @ dh, "b": dh.sum(axis=0)}'),),
    ],
    "rnn_backward": [
        (("delta = dh[:, t] + da_next_WhT", "delta = dh[:, t]"),),
        (("da_next_WhT = da[:, t] @ cache.Wh.T", "da_next_WhT = da[:, t] @ cache.Wh"),),
        (("da_next_WhT = da[:, t] @ cache.Wh.T", "da_next_WhT = delta @ cache.Wh.T"),),
        (("da[:, t] = delta * (1.0 - h[:, t] ** 2)", "da[:, t] = delta"),),
        (("    return dx, dh0, grads",
          "    grads = {key: value / h.shape[1] for key, value in grads.items()}\n"
          "    return dx, dh0, grads"),),
        (('"Wx": np.einsum("btd,bth->dh", cache.x, da, optimize=True),',
          '"Wx": np.einsum("btd,bth->dh", cache.x, da) / len(dh[0]),'),
         ('"Wh": np.einsum("bti,bth->ih", h_prev, da, optimize=True),',
          '"Wh": np.einsum("bti,bth->ih", h_prev, da) / len(dh[0]),')),
        (('"Wh": np.einsum("bti,bth->ih", h_prev, da, optimize=True)',
          '"Wh": np.einsum("bti,bth->ih", h, da, optimize=True)'),),
        (("dh0 = da_next_WhT", "dh0 = np.zeros_like(cache.h0)"),),
    ],
    "softmax_backward": [
        (("return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))",
          "return y * dy"),),
        (("return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))",
          "return y * (1 - y) * dy"),),
        (("return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))",
          "return y * (np.sum(dy * y, axis=cache.axis, keepdims=True) - dy)"),),
        (("np.sum(dy * y, axis=cache.axis", "np.mean(dy * y, axis=cache.axis"),),
        (("return y * (dy - np.sum(", "return (dy - np.sum("),),
        (("np.sum(dy * y, axis=cache.axis", "np.sum(dy, axis=cache.axis"),),
        (("axis=cache.axis, keepdims=True", "axis=0, keepdims=True"),),
    ],
    "attention_backward": [
        (("dE = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))", "dE = P * dP"),),
        (("dq = (dE @ cache.k) * cache.scale", "dq = dE @ cache.k"),
         ("dk = (np.swapaxes(dE, -1, -2) @ cache.q) * cache.scale",
          "dk = np.swapaxes(dE, -1, -2) @ cache.q")),
        (("dq = (dE @ cache.k) * cache.scale", "dq = (dE @ cache.k) * cache.scale ** 2"),
         ("dk = (np.swapaxes(dE, -1, -2) @ cache.q) * cache.scale",
          "dk = (np.swapaxes(dE, -1, -2) @ cache.q) / cache.q.shape[-1]")),
        (("dv = np.swapaxes(P, -1, -2) @ dout", "dv = P @ dout"),),
        (("dk = (np.swapaxes(dE, -1, -2) @ cache.q)", "dk = (dE @ cache.q)"),),
        (("dE = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))",
          "dE = dP - np.sum(dP * P, axis=-1, keepdims=True)"),),
        (("dE = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))",
          "dE = P * (dP - np.sum(dP * P, axis=-2, keepdims=True))"),),
    ],
    "kv_cache_step": [
        (("state.append(k, v)", "pass"),
         ("attention_forward(q, state.keys, state.values, causal=True)",
          "attention_forward(q, k, v, causal=True)")),
        attention_edit(mask="<= np.arange(Tq)[:, None]"),
        attention_edit(mask="< np.arange(Tk - Tq, Tk)[:, None]"),
        (("state.append(k, v)", "state.append(k, v)\n    state.append(k, v)"),),
        (('y = merge_heads(out) @ p["Wo"] + b["bo"]', "y = merge_heads(out)"),),
        attention_edit(scale=""),
        (('v = split_heads(xs @ p["Wv"] + b["bv"], n_heads)',
          'v = split_heads(xs @ p["Wv"], n_heads)'),),
    ],
    "retention_recurrent": [
        (("S = gamma_S[:, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]",
          "S = gamma_S[:, None, None] * (S + k[:, :, n, :, None] * v[:, :, n, None, :])"),
         ("z = gamma_S[:, None] * z + k[:, :, n]", "z = gamma_S[:, None] * (z + k[:, :, n])")),
        (("S = gamma_S[:, None, None] * S + k", "S = S + k"),
         ("z = gamma_S[:, None] * z + k", "z = z + k")),
        (("z = gamma_S[:, None] * z + k[:, :, n]", "z = z + k[:, :, n]"),),
        (("kappa[:, n] = 1.0 / np.sqrt(s)", "kappa[:, n] = 1.0"),),
        (("s = gamma * s + 1.0", "s = s + 1.0"),),
        (("r[:, :, n] = kappa[:, n] * np.sum(qn * z, axis=-1)",
          "r[:, :, n] = np.sum(qn * z, axis=-1)"),),
        (("qn = q[:, :, n]", "qn = q[:, :, n] / np.sqrt(q.shape[-1])"),),
    ],
    "retention_parallel_backward": [
        (("dR = dOmega @ np.swapaxes(c.v, -1, -2) + dr[..., None]",
          "dR = dOmega @ np.swapaxes(c.v, -1, -2)"),),
        (("+ dr[..., None]", "- dr[..., None]"),),
        ((NORMALISER, UNMASKED),),
        ((NORMALISER, UNDIVIDED),),
        (("dk = np.swapaxes(dA, -1, -2) @ c.q",
          "dk = (np.swapaxes(dA, -1, -2) @ c.q) * c.scale"),),
        (("dA = dR * (c.Gamma * c.kappa[..., None])", "dA = dR"),),
    ],
    "retention_chunkwise": [
        (("xi = p[:, 1:]", "xi = p[:, :L]"),),
        (("carried = (f.kappa * f.xi)[..., None]", "carried = f.kappa[..., None]"),),
        (("Omega = Omega + carried * (q @ state.S)", "Omega = Omega"), (R_LINE, "r = r")),
        (("S = gamma_L[:, None, None] * state.S +", "S = state.S +"),
         ("z = gamma_L[:, None] * state.z +", "z = state.z +")),
        (("zeta = p[:, L - 1::-1]", "zeta = p[:, L:0:-1]"),),
        (("s = xi * s_prev[:, None] + np.cumsum(p[:, :L], axis=1)",
          "s = np.cumsum(p[:, :L], axis=1)"),),
        (("retention_parallel(q[:, :, start:stop],",
          "retention_parallel(q[:, :, start:stop] / np.sqrt(q.shape[-1]),"),),
    ],
    "manhattan_decay_mask": [
        ((DIST, f"distance = np.sqrt({DY} ** 2 + {DX} ** 2)"),
         (POW, "Gamma = gammas[:, None, None] ** distance")),
        ((DIST, f"distance = np.maximum({DY}, {DX})"),),
        ((DIST, "n = np.arange(n_y * n_x)\n    distance = np.abs(n[:, None] - n[None, :])"),
         (POW, "Gamma = gammas[:, None, None] ** distance")),
        ((DIST, f"distance = {DY} ** 2 + {DX} ** 2"),
         (POW, "Gamma = gammas[:, None, None] ** distance")),
        ((POW, "Gamma = gammas[:, None, None] ** (distance + 1)"),),
        ((POW, "Gamma = np.tril(powers[:, distance])"),),
    ],
    "gated_retention_recurrent": [
        ((GS, GS.replace("alpha_S[", "log_decay[")), (GZ, GZ.replace("alpha_S[", "log_decay[")),
         (GC, GC.replace("alpha[", "log_decay["))),
        ((GS, GS.replace("alpha_S[:, :, n, None, None] * S",
                         "(1 - alpha_S[:, :, n, None, None]) * S")),
         (GZ, GZ.replace("alpha_S[:, :, n, None] * z", "(1 - alpha_S[:, :, n, None]) * z")),
         (GC, GC.replace("alpha[:, :, n] * s", "(1 - alpha[:, :, n]) * s"))),
        ((GS, "S = alpha_S[:, :, n, None, None] * (S + k[:, :, n, :, None] * v[:, :, n, None, :])"),
         (GZ, "z = alpha_S[:, :, n, None] * (z + k[:, :, n])")),
        ((GS, GS.replace("alpha_S[:, :, n,", "alpha_S[:, :, n - 1,")),
         (GZ, GZ.replace("alpha_S[:, :, n,", "alpha_S[:, :, n - 1,")),
         (GC, GC.replace("alpha[:, :, n]", "alpha[:, :, n - 1]"))),
        ((GZ, "z = z + k[:, :, n]"),),
        ((GC, "s = s + 1.0"),),
        ((GS, GS.replace("alpha_S[:, :, n,", "alpha_S[0, :, n,")),
         (GZ, GZ.replace("alpha_S[:, :, n,", "alpha_S[0, :, n,")),
         (GC, GC.replace("alpha[:, :, n]", "alpha[0, :, n]"))),
    ],
    "gated_decay_gradient": [
        ((DB, "db = np.sum(k * dk, axis=-1, dtype=np.float64) - qdq"),),
        ((CUM, "dlog_decay = np.cumsum(db, axis=-1)"),),
        ((CUM, "dlog_decay = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1] - db"),),
        ((COUNT, ""),),
        ((COUNT, "    db += ds * (s - 1.0)\n"),),
        (("ds = -qdq / (2.0 * s)", "ds = -qdq / s"),),
        ((FINAL, ""),),
    ],
    "group_norm_backward": [
        ((GN, "dx = dxhat / sigma"),),
        ((GN, "dx = (dxhat - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma"),),
        ((GN, "dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)) / sigma"),),
        (("          - xhat * (dxhat", "          + xhat * (dxhat"),),
        (("dxhat = dy * cache.w", "dxhat = dy"),),
        (("dw = (dy * cache.xhat).sum(axis=every_group)",
          "dw = (dy * cache.xhat).mean(axis=every_group)"),
         ("db = dy.sum(axis=every_group)", "db = dy.mean(axis=every_group)")),
        ((GN, GN + " / sigma"),),
    ],
}


class _Rewrite(ast.NodeTransformer):
    """Same math, different code: locals renamed, ``a @ b`` as ``np.matmul(a, b)``."""

    def visit_FunctionDef(self, node):
        params = {a.arg for a in node.args.args + node.args.kwonlyargs}
        assigned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Store)} - params
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id in assigned:
                n.id = f"my_{n.id}"
        self.generic_visit(node)
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.MatMult):
            return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "matmul", ast.Load()),
                            [node.left, node.right], [])
        return node


def rewritten(source: str) -> str:
    tree = ast.fix_missing_locations(_Rewrite().visit(ast.parse(source)))
    return ast.unparse(tree) + "\n"
