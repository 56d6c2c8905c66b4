"""The mistake catalogue: one keyed record per known mistake, for every exercise.

Each record (``mistake.Mistake``) holds an id, the equation the mistake breaks, what the student
probably did, a hint, and the slip itself as edits of the library's solution. The grader runs
the edited solution to learn the mistake's numbers; ``tests/test_exercises.py`` writes the same
edits to a file, grades it, and expects the id back. Nothing else describes a mistake.
"""

from __future__ import annotations

from .mistake import Mistake

GS = "S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]"
GZ = "z = alpha_S[:, :, n, None] * z + k[:, :, n]"
GC = "s = alpha[:, :, n] * s + 1.0"

RNN_STEP_BACKWARD = (
    Mistake('no-tanh-derivative', '(RNN.4)',
            'da = dh: the tanh derivative is missing',
            'what does h = tanh(a) put between dh and da?',
            (('da = dh * (1.0 - cache.h ** 2)', 'da = dh'),)),
    Mistake('tanh-derivative-1-h', '(RNN.4)',
            "tanh'(a) written as 1 - h",
            'differentiate tanh and write the result in terms of h = tanh(a)',
            (('da = dh * (1.0 - cache.h ** 2)', 'da = dh * (1.0 - cache.h)'),)),
    Mistake('tanh-derivative-1-plus-h2', '(RNN.4)',
            "tanh'(a) written as 1 + h^2",
            'tanh flattens out for large |a|: should its slope grow or shrink with h^2?',
            (('da = dh * (1.0 - cache.h ** 2)', 'da = dh * (1.0 + cache.h * cache.h)'),)),
    Mistake('dWh-transposed', '(RNN.5)',
            'dWh is transposed',
            'which index of Wh meets h_prev in a = x Wx + h_prev Wh + b?',
            (('"Wh": cache.h_prev.T @ da', '"Wh": da.T @ cache.h_prev'),)),
    Mistake('db-mean-over-batch', '(RNN.5)',
            'db averages da over the batch instead of summing it',
            "every example's loss adds up, so how do their gradients combine?",
            (('"b": da.sum(axis=0)', '"b": da.sum(axis=0) / da.shape[0]'),)),
    Mistake('dh_prev-untransposed-Wh', '(RNN.6)',
            'dh_prev uses Wh where its transpose belongs',
            'a = h_prev Wh: which side of Wh does da come back through?',
            (('dh_prev = da @ cache.Wh.T', 'dh_prev = da @ cache.Wh'),)),
    Mistake('dh_prev-from-dh', '(RNN.6)',
            'dh_prev is sent back from dh, skipping the tanh derivative',
            'h_prev reaches the loss through a, not through h directly',
            (('dh_prev = da @ cache.Wh.T', 'dh_prev = dh @ cache.Wh.T'),)),
    Mistake('weight-grads-from-dh', '(RNN.5)',
            'the weight gradients use dh instead of da',
            'the weights act on a; which gradient belongs to a?',
            (('grads = {"Wx": cache.x.T @ da, "Wh": cache.h_prev.T @ da, "b": da.sum(axis=0)}', 'grads = {"Wx": cache.x.T @ dh, "Wh": cache.h_prev.T @ dh, "b": dh.sum(axis=0)}'),)),
)

RNN_BACKWARD = (
    Mistake('no-carry', '(RNN.3)',
            'the gradient from later steps is not carried back: delta_t is only dh_t',
            'h_t also feeds a_(t+1); what does that path add to delta_t?',
            (('delta = dh[:, t] + da_next_WhT', 'delta = dh[:, t]'),)),
    Mistake('carry-untransposed-Wh', '(RNN.3)',
            'the gradient is carried back through Wh instead of its transpose',
            'a_(t+1) = ... + h_t Wh: which side of Wh does the gradient come back through?',
            (('da_next_WhT = da[:, t] @ cache.Wh.T', 'da_next_WhT = da[:, t] @ cache.Wh'),
             ('dh0 = da_next_WhT', 'dh0 = da[:, 0] @ cache.Wh.T'))),
    Mistake('carry-before-tanh-derivative', '(RNN.3)',
            'delta_t (before the tanh derivative) is carried back instead of da_t',
            'the path from h_t to a_(t+1) starts after the tanh of step t+1',
            (('da_next_WhT = da[:, t] @ cache.Wh.T', 'da_next_WhT = delta @ cache.Wh.T'),)),
    Mistake('no-tanh-derivative', '(RNN.4)',
            'da = delta: the tanh derivative is missing',
            'what does h = tanh(a) put between delta and da?',
            (('da[:, t] = delta * (1.0 - h[:, t] ** 2)', 'da[:, t] = delta'),)),
    Mistake('weight-grads-averaged-over-time', '(RNN.5)',
            'all three weight gradients are averaged over time instead of summed',
            "every step uses the same weights; how do the steps' contributions combine?",
            (('    return dx, dh0, grads', '    grads = {key: value / h.shape[1] for key, value in grads.items()}\n    return dx, dh0, grads'),)),
    Mistake('dWx-dWh-averaged-over-time', '(RNN.5)',
            'dWx and dWh are averaged over time instead of summed',
            "every step uses the same weights; how do the steps' contributions combine?",
            (('"Wx": np.einsum("btd,bth->dh", cache.x, da, optimize=True),', '"Wx": np.einsum("btd,bth->dh", cache.x, da) / len(dh[0]),'), ('"Wh": np.einsum("bti,bth->ih", h_prev, da, optimize=True),', '"Wh": np.einsum("bti,bth->ih", h_prev, da) / len(dh[0]),'))),
    Mistake('dWh-with-h_t', '(RNN.5)',
            'dWh pairs da_t with h_t instead of h_(t-1)',
            'which hidden state is multiplied by Wh in a_t?',
            (('"Wh": np.einsum("bti,bth->ih", h_prev, da, optimize=True)', '"Wh": np.einsum("bti,bth->ih", h, da, optimize=True)'),)),
    Mistake('dh0-zero', '(RNN.6)',
            'dh0 is missing (zeros)',
            'h0 feeds a_1 like any other h_(t-1) feeds a_t',
            (('dh0 = da_next_WhT', 'dh0 = np.zeros_like(cache.h0)'),)),
)

SOFTMAX_BACKWARD = (
    Mistake('no-subtraction', '(A.2)',
            'the subtraction term is missing: only y * dy',
            'every y_i depends on every x_j through the normaliser',
            (('return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))', 'return y * dy'),)),
    Mistake('diagonal-jacobian', '(A.2)',
            'only the diagonal of the Jacobian, y (1 - y) dy',
            'what does changing x_j do to y_i when i != j?',
            (('return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))', 'return y * (1 - y) * dy'),)),
    Mistake('sign-flipped', '(A.2)',
            'the sign is flipped: y (sum(dy y) - dy)',
            'increasing x_i increases y_i; what sign must dx_i have when only dy_i is positive?',
            (('return y * (dy - np.sum(dy * y, axis=cache.axis, keepdims=True))', 'return y * (np.sum(dy * y, axis=cache.axis, keepdims=True) - dy)'),)),
    Mistake('mean-for-sum', '(A.2)',
            'the sum is a mean: y (dy - mean(dy y))',
            'the Jacobian-vector product sums over the whole row',
            (('np.sum(dy * y, axis=cache.axis', 'np.mean(dy * y, axis=cache.axis'),)),
    Mistake('no-leading-y', '(A.2)',
            'the leading factor y is missing: dy - sum(dy y)',
            'the Jacobian diag(y) - y y^T has y in both terms',
            (('return y * (dy - np.sum(', 'return (dy - np.sum('),)),
    Mistake('sum-without-y', '(A.2)',
            'the sum leaves out y: y (dy - sum(dy))',
            'which weights does y y^T put on dy in the sum?',
            (('np.sum(dy * y, axis=cache.axis', 'np.sum(dy, axis=cache.axis'),)),
    Mistake('sum-over-axis-0', '(A.2)',
            'the sum runs over the wrong axis (down the columns)',
            'the probabilities that compete are those of one row',
            (('axis=cache.axis, keepdims=True', 'axis=0, keepdims=True'),)),
)

ATTENTION_BACKWARD = (
    Mistake('softmax-no-subtraction', '(A.7)',
            'the softmax backward lacks its subtraction term',
            'every weight in a row depends on every score of that row',
            (('dE = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))', 'dE = P * dP'),)),
    Mistake('scale-missing', '(A.8)',
            'the 1/sqrt(d) scale is missing from dq and dk',
            'S = Q K^T / sqrt(d): what does the constant do to the gradient?',
            (('dq = (dE @ cache.k) * cache.scale', 'dq = dE @ cache.k'), ('dk = (np.swapaxes(dE, -1, -2) @ cache.q) * cache.scale', 'dk = np.swapaxes(dE, -1, -2) @ cache.q'))),
    Mistake('scale-squared', '(A.8)',
            'the 1/sqrt(d) scale is applied twice to dq and dk',
            'how many times does the scale appear in S?',
            (('dq = (dE @ cache.k) * cache.scale', 'dq = (dE @ cache.k) * cache.scale ** 2'), ('dk = (np.swapaxes(dE, -1, -2) @ cache.q) * cache.scale', 'dk = (np.swapaxes(dE, -1, -2) @ cache.q) / cache.q.shape[-1]'))),
    Mistake('dv-untransposed-P', '(A.6)',
            'dV = P dO: the transpose of P is missing',
            'value m collects the weight that every query gave it: a column of P',
            (('dv = np.swapaxes(P, -1, -2) @ dout', 'dv = P @ dout'),)),
    Mistake('dk-untransposed-dE', '(A.8)',
            'dK = dS Q: the transpose of dS is missing',
            'key m meets every query through column m of S',
            (('dk = (np.swapaxes(dE, -1, -2) @ cache.q)', 'dk = (dE @ cache.q)'),)),
    Mistake('softmax-no-leading-P', '(A.7)',
            'the softmax backward lacks its leading factor P, so masked positions get gradient',
            'what is the gradient of a weight that is exactly 0?',
            (('dE = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))', 'dE = dP - np.sum(dP * P, axis=-1, keepdims=True)'),)),
    Mistake('softmax-sum-over-columns', '(A.7)',
            'the softmax backward sums over the wrong axis (queries instead of keys)',
            'the weights that compete are those of one query',
            (('dE = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))', 'dE = P * (dP - np.sum(dP * P, axis=-2, keepdims=True))'),)),
)

KV_CACHE_STEP = (
    Mistake('new-keys-not-cached', '(A.4)',
            'the new keys and values are not appended to the cache, so each token sees only itself',
            'where do later tokens find the earlier keys?',
            (('state.append(k, v)', 'pass'), ('attention_forward(q, state.keys, state.values, causal=True)', 'attention_forward(q, k, v, causal=True)'))),
    Mistake('mask-aligned-to-start', '(A.4)',
            'the causal mask is aligned to the start, not the end: a new token sees only the first cached tokens',
            'query i of Tq new ones sits at position Tk - Tq + i',
            (('state.append(k, v)                                             # keep them for later tokens\n    out, _ = attention_forward(q, state.keys, state.values, causal=True)', 'state.append(k, v)\n    Tq, Tk = q.shape[2], state.keys.shape[2]\n    scores = (q @ np.swapaxes(state.keys, -1, -2)) / np.sqrt(q.shape[-1])\n    allowed = np.arange(Tk)[None, :] <= np.arange(Tq)[:, None]\n    scores = np.where(allowed, scores, -np.inf)\n    w = np.exp(scores - scores.max(axis=-1, keepdims=True))\n    out = (w / w.sum(axis=-1, keepdims=True)) @ state.values\n    _unused = attention_forward'),)),
    Mistake('mask-off-by-one', '(A.4)',
            'the causal mask is off by one: a token cannot see itself',
            'is key j = i allowed for query i?',
            (('state.append(k, v)                                             # keep them for later tokens\n    out, _ = attention_forward(q, state.keys, state.values, causal=True)', 'state.append(k, v)\n    Tq, Tk = q.shape[2], state.keys.shape[2]\n    scores = (q @ np.swapaxes(state.keys, -1, -2)) / np.sqrt(q.shape[-1])\n    allowed = np.arange(Tk)[None, :] < np.arange(Tk - Tq, Tk)[:, None]\n    scores = np.where(allowed, scores, -np.inf)\n    w = np.exp(scores - scores.max(axis=-1, keepdims=True))\n    out = (w / w.sum(axis=-1, keepdims=True)) @ state.values\n    _unused = attention_forward'),)),
    Mistake('appended-twice', '(A.9)',
            'the keys and values are appended twice',
            'how many copies of each token should the cache hold?',
            (('state.append(k, v)', 'state.append(k, v)\n    state.append(k, v)'),)),
    Mistake('no-output-projection', '(A.9)',
            'the output projection Wo (and bo) is missing',
            'what maps the merged heads back to the model width?',
            (('y = merge_heads(out) @ p["Wo"] + b["bo"]', 'y = merge_heads(out)'),)),
    Mistake('scale-missing', '(A.3)',
            'the 1/sqrt(d) scale of the scores is missing',
            'the scores are divided by the square root of the head width',
            (('state.append(k, v)                                             # keep them for later tokens\n    out, _ = attention_forward(q, state.keys, state.values, causal=True)', 'state.append(k, v)\n    Tq, Tk = q.shape[2], state.keys.shape[2]\n    scores = (q @ np.swapaxes(state.keys, -1, -2))\n    allowed = np.arange(Tk)[None, :] <= np.arange(Tk - Tq, Tk)[:, None]\n    scores = np.where(allowed, scores, -np.inf)\n    w = np.exp(scores - scores.max(axis=-1, keepdims=True))\n    out = (w / w.sum(axis=-1, keepdims=True)) @ state.values\n    _unused = attention_forward'),)),
    Mistake('value-bias-missing', '(A.9)',
            'the value bias bv is missing',
            'which projections of the layer have a bias?',
            (('v = split_heads(xs @ p["Wv"] + b["bv"], n_heads)', 'v = split_heads(xs @ p["Wv"], n_heads)'),)),
)

RETENTION_RECURRENT = (
    Mistake('decay-after-adding', '(R.3)',
            'decay off by one: the new token is decayed together with the old state',
            'how old is token n when output n reads it?',
            (('S = gamma_S[:, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]', 'S = gamma_S[:, None, None] * (S + k[:, :, n, :, None] * v[:, :, n, None, :])'), ('z = gamma_S[:, None] * z + k[:, :, n]', 'z = gamma_S[:, None] * (z + k[:, :, n])'))),
    Mistake('state-never-decayed', '(R.3)',
            'the state is never decayed (that is linear attention, gamma = 1)',
            'what makes the past fade?',
            (('S = gamma_S[:, None, None] * S + k', 'S = S + k'), ('z = gamma_S[:, None] * z + k', 'z = z + k'))),
    Mistake('z-not-decayed', '(R.7)',
            'z is not decayed (S is)',
            'z_n must hold the same decayed sum of keys that S_n holds with values',
            (('z = gamma_S[:, None] * z + k[:, :, n]', 'z = z + k[:, :, n]'),)),
    Mistake('no-row-factor', '(R.5)',
            'the row factor kappa_n = 1 / sqrt(s_n) is missing',
            'the parallel form divides row n of the decay mask by something',
            (('kappa[:, n] = 1.0 / np.sqrt(s)', 'kappa[:, n] = 1.0'),)),
    Mistake('count-not-decayed', '(R.7)',
            'the count s_n is not decayed: s_n = n + 1',
            's_n is the row sum of the decay mask, not of a causal mask',
            (('s = gamma * s + 1.0', 's = s + 1.0'),)),
    Mistake('r-without-row-factor', '(R.7)',
            'r_n is computed without the row factor kappa_n',
            'r_n is the row sum of the same scores whose row the output uses',
            (('r[:, :, n] = kappa[:, n] * np.sum(qn * z, axis=-1)', 'r[:, :, n] = np.sum(qn * z, axis=-1)'),)),
    Mistake('queries-scaled-twice', '(R.5)',
            'the queries are scaled twice (by 1/d instead of 1/sqrt(d))',
            'q is already divided by sqrt(d) above the loop',
            (('qn = q[:, :, n]', 'qn = q[:, :, n] / np.sqrt(q.shape[-1])'),)),
)

RETENTION_PARALLEL_BACKWARD = (
    Mistake('no-normaliser-gradient', '(R.9)',
            "the score normaliser's gradient dr is missing",
            'where |r_n| > 1, c_n = |r_n| depends on the scores',
            (('dR = dOmega @ np.swapaxes(c.v, -1, -2) + dr[..., None]', 'dR = dOmega @ np.swapaxes(c.v, -1, -2)'),)),
    Mistake('dr-sign-flipped', '(R.9)',
            'dr has the wrong sign',
            'O = P / c: does O grow or shrink as c grows?',
            (('+ dr[..., None]', '- dr[..., None]'),)),
    Mistake('dr-unmasked', '(R.9)',
            'dr is applied where |r_n| < 1 too',
            'where |r_n| < 1, is c_n a function of r_n?',
            (('        dOmega, dr = score_normaliser_backward(dout, c.out, c.r, c.c)', '        dOmega = dout / c.c[..., None]\n        dr = -np.sum(dout * c.out, axis=-1) / c.c * np.sign(c.r)'),)),
    Mistake('dout-not-divided-by-c', '(R.9)',
            'dO is not divided by c',
            'O = P / c',
            (('        dOmega, dr = score_normaliser_backward(dout, c.out, c.r, c.c)', '        dOmega = dout\n        dr = np.where(np.abs(c.r) > 1.0, -np.sum(dout * c.out, axis=-1) / c.c * np.sign(c.r), 0.0)'),)),
    Mistake('dk-scaled', '(R.10)',
            'dk is scaled by 1/sqrt(d) too',
            "cache.q is already scaled, so dK = dA^T Q' needs nothing more",
            (('dk = np.swapaxes(dA, -1, -2) @ c.q', 'dk = (np.swapaxes(dA, -1, -2) @ c.q) * c.scale'),)),
    Mistake('no-decay-mask', '(R.10)',
            'the decay mask is not applied to dR',
            'R = A * (decay mask): what does the elementwise factor do to dA?',
            (('dA = dR * (c.Gamma * c.kappa[..., None])', 'dA = dR'),)),
)

RETENTION_CHUNKWISE = (
    Mistake('xi-off-by-one', '(R.4)',
            'xi off by one: the state before the chunk is decayed by gamma^j, not gamma^(j+1)',
            "how many steps old is the carried state for the chunk's first row?",
            (('xi = p[:, 1:]', 'xi = p[:, :L]'),
             ('s = xi * s_prev[:, None]', 's = p[:, 1:] * s_prev[:, None]'))),
    Mistake('no-cross-decay', '(R.4)',
            'the decay on the cross-chunk term is missing (xi = 1)',
            'the carried state is older than every token of the chunk',
            (('carried = (f.kappa * f.xi)[..., None]', 'carried = f.kappa[..., None]'),)),
    Mistake('no-cross-term', '(R.4)',
            'the cross-chunk term is missing: each chunk ignores the state before it',
            'what do the tokens of earlier chunks contribute?',
            (('Omega = Omega + carried * (q @ state.S)', 'Omega = Omega'), ('r = r + carried[..., 0] * np.einsum("bhnd,bhd->bhn", q, state.z)', 'r = r'))),
    Mistake('state-not-decayed-across-chunks', '(R.4)',
            'the state is not decayed across chunks (no gamma^L)',
            'by how much does the old state fade while L tokens pass?',
            (('S = gamma_L[:, None, None] * state.S +', 'S = state.S +'), ('z = gamma_L[:, None] * state.z +', 'z = state.z +'))),
    Mistake('zeta-off-by-one', '(R.4)',
            "zeta off by one: the chunk's last token is decayed once too often",
            "how old is the chunk's last token when the chunk hands its state on?",
            (('zeta = p[:, L - 1::-1]', 'zeta = p[:, L:0:-1]'),)),
    Mistake('local-count', '(R.8)',
            'the row factors use a count that restarts in every chunk',
            's_n counts every earlier token of the sequence, not only those of the chunk',
            (('s = xi * s_prev[:, None] + np.cumsum(p[:, :L], axis=1)', 's = np.cumsum(p[:, :L], axis=1)'),)),
    Mistake('queries-scaled-twice', '(R.5)',
            'the queries are scaled twice (by 1/d instead of 1/sqrt(d))',
            'q is already divided by sqrt(d) above the loop',
            (('retention_parallel(q[:, :, start:stop],', 'retention_parallel(q[:, :, start:stop] / np.sqrt(q.shape[-1]),'),)),
)

GROUP_NORM_BACKWARD = (
    Mistake('direct-path-only', '(L.4)',
            'only the direct path: dxhat / sigma, without the mean and variance terms',
            'mu and sigma depend on every x of the group, too',
            (('dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)\n          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma', 'dx = dxhat / sigma'),)),
    Mistake('no-mean-term', '(L.4)',
            'the mean term is dropped',
            'what does shifting every x by 1 do to xhat?',
            (('dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)\n          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma', 'dx = (dxhat - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma'),)),
    Mistake('no-variance-term', '(L.4)',
            'the xhat (variance) term is dropped',
            'sigma depends on x; what does its derivative add?',
            (('dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)\n          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma', 'dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)) / sigma'),)),
    Mistake('variance-term-sign', '(L.4)',
            'the sign of the xhat (variance) term is flipped',
            'a larger sigma makes every |xhat| smaller',
            (('          - xhat * (dxhat', '          + xhat * (dxhat'),)),
    Mistake('dxhat-without-w', '(M.4)',
            'the gradient reaching xhat is dy, without the scale w',
            'y = xhat w + b',
            (('dxhat = dy * cache.w', 'dxhat = dy'),)),
    Mistake('dw-db-averaged', '(M.4)',
            'dw and db are averaged over the tokens instead of summed',
            "every token's loss adds up, so how do their gradients combine?",
            (('dw = (dy * cache.xhat).sum(axis=every_group)', 'dw = (dy * cache.xhat).mean(axis=every_group)'), ('db = dy.sum(axis=every_group)', 'db = dy.mean(axis=every_group)'))),
    Mistake('divided-by-sigma-twice', '(L.4)',
            'divided by sigma^2 instead of sigma',
            'xhat = (x - mu) / sigma has one factor 1/sigma',
            (('dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)\n          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma', 'dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)\n          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma / sigma'),)),
)

GATED_RETENTION_RECURRENT = (
    Mistake('log-gate-as-decay', '(GR.2)',
            'the log-gate g is used as the decay instead of the gate alpha = exp(g)',
            'log_decay holds g <= 0; what multiplies the state must lie in (0, 1]',
            (('S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]', 'S = log_decay[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]'), ('z = alpha_S[:, :, n, None] * z + k[:, :, n]', 'z = log_decay[:, :, n, None] * z + k[:, :, n]'), ('s = alpha[:, :, n] * s + 1.0', 's = log_decay[:, :, n] * s + 1.0'))),
    Mistake('one-minus-gate', '(GR.2)',
            'the decay is 1 - alpha (the gate read as a forget probability)',
            'alpha_n = exp(g_n) is how much of the state is kept',
            (('S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]', 'S = (1 - alpha_S[:, :, n, None, None]) * S + k[:, :, n, :, None] * v[:, :, n, None, :]'), ('z = alpha_S[:, :, n, None] * z + k[:, :, n]', 'z = (1 - alpha_S[:, :, n, None]) * z + k[:, :, n]'), ('s = alpha[:, :, n] * s + 1.0', 's = (1 - alpha[:, :, n]) * s + 1.0'))),
    Mistake('decay-after-adding', '(GR.2)',
            'token n is decayed together with the old state (decay after adding)',
            'Gamma^g[n, n] = 1: the newest token is not decayed when output n reads it',
            (('S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]', 'S = alpha_S[:, :, n, None, None] * (S + k[:, :, n, :, None] * v[:, :, n, None, :])'), ('z = alpha_S[:, :, n, None] * z + k[:, :, n]', 'z = alpha_S[:, :, n, None] * (z + k[:, :, n])'))),
    Mistake('gate-of-previous-token', '(GR.1)',
            'the gate of the previous token is used at step n (alpha_{n-1})',
            'Gamma^g[n, m] multiplies the gates after m up to and including n',
            (('S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]', 'S = alpha_S[:, :, n - 1, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]'), ('z = alpha_S[:, :, n, None] * z + k[:, :, n]', 'z = alpha_S[:, :, n - 1, None] * z + k[:, :, n]'), ('s = alpha[:, :, n] * s + 1.0', 's = alpha[:, :, n - 1] * s + 1.0'))),
    Mistake('z-not-gated', '(GR.2)',
            'z is not gated (S is)',
            'z_n must hold the same gated sum of keys that S_n holds with values',
            (('z = alpha_S[:, :, n, None] * z + k[:, :, n]', 'z = z + k[:, :, n]'),)),
    Mistake('count-not-gated', '(GR.2)',
            'the count s is not gated: s_n = n + 1',
            's_n is the row sum of the segment decay Gamma^g, not of a causal mask',
            (('s = alpha[:, :, n] * s + 1.0', 's = s + 1.0'),)),
    Mistake('first-sequence-gates', '(GR.2)',
            'the gates of the first sequence are used for the whole batch',
            'log_decay is (B, h, T): every sequence has its own gates',
            (('S = alpha_S[:, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]', 'S = alpha_S[0, :, n, None, None] * S + k[:, :, n, :, None] * v[:, :, n, None, :]'), ('z = alpha_S[:, :, n, None] * z + k[:, :, n]', 'z = alpha_S[0, :, n, None] * z + k[:, :, n]'), ('s = alpha[:, :, n] * s + 1.0', 's = alpha[0, :, n] * s + 1.0'))),
)

MANHATTAN_DECAY_MASK = (
    Mistake('euclidean-distance', '(V.4)',
            'the straight-line (Euclidean) distance instead of |dy| + |dx|',
            'how many steps along rows and columns lie between two patches?',
            (('distance = np.abs(y[:, None] - y[None, :]) + np.abs(x[:, None] - x[None, :])', 'distance = np.sqrt(np.abs(y[:, None] - y[None, :]) ** 2 + np.abs(x[:, None] - x[None, :]) ** 2)'), ('Gamma = powers[:, distance]', 'Gamma = gammas[:, None, None] ** distance'))),
    Mistake('chebyshev-distance', '(V.4)',
            'the larger of |dy| and |dx| (Chebyshev distance) instead of their sum',
            'a diagonal neighbour is two steps away, not one',
            (('distance = np.abs(y[:, None] - y[None, :]) + np.abs(x[:, None] - x[None, :])', 'distance = np.maximum(np.abs(y[:, None] - y[None, :]), np.abs(x[:, None] - x[None, :]))'),)),
    Mistake('raster-distance', '(V.4)',
            'the 1-D distance |n - m| along the raster order',
            'the patch below is n_x tokens later in raster order but only one row away',
            (('distance = np.abs(y[:, None] - y[None, :]) + np.abs(x[:, None] - x[None, :])', 'n = np.arange(n_y * n_x)\n    distance = np.abs(n[:, None] - n[None, :])'), ('Gamma = powers[:, distance]', 'Gamma = gammas[:, None, None] ** distance'))),
    Mistake('squared-distance', '(V.4)',
            'squared distances dy^2 + dx^2',
            'gamma^(a+b) = gamma^a gamma^b needs the distances added, not squared',
            (('distance = np.abs(y[:, None] - y[None, :]) + np.abs(x[:, None] - x[None, :])', 'distance = np.abs(y[:, None] - y[None, :]) ** 2 + np.abs(x[:, None] - x[None, :]) ** 2'), ('Gamma = powers[:, distance]', 'Gamma = gammas[:, None, None] ** distance'))),
    Mistake('one-power-too-many', '(V.4)',
            'one power too many: gamma^(distance + 1), so Gamma[n, n] is gamma, not 1',
            "what is a patch's decay to itself?",
            (('Gamma = powers[:, distance]', 'Gamma = gammas[:, None, None] ** (distance + 1)'),)),
    Mistake('lower-triangle-only', '(V.4)',
            'only m <= n is kept (the causal mask of retention)',
            'an image has no order in time: Gamma must be symmetric',
            (('Gamma = powers[:, distance]', 'Gamma = np.tril(powers[:, distance])'),)),
)

GATED_DECAY_GRADIENT = (
    Mistake('db-sign-flipped', '(GR.7)',
            'row and column are swapped: k . dk - q . dq',
            "moving b_n up scales row n (the query's) up and column n down",
            (('db = qdq - np.sum(k * dk, axis=-1, dtype=np.float64)', 'db = np.sum(k * dk, axis=-1, dtype=np.float64) - qdq'),)),
    Mistake('forward-cumsum', '(GR.7)',
            'g_t is summed forward (sum over n <= t) instead of backward',
            'which b_n does g_t appear in?',
            (('dlog_decay = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1]', 'dlog_decay = np.cumsum(db, axis=-1)'),)),
    Mistake('cumsum-excludes-self', '(GR.7)',
            'the reverse sum leaves out n = t (sum over n > t)',
            'b_t = g_0 + ... + g_t includes g_t itself',
            (('dlog_decay = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1]', 'dlog_decay = np.cumsum(db[..., ::-1], axis=-1)[..., ::-1] - db'),)),
    Mistake('no-count-terms', '(GR.7)',
            'the count terms ds_n (s_n - 1) - rho_n are missing',
            'kappa_n = s_n^(-1/2) depends on the gates too',
            (("    db += ds * (s - 1.0) - rho                                       # the count's share\n", ''),)),
    Mistake('rho-missing', '(GR.7)',
            'rho is missing: moving b_n also changes every later count s_j',
            's_j = sum_m e^(b_j - b_m) holds -b_n for every j > n',
            (("    db += ds * (s - 1.0) - rho                                       # the count's share\n", '    db += ds * (s - 1.0)\n'),)),
    Mistake('ds-without-half', '(GR.7)',
            'ds_n = -(q_n . dq_n) / s_n: the 1/2 of d(s^(-1/2)) is missing',
            'differentiate kappa = s^(-1/2)',
            (('ds = -qdq / (2.0 * s)', 'ds = -qdq / s'),)),
    Mistake('no-final-state-term', '(GR.7)',
            "the returned state's term <dS, S> + <dz, z> is missing",
            'the returned state is one more row of scores, at the last token',
            (('        db[..., -1] += (np.sum(dfinal.S * final.S, axis=(-2, -1))   # one more row\n                        + np.sum(dfinal.z * final.z, axis=-1))\n', ''),)),
)


# --- the common families (issue 24): a derivative of the activated value, the state read before
# it is written, kappa = 1/s, a factor on the wrong side, a sum over the wrong axis, ... ---------

TANH_OF_H = "the tanh derivative is taken of h, which is already tanh(a): 1 - tanh(h)^2"
SIGMOID_STYLE = "the derivative is written h (1 - h), the sigmoid's, not tanh's 1 - h^2"
KAPPA_ONE_OVER_S = "the row factor is 1 / s_n instead of 1 / sqrt(s_n)"
KAPPA_HINT = "kappa_n = s_n^(-1/2): which power of the count?"
READ_BEFORE_WRITE = ("the output reads the state before token n is written into it "
                     "(S_(n-1) where S_n belongs)")
READ_HINT = "Gamma[n, n] = 1: does output n see its own token?"

RNN_STEP_BACKWARD += (
    Mistake("tanh-derivative-of-h", "(RNN.4)", TANH_OF_H,
            "cache.h is tanh(a) already; the derivative wants tanh(a), not tanh(tanh(a))",
            (("da = dh * (1.0 - cache.h ** 2)", "da = dh * (1.0 - np.tanh(cache.h) ** 2)"),)),
    Mistake("sigmoid-derivative", "(RNN.4)", SIGMOID_STYLE,
            "the RNN's activation is tanh: what is d tanh(a) / da in terms of h?",
            (("da = dh * (1.0 - cache.h ** 2)", "da = dh * cache.h * (1.0 - cache.h)"),)),
)

RNN_BACKWARD += (
    Mistake("tanh-derivative-of-h", "(RNN.4)", TANH_OF_H,
            "h[:, t] is tanh(a_t) already",
            (("da[:, t] = delta * (1.0 - h[:, t] ** 2)",
              "da[:, t] = delta * (1.0 - np.tanh(h[:, t]) ** 2)"),)),
    Mistake("sigmoid-derivative", "(RNN.4)", SIGMOID_STYLE,
            "the RNN's activation is tanh: what is d tanh(a) / da in terms of h?",
            (("da[:, t] = delta * (1.0 - h[:, t] ** 2)",
              "da[:, t] = delta * h[:, t] * (1.0 - h[:, t])"),)),
    Mistake("tanh-derivative-at-h-prev", "(RNN.4)",
            "tanh' of step t is taken at h_(t-1) instead of h_t",
            "a_t is the pre-activation of h_t, so its slope is 1 - h_t^2",
            (("da[:, t] = delta * (1.0 - h[:, t] ** 2)",
              "da[:, t] = delta * (1.0 - (h[:, t - 1] if t > 0 else cache.h0) ** 2)"),)),
    Mistake("dh0-from-last-step", "(RNN.6)",
            "dh0 is computed from the last step's da instead of the first step's",
            "h0 feeds a_1, the first step; which da does it meet?",
            (("dh0 = da_next_WhT", "dh0 = da[:, -1] @ cache.Wh.T"),)),
)

SOFTMAX_BACKWARD += (
    Mistake("sum-over-last-axis", "(A.2)",
            "the sum always runs over the last axis, not over cache.axis",
            "softmax_forward takes an axis: which one did it normalise over?",
            (("axis=cache.axis, keepdims=True", "axis=-1, keepdims=True"),)),
)

ATTENTION_BACKWARD += (
    Mistake("divided-by-scale", "(A.8)",
            "dq and dk are divided by the scale 1/sqrt(d) instead of multiplied by it",
            "the scores are (q k^T) * scale: what does the chain rule multiply by?",
            (("dq = (dE @ cache.k) * cache.scale", "dq = (dE @ cache.k) / cache.scale"),
             ("dk = (np.swapaxes(dE, -1, -2) @ cache.q) * cache.scale",
              "dk = (np.swapaxes(dE, -1, -2) @ cache.q) / cache.scale"))),
)

KV_CACHE_STEP += (
    Mistake("query-bias-missing", "(A.9)", "the query bias bq is missing",
            "q = x Wq + bq, like the values",
            (('q = split_heads(xs @ p["Wq"] + b["bq"], n_heads)',
              'q = split_heads(xs @ p["Wq"], n_heads)'),)),
)

RETENTION_RECURRENT += (
    Mistake("kappa-one-over-s", "(R.5)", KAPPA_ONE_OVER_S, KAPPA_HINT,
            (("kappa[:, n] = 1.0 / np.sqrt(s)", "kappa[:, n] = 1.0 / s"),)),
    Mistake("read-before-write", "(R.7)", READ_BEFORE_WRITE, READ_HINT,
            (("S = gamma_S[:, None, None] * S + k", "S_old = S\n        S = gamma_S[:, None, None] * S + k"),
             ('np.einsum("bhd,bhde->bhe", qn, S)', 'np.einsum("bhd,bhde->bhe", qn, S_old)'),
             ("z = gamma_S[:, None] * z + k[:, :, n]", "z_old = z\n        z = gamma_S[:, None] * z + k[:, :, n]"),
             ("np.sum(qn * z, axis=-1)", "np.sum(qn * z_old, axis=-1)"))),
)

RETENTION_PARALLEL_BACKWARD += (
    Mistake("dq-scaled-twice", "(R.10)",
            "dq is multiplied by 1/sqrt(d), which the code after yours does again",
            "the code after your part multiplies dq by c.scale already",
            (("dq = dA @ c.k", "dq = (dA @ c.k) * c.scale"),)),
    Mistake("no-row-factor", "(R.10)",
            "the row factors kappa are left out of dA (only the decay mask is applied)",
            "R = (Q' K^T) * Gamma * kappa: both factors multiply the gradient",
            (("dA = dR * (c.Gamma * c.kappa[..., None])", "dA = dR * c.Gamma"),)),
)

RETENTION_CHUNKWISE += (
    Mistake("kappa-one-over-s", "(R.8)", KAPPA_ONE_OVER_S, KAPPA_HINT,
            (("kappa = 1.0 / np.sqrt(s) if normalize", "kappa = 1.0 / s if normalize"),)),
    Mistake("short-chunk-fresh-state", "(R.4)",
            "a last chunk shorter than chunk_size starts from an empty state",
            "when chunk_size does not divide T, the last chunk still follows the others",
            (("v[:, :, start:stop], gamma, state, normalize)",
              "v[:, :, start:stop], gamma,\n"
              "                                               state if stop - start == chunk_size else None,\n"
              "                                               normalize)"),)),
    Mistake("final-count-not-decayed", "(R.4)",
            "the count s handed on is not decayed: s = s_prev + sum_m gamma^m",
            "the old count fades by gamma^L like the old state",
            (("s = gamma ** L * state.s +", "s = state.s +"),)),
)

GROUP_NORM_BACKWARD += (
    Mistake("times-sigma", "(L.4)", "dx is multiplied by sigma instead of divided by it",
            "xhat = (x - mean) / sigma: what does the chain rule bring down?",
            (("keepdims=True)) / sigma", "keepdims=True)) * sigma"),)),
    Mistake("mean-over-heads", "(L.4)",
            "the means run over the heads axis instead of each head's own features",
            "each head is normalised over its own dv features: the last axis",
            (("dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)",
              "dx = (dxhat - dxhat.mean(axis=-2, keepdims=True)"),
             ("- xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)",
              "- xhat * (dxhat * xhat).mean(axis=-2, keepdims=True)"))),
)

GATED_RETENTION_RECURRENT += (
    Mistake("kappa-one-over-s", "(GR.2)", KAPPA_ONE_OVER_S, KAPPA_HINT,
            (("kappa[:, :, n] = 1.0 / np.sqrt(s)", "kappa[:, :, n] = 1.0 / s"),)),
    Mistake("read-before-write", "(GR.2)", READ_BEFORE_WRITE, READ_HINT,
            (("S = alpha_S[:, :, n, None, None] * S + k", "S_old = S\n        S = alpha_S[:, :, n, None, None] * S + k"),
             ('np.einsum("bhd,bhde->bhe", qn, S)', 'np.einsum("bhd,bhde->bhe", qn, S_old)'),
             ("z = alpha_S[:, :, n, None] * z + k[:, :, n]", "z_old = z\n        z = alpha_S[:, :, n, None] * z + k[:, :, n]"),
             ("np.sum(qn * z, axis=-1)", "np.sum(qn * z_old, axis=-1)"))),
    Mistake("cumulative-gate", "(GR.2)",
            "the cumulative gate exp(g_1 + ... + g_n) multiplies the state at step n, where the "
            "step's own gate alpha_n belongs",
            "the state already carries the earlier gates; each step adds only its own",
            ((GS, GS.replace("alpha_S[:, :, n, None, None]", "np.exp(np.cumsum(log_decay, -1))[:, :, n, None, None]")),
             (GZ, GZ.replace("alpha_S[:, :, n, None]", "np.exp(np.cumsum(log_decay, -1))[:, :, n, None]")),
             (GC, GC.replace("alpha[:, :, n]", "np.exp(np.cumsum(log_decay, -1))[:, :, n]")))),
)

MANHATTAN_DECAY_MASK += (
    Mistake("signed-distance", "(V.4)",
            "the distance is signed (no absolute values), so patches before n get negative "
            "powers", "a distance is the same whichever patch you start from",
            (("distance = np.abs(y[:, None] - y[None, :]) + np.abs(x[:, None] - x[None, :])",
              "distance = (y[:, None] - y[None, :]) + (x[:, None] - x[None, :])"),
             ("Gamma = powers[:, distance]", "Gamma = gammas[:, None, None] ** distance"))),
    Mistake("divmod-by-rows", "(V.4)",
            "the grid position is divmod(n, n_y): divided by the number of rows, not of columns",
            "in raster order, a new row starts every n_x patches",
            (("np.divmod(np.arange(n_y * n_x), n_x)", "np.divmod(np.arange(n_y * n_x), n_y)"),
             ("Gamma = powers[:, distance]", "Gamma = gammas[:, None, None] ** distance"))),
)

GATED_DECAY_GRADIENT += (
    Mistake("ds-prev-without-gate", "(GR.7)",
            "ds_prev misses the first token's gate alpha_0",
            "s_0 = alpha_0 s_prev + 1: what multiplies s_prev?",
            (("ds_prev = alpha[..., 0] * (ds[..., 0] + rho[..., 0])",
              "ds_prev = ds[..., 0] + rho[..., 0]"),)),
    Mistake("normalize-ignored", "(GR.7)",
            "the count terms are used even when normalize=False (no row factors, no count)",
            "without normalisation kappa_n = 1 does not depend on s_n",
            (("ds = -qdq / (2.0 * s) if normalize else np.zeros_like(s)", "ds = -qdq / (2.0 * s)"),)),
)

DR_DECAY = "S = alpha[:, :, t, None, None] * S                           # decay the memory"
DR_READ = 'read = np.einsum("bhd,bhde->bhe", k[:, :, t], S)             # what it returns for k_t'
DR_U = "u[:, :, t] = beta[:, :, t, None] * (v[:, :, t] - read)"
DR_WRITE = "S = S + k[:, :, t, :, None] * u[:, :, t, None, :]"
DR_OUT = 'out[:, :, t] = scale * np.einsum("bhd,bhde->bhe", q[:, :, t], S)'

DELTA_RULE_RECURRENT = (
    Mistake("no-beta-on-erase", "(DR.1)",
            "beta multiplies the new value but not the erased one: u = beta v - k S",
            "u_t = beta_t (v_t - k_t S): how strongly is the old value erased?",
            ((DR_U, "u[:, :, t] = beta[:, :, t, None] * v[:, :, t] - read"),)),
    Mistake("correction-sign-flipped", "(DR.1)",
            "the correction is read minus value: u = beta (k S - v)",
            "the write must move what the memory returns for k_t towards v_t",
            ((DR_U, "u[:, :, t] = beta[:, :, t, None] * (read - v[:, :, t])"),)),
    Mistake("read-before-decay", "(DR.1)",
            "the memory is read before it is decayed (k_t S_(t-1) where k_t alpha_t S_(t-1) "
            "belongs)", "the correction is measured against the memory as it is now, after the "
            "gate", ((DR_READ, 'read = np.einsum("bhd,bhde->bhe", k[:, :, t], S_all[:, :, t])'),)),
    Mistake("decay-on-write", "(DR.1)",
            "the gate decays the new write too: S_t = alpha_t (S_(t-1) + k_t^T u_t)",
            "alpha_t fades what was there before token t, not what token t writes",
            ((DR_DECAY, "pass"),
             (DR_WRITE, "S = alpha[:, :, t, None, None] * (S + k[:, :, t, :, None] * u[:, :, t, None, :])"))),
    Mistake("output-before-write", "(DR.1)",
            "the output reads the memory before token t is written (S_(t-1) where S_t belongs)",
            "o_t = q_t S_t: does output t see its own token's write?",
            ((DR_OUT, 'out[:, :, t] = scale * np.einsum("bhd,bhde->bhe", q[:, :, t], S - k[:, :, t, :, None] * u[:, :, t, None, :])'),)),
    Mistake("no-output-scale", "(DR.1)", "the output scale is forgotten: o_t = q_t S_t",
            "o_t = scale q_t S_t, and scale is given (1/sqrt(d) unless passed)",
            ((DR_OUT, 'out[:, :, t] = np.einsum("bhd,bhde->bhe", q[:, :, t], S)'),)),
    Mistake("beta-twice", "(DR.1)", "beta is applied twice: to the correction and to the write",
            "u_t already holds beta_t", ((DR_WRITE, "S = S + beta[:, :, t, None, None] * k[:, :, t, :, None] * u[:, :, t, None, :]"),)),
    Mistake("one-minus-gate", "(DR.1)", "the memory is decayed by 1 - alpha_t",
            "alpha_t = exp(g_t) is how much of the memory is kept",
            ((DR_DECAY, "S = (1 - alpha[:, :, t, None, None]) * S"),)),
)

DT_LOWER = "lower = np.tril(beta[..., None] * KK, -1)"
DT_TC = "T_c = solve_unit_lower(lower, beta[..., None] * np.eye(k.shape[-2], dtype=k.dtype))"

DELTA_CHUNK_TRANSFORM = (
    Mistake("diagonal-kept", "(DR.4)", "the diagonal is kept in lower (tril(..., 0))",
            "M = I + the strictly lower part: the diagonal of M is already the I",
            ((DT_LOWER, "lower = np.tril(beta[..., None] * KK)"),)),
    Mistake("no-beta-in-M", "(DR.4)", "the rows of M are not scaled by beta",
            "M = I + tril(diag(beta) (K K^T * Gamma), -1)",
            ((DT_LOWER, "lower = np.tril(KK, -1)"),)),
    Mistake("no-beta-on-right", "(DR.6)", "T_c = M^(-1) without diag(beta) on the right",
            "T_c = M^(-1) diag(beta): solve with diag(beta) as the right-hand side",
            ((DT_TC, "T_c = solve_unit_lower(lower, np.broadcast_to(np.eye(k.shape[-2], dtype=k.dtype), lower.shape))"),)),
    Mistake("W-without-xi", "(DR.6)", "W misses the decays xi: W = T_c K",
            "the carried state has decayed by xi_t when token t reads it",
            (("W = T_c @ (xi[..., None] * k)", "W = T_c @ k"),)),
    Mistake("xi-on-U", "(DR.6)", "the decays xi are applied to U as well: U = T_c diag(xi) V",
            "xi belongs to the carried state's term, W; U = T_c V",
            (("U = T_c @ v", "U = T_c @ (xi[..., None] * v)"),)),
    Mistake("no-gate-mask", "(DR.4)", "K K^T is not multiplied by the segment decay Gamma",
            "the earlier tokens' writes have decayed when token t reads them",
            (("KK = (k @ np.swapaxes(k, -1, -2)) * Gamma", "KK = k @ np.swapaxes(k, -1, -2)"),)),
    Mistake("upper-triangle", "(DR.4)", "the upper triangle is taken instead of the lower",
            "token t corrects for the tokens before it: the entries below the diagonal",
            ((DT_LOWER, "lower = np.triu(beta[..., None] * KK, 1)"),)),
    Mistake("beta-on-columns", "(DR.4)", "beta scales the columns of K K^T instead of its rows",
            "row t of M belongs to token t's correction, so beta_t scales row t",
            ((DT_LOWER, "lower = np.tril(KK * beta[..., None, :], -1)"),)),
)

# --- more of the common slips ------------------------------------------------------------------

KAPPA_SQRT = "the row factor is sqrt(s_n) instead of 1 / sqrt(s_n)"

RNN_BACKWARD += (
    Mistake("db-mean-over-batch", "(RNN.5)", "db averages over the batch instead of summing",
            "every example's loss adds up, so how do their gradients combine?",
            (('"b": da.sum(axis=(0, 1)),', '"b": da.sum(axis=(0, 1)) / da.shape[0],'),)),
)
RETENTION_PARALLEL_BACKWARD += (
    Mistake("dv-untransposed-R", "(R.10)", "dv uses R where its transpose belongs",
            "Omega = R V: which side of R does dOmega come back through to V?",
            (("dv = np.swapaxes(c.R, -1, -2) @ dOmega", "dv = c.R @ dOmega"),)),
)
RETENTION_RECURRENT += (
    Mistake("kappa-sqrt-s", "(R.5)", KAPPA_SQRT, KAPPA_HINT,
            (("kappa[:, n] = 1.0 / np.sqrt(s)", "kappa[:, n] = np.sqrt(s)"),)),
)
GATED_RETENTION_RECURRENT += (
    Mistake("kappa-sqrt-s", "(GR.2)", KAPPA_SQRT, KAPPA_HINT,
            (("kappa[:, :, n] = 1.0 / np.sqrt(s)", "kappa[:, :, n] = np.sqrt(s)"),)),
)
GATED_DECAY_GRADIENT += (
    Mistake("ds-prev-missing", "(GR.7)", "ds_prev is left at zero",
            "the incoming count s_prev feeds s_0 = alpha_0 s_prev + 1, so the row factors "
            "depend on it", (("ds_prev = alpha[..., 0] * (ds[..., 0] + rho[..., 0])",
                              "ds_prev = np.zeros_like(ds[..., 0])"),)),
)
RETENTION_CHUNKWISE += (
    Mistake("zeta-reversed", "(R.4)",
            "zeta runs the wrong way: gamma^j where gamma^(L-1-j) belongs",
            "when the chunk hands its state on, its last token is the newest: which token has "
            "decayed the most?", (("zeta = p[:, L - 1::-1]", "zeta = p[:, :L]"),)),
)
KV_CACHE_STEP += (
    Mistake("Wo-transposed", "(A.9)", "the output projection uses Wo transposed",
            "y = merge_heads(out) Wo: rows of Wo meet the heads' features",
            (('y = merge_heads(out) @ p["Wo"] + b["bo"]',
              'y = merge_heads(out) @ p["Wo"].T + b["bo"]'),)),
)
DELTA_RULE_RECURRENT += (
    Mistake("no-beta", "(DR.1)", "the writing strength beta is left out: u = v - k S",
            "u_t = beta_t (v_t - k_t S): beta_t says how much of the correction is written",
            ((DR_U, "u[:, :, t] = v[:, :, t] - read"),)),
)

LSTM_DC = "dc_total = dc + dh * o * (1.0 - cache.tanh_c ** 2)"
LSTM_DA_IFO = ("di * i * (1.0 - i)", "df * f * (1.0 - f)", "do * o * (1.0 - o)")
LSTM_GRADS = 'grads = {"Wx": cache.x.T @ da, "Wh": cache.h_prev.T @ da, "b": da.sum(axis=0)}'


def _sig(v):
    return f"(1.0 / (1.0 + np.exp(-{v})))"


LSTM_STEP_BACKWARD = (
    Mistake("dc-assigned", "(LSTM.4)",
            "the cell's gradient is assigned from h's road, dropping the dc the next step sent",
            "the cell feeds h_t and c_(t+1): how do the gradients of its two uses combine?",
            ((LSTM_DC, "dc_total = dh * o * (1.0 - cache.tanh_c ** 2)"),)),
    Mistake("sigmoid-derivative-of-activated", "(LSTM.6)",
            "sigmoid' is taken of the gate, which is already sigmoid(a): s(i) (1 - s(i))",
            "i = sigmoid(a_i) is in the cache; sigmoid'(a_i) written with i needs no sigmoid",
            tuple((t, t.replace(f"{gate} * (1.0 - {gate})", f"{_sig(gate)} * (1.0 - {_sig(gate)})"))
                  for t, gate in zip(LSTM_DA_IFO, "ifo"))),
    Mistake("tanh-derivative-of-activated", "(LSTM.4)",
            "1 - tanh^2 is taken of a value that is already tanh'd (tanh_c, c_bar)",
            "tanh_c = tanh(c_t) and c_bar = tanh(a_c): the derivative wants them squared as "
            "they are", ((LSTM_DC, "dc_total = dc + dh * o * (1.0 - np.tanh(cache.tanh_c) ** 2)"),
                         ("dc_bar * (1.0 - c_bar ** 2)", "dc_bar * (1.0 - np.tanh(c_bar) ** 2)"))),
    Mistake("di-wrong-factor", "(LSTM.5)",
            "di takes the gate's own value as its factor: di = dc * i",
            "in i * c_bar, the gradient of one factor is dc times the other",
            (("di = dc_total * c_bar", "di = dc_total * i"),)),
    Mistake("do-wrong-factor", "(LSTM.5)",
            "do takes the gate's own value as its factor: do = dh * o",
            "in h = o * tanh(c), the gradient of o is dh times the other factor",
            (("do = dh * cache.tanh_c", "do = dh * o"),)),
    Mistake("dc_prev-missing-f", "(LSTM.5)",
            "dc_prev is the cell's gradient without the forget gate: dc_(t-1) = dc",
            "c_t = f * c_(t-1) + ...: what multiplies c_(t-1)?",
            (("dc_prev = dc_total * f", "dc_prev = dc_total"),)),
    Mistake("df-from-c", "(LSTM.5)", "df uses c_t where c_(t-1) belongs: df = dc * c_t",
            "the forget gate multiplies the previous cell, not the new one",
            (("df = dc_total * cache.c_prev", "df = dc_total * cache.c"),)),
    Mistake("dWh-from-h", "(LSTM.7)", "dWh uses h_t where h_(t-1) belongs",
            "a = x Wx + h_(t-1) Wh + b: which state does Wh multiply?",
            ((LSTM_GRADS, 'grads = {"Wx": cache.x.T @ da, "Wh": (o * cache.tanh_c).T @ da, '
                          '"b": da.sum(axis=0)}'),)),
    Mistake("db-mean-over-batch", "(LSTM.7)",
            "db averages da over the batch instead of summing it",
            "every example's loss adds up, so how do their gradients combine?",
            ((LSTM_GRADS, 'grads = {"Wx": cache.x.T @ da, "Wh": cache.h_prev.T @ da, '
                          '"b": da.sum(axis=0) / da.shape[0]}'),)),
)

GRU_STEP_BACKWARD = (
    Mistake("dz-sign-flipped", "(GRU.5)", "dz has its sign flipped: dz = dh (h_bar - h_(t-1))",
            "h_t = h_bar + z (h_(t-1) - h_bar): what does z multiply?",
            (("dz = dh * (h_prev - h_bar)", "dz = dh * (h_bar - h_prev)"),)),
    Mistake("no-direct-road", "(GRU.5)",
            "the direct road dh * z to h_(t-1) is dropped",
            "h_(t-1) appears in z * h_(t-1) itself, not only inside the gates and candidate",
            (("dh_prev = dh * z", "dh_prev = np.zeros_like(h_prev)"),)),
    Mistake("z-meaning-swapped", "(GRU.5)",
            "z and 1 - z are swapped: z is taken to weight the candidate",
            "h_t = (1 - z) h_bar + z h_(t-1): z keeps the old state",
            (("dh_bar = dh * (1.0 - z)", "dh_bar = dh * z"),
             ("dh_prev = dh * z", "dh_prev = dh * (1.0 - z)"))),
    Mistake("tanh-derivative-of-activated", "(GRU.6)",
            "1 - tanh^2 is taken of h_bar, which is already tanh'd",
            "h_bar = tanh(a): its derivative is 1 - h_bar^2, with no second tanh",
            (("da_h = dh_bar * (1.0 - h_bar ** 2)", "da_h = dh_bar * (1.0 - np.tanh(h_bar) ** 2)"),)),
    Mistake("dr-from-h_prev", "(GRU.7)",
            "dr is taken with h_(t-1) instead of h_(t-1) Wh_h + bh_h",
            "after the product, r multiplies a_hh = h_(t-1) Wh_h + bh_h",
            (("dr = da_h * cache.a_hh", "dr = da_h * h_prev"),)),
    Mistake("r-left-out-of-candidate-weights", "(GRU.7)",
            "the candidate's dWh and dbh miss the reset gate: they use da_h, not r * da_h",
            "Wh_h and bh_h reach the candidate only through r * a_hh",
            (("hh_in.T @ dah_h", "hh_in.T @ da_h"), ("dah_h.sum(axis=0)", "da_h.sum(axis=0)"))),
    Mistake("sigmoid-derivative-of-activated", "(GRU.8)",
            "sigmoid' is taken of the gate, which is already sigmoid(a): s(r) (1 - s(r))",
            "r and z are sigmoids already; sigmoid'(a) written with r needs no sigmoid",
            (("dr * r * (1.0 - r)", f"dr * {_sig('r')} * (1.0 - {_sig('r')})"),
             ("dz * z * (1.0 - z)", f"dz * {_sig('z')} * (1.0 - {_sig('z')})"))),
    Mistake("dx-missing-candidate-block", "(GRU.9)",
            "dx leaves out the candidate's block of Wx: only r and z send gradient to x",
            "x feeds all three blocks of x Wx",
            (("return dax @ cache.Wx.T", "return dah_rz @ cache.Wx[:, :2 * H].T"),)),
)

SCAN_B = "b = np.cumsum(log_decay_ch, axis=-1, dtype=np.float64)"
SCAN_GAMMA = "np.tril(np.exp(np.minimum(diff, 0.0)))"
SCAN_H0 = "np.exp(b).astype(u.dtype) * h0[..., None]"

LINEAR_SCAN_PARALLEL = (
    Mistake("mask-transposed", "(MIN.2)",
            "the decay is exp(b_s - b_t), the mask transposed: every weight of s <= t becomes 1",
            "h_t keeps u_s scaled by the gates between s and t: which of b_t, b_s is smaller?",
            (("diff = b[..., :, None] - b[..., None, :]",
              "diff = b[..., None, :] - b[..., :, None]"),)),
    Mistake("no-causal-mask", "(MIN.2)",
            "the mask keeps s > t: h_t reads u_s from later steps",
            "the sum in (MIN.2) runs over s <= t only: what zeroes the rest?",
            ((SCAN_GAMMA, "np.exp(np.minimum(diff, 0.0))"),)),
    Mistake("strict-mask", "(MIN.2)",
            "the mask leaves out s = t: h_t misses its own u_t",
            "the sum in (MIN.2) includes s = t, with weight exp(0) = 1",
            ((SCAN_GAMMA, "np.tril(np.exp(np.minimum(diff, 0.0)), -1)"),)),
    Mistake("h0-weight-off-by-one", "(MIN.2)",
            "h0's weight is exp(b_(t-1)), one gate short of exp(b_t)",
            "h_1 = alpha_1 h0 + u_1: how many gates has h0 passed by step t?",
            ((SCAN_H0, "np.exp(b - log_decay_ch).astype(u.dtype) * h0[..., None]"),)),
    Mistake("h0-not-decayed", "(MIN.2)",
            "h0 is added to every h_t with weight 1, without its decay exp(b_t)",
            "h0 passes through the gates alpha_1 .. alpha_t before it reaches h_t",
            ((SCAN_H0, "h0[..., None]"),)),
    Mistake("cumsum-from-zero", "(MIN.2)",
            "the cumulative sum starts at 0 instead of g_1: b_t = g_1 + ... + g_(t-1)",
            "b_1 = g_1: the first state is already gated once",
            ((SCAN_B, SCAN_B + " - log_decay_ch"),)),
    Mistake("gates-not-logs", "(MIN.2)",
            "the gates alpha = exp(g) are summed where their logs g belong",
            "log_decay holds g = log alpha: a product of gates is a sum of these",
            ((SCAN_B, "b = np.cumsum(np.exp(log_decay_ch), axis=-1, dtype=np.float64)"),)),
)

# The write_a_property exercise: chunkwise retention with a bug that shows only in the returned
# state (a property that never looks at it misses it).
PROPERTY_ONLY = (
    Mistake("state-of-last-chunk-dropped", "(R.4)",
            "the state is handed on between chunks but the last chunk's update is not returned",
            "check the returned state, not only the outputs",
            (("out, state, chunk = retention_parallel(", "out, after, chunk = retention_parallel("),
             ("outs.append(out)", "state = after if stop < q.shape[2] else state\n        outs.append(out)"))),
)

CATALOGUE = {
    "rnn_step_backward": RNN_STEP_BACKWARD,
    "rnn_backward": RNN_BACKWARD,
    "softmax_backward": SOFTMAX_BACKWARD,
    "attention_backward": ATTENTION_BACKWARD,
    "kv_cache_step": KV_CACHE_STEP,
    "retention_recurrent": RETENTION_RECURRENT,
    "retention_parallel_backward": RETENTION_PARALLEL_BACKWARD,
    "retention_chunkwise": RETENTION_CHUNKWISE,
    "group_norm_backward": GROUP_NORM_BACKWARD,
    "gated_retention_recurrent": GATED_RETENTION_RECURRENT,
    "manhattan_decay_mask": MANHATTAN_DECAY_MASK,
    "gated_decay_gradient": GATED_DECAY_GRADIENT,
    "delta_rule_recurrent": DELTA_RULE_RECURRENT,
    "delta_chunk_transform": DELTA_CHUNK_TRANSFORM,
    "lstm_step_backward": LSTM_STEP_BACKWARD,
    "gru_step_backward": GRU_STEP_BACKWARD,
    "linear_scan_parallel": LINEAR_SCAN_PARALLEL,
    "write_a_property": RETENTION_CHUNKWISE + PROPERTY_ONLY,
}
