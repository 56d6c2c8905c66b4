"""Vision: patches, the Manhattan decay, MaSA and 2-D retention on a grid of T patch tokens.

Step by step: pixels cut into patch tokens (V.1), the Manhattan decay and its Kronecker factors
(V.4), then one core on the grid of tokens: RMT's MaSA in full (V.6) or decomposed into rows
and columns (V.7), or softmax-free 2-D retention (V.8) checked against its four scans (V.9); the
backward of the core written out beside the library's.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np

from ..attention import SoftmaxCache, softmax_backward
from ..vision import (
    bidirectional_scan,
    decayed_attention_backward,
    decayed_attention_forward,
    manhattan_decay_mask,
    patchify,
    retention_2d_parallel,
    retention_2d_parallel_backward,
    retention_2d_scan,
    retention_2d_scan_backward,
    unpatchify,
    vision_cores,
)
from .printing import Step, difference, flat, fmt, tiny

FORMS = ("masa", "masa_decomposed", "retention_2d")
GAMMA = 0.5
PATCH = 2


def grid_of(T: int) -> tuple[int, int]:
    """The grid of ``T`` tokens: ``n_y`` rows and ``n_x >= n_y`` columns, as square as ``T`` allows
    (4: 2 x 2, 6: 2 x 3, 12: 3 x 4, a prime: one row)."""
    n_y = max(h for h in range(1, int(np.sqrt(T)) + 1) if T % h == 0)
    return n_y, T // n_y


def cores(grid, gamma) -> dict:
    """The forms of this walk as a table ``{form: (forward(q, k, v), backward(do, cache))}``."""
    table = vision_cores(grid, gamma)
    return {"masa": table["masa"], "masa_decomposed": table["masa_decomposed"],
            "retention_2d": (partial(retention_2d_parallel, grid=grid, gamma=gamma),
                             retention_2d_parallel_backward)}


def walk(T: int, d: int, seed: int, backward: bool, form: str = "masa",
         chunk_size: int = 2) -> Iterator[Step]:
    """``T`` patch tokens on a grid (``grid_of(T)``), one head of width ``d``, ``dv = 2``."""
    n_y, n_x = grid_of(T)
    gamma = np.array([GAMMA])
    yield from _pixels_to_tokens(n_y, n_x)
    rng = np.random.default_rng(seed)
    q, k = tiny(rng, 1, 1, T, d), tiny(rng, 1, 1, T, d)
    v = tiny(rng, 1, 1, T, 2)
    yield Step(f"The tokens: one head, d = {d}, dv = 2. In a model Q, K, V are projections of "
               f"the embedded patches, Z = X_p E + b (V.2)-(V.3); here they are short numbers",
               [fmt("Q", q[0, 0]), fmt("K", k[0, 0]), fmt("V", v[0, 0])])
    Gamma = yield from _decay(n_y, n_x)
    table = cores((n_y, n_x), gamma)
    forward, core_backward = table[form]
    out, cache = forward(q, k, v)
    yield from _FORWARD[form](q, k, v, Gamma, out, cache, table)
    if backward:
        yield from _BACKWARD[form](q, k, v, Gamma, out, cache, core_backward, table)


# --- from pixels to tokens, and the decay ------------------------------------------------------

def _ints(name: str, a) -> str:
    return f"{name} {a.shape} =\n" + "\n".join(
        "    " + line for line in np.array2string(np.asarray(a).astype(int)).splitlines())


def _pixels_to_tokens(n_y, n_x):
    image = np.arange(PATCH * n_y * PATCH * n_x, dtype=np.float64).reshape(1, PATCH * n_y,
                                                                         PATCH * n_x, 1)
    yield Step(f"Setup: an image of {PATCH * n_y} x {PATCH * n_x} pixels, one channel, cut "
               f"into patches of {PATCH} x {PATCH}: a grid of n_y = {n_y} rows and n_x = {n_x} "
               f"columns of tokens. Every pixel holds its own index, so you can see where it goes",
               [_ints("image", image[0, :, :, 0])])
    patches = patchify(image, PATCH)
    lines = [f"patch {n} (grid row {n // n_x}, column {n % n_x}): pixels "
             + np.array2string(patches[0, n].astype(int)) for n in range(n_y * n_x)]
    yield Step(f"Patchify: patch n = y n_x + x holds rows {PATCH} y .. {PATCH} y + "
               f"{PATCH - 1} and columns {PATCH} x .. {PATCH} x + {PATCH - 1}, flattened "
               f"(row in the patch, column in the patch, channel); a reshape, no arithmetic "
               f"(V.1)",
               [*lines, difference("unpatchify(patchify(x)) vs x",
                                   unpatchify(patches, image.shape[1:], PATCH), image)])


def _decay(n_y, n_x):
    Gamma = manhattan_decay_mask(n_y, n_x, GAMMA)
    y, x = np.divmod(np.arange(n_y * n_x), n_x)
    yield Step("The Manhattan decay Gamma[n, m] = gamma^(|y_n - y_m| + |x_n - x_m|) with "
               f"gamma = {GAMMA}: token n sits at row y_n = n // n_x, column x_n = n % n_x   (V.4)",
               ["rows y = " + np.array2string(y) + "   columns x = " + np.array2string(x),
                fmt("Gamma", Gamma), "symmetric: nothing is causal in an image"])
    G_y, G_x = manhattan_decay_mask(1, n_y, GAMMA), manhattan_decay_mask(1, n_x, GAMMA)
    yield Step("It factorises: Gamma = Gamma^y kron Gamma^x with the 1-D masks gamma^|i - j|, "
               "because gamma^(a + b) = gamma^a gamma^b and raster order lists the columns "
               "fastest   (V.4)",
               [fmt("Gamma^y", G_y), fmt("Gamma^x", G_x),
                difference("Gamma vs Gamma^y kron Gamma^x", Gamma, np.kron(G_y, G_x))])
    return Gamma


# --- MaSA in full (V.5)-(V.6) --------------------------------------------------------------------

def _softmax_rows(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _masa(q, k, v, Gamma, out, cache, table):
    E = (q[0, 0] @ k[0, 0].T) * cache.scale
    yield Step("Scores E = Q K^T / sqrt(d): every token against every token, no mask   (A.3)",
               [fmt("E", E)])
    yield Step("Add ln Gamma before the softmax: the farther the token, the larger the "
               "negative bias (RMT's code)   (V.6)",
               [fmt("ln Gamma", np.log(Gamma)), fmt("E + ln Gamma", E + np.log(Gamma))])
    A = cache.A[0, 0]
    yield Step("Softmax of every row: A = softmax(E + ln Gamma); O = A V   (V.6)",
               [fmt("A", A), fmt("row sums", A.sum(-1)),
                difference("softmax written out vs the library's A",
                           _softmax_rows(E + np.log(Gamma)), A),
                fmt("O", out[0, 0])])
    _, paper_cache = decayed_attention_forward(q, k, v, Gamma, variant="paper")
    Ap = paper_cache.A[0, 0]
    yield Step("Check: the paper prints softmax(E) * Gamma (V.5), whose rows sum to less than "
               "one; renormalised per row it is the code form (V.6)",
               [fmt("paper weights", Ap), fmt("their row sums", Ap.sum(-1)),
                difference("code form vs paper renormalised",
                           out[0, 0], (Ap / Ap.sum(-1, keepdims=True)) @ v[0, 0])])


def _masa_backward(q, k, v, Gamma, out, cache, core_backward, table):
    dout = np.ones_like(out)
    A = cache.A
    dv = np.swapaxes(A, -1, -2) @ dout
    dA = dout @ np.swapaxes(v, -1, -2)
    yield Step("Backward with dO = 1: dV = A^T dO, dA = dO V^T   (A.6)",
               [fmt("dV", dv[0, 0]), fmt("dA", dA[0, 0])])
    dE = softmax_backward(dA, SoftmaxCache(y=A, axis=-1))        # the library's (A.2)
    yield Step("dE = A * (dA - rowsum(dA * A)), the softmax backward; ln Gamma is a constant "
               "added to the scores, so it passes dE on unchanged   (A.7), (V.6)",
               [fmt("dE", dE[0, 0])])
    dq, dk = (dE @ k) * cache.scale, (np.swapaxes(dE, -1, -2) @ q) * cache.scale
    yield Step("dQ = dE K / sqrt(d), dK = dE^T Q / sqrt(d)   (A.8)",
               [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0]),
                difference("dQ, dK, dV written out vs masa_backward", flat(dq, dk, dv),
                           flat(*core_backward(dout, cache)))])
    yield from _equal_at_zero_queries(k, v, table, backward=True)


def _equal_at_zero_queries(k, v, table, backward: bool):
    """Full and decomposed MaSA are one operator when every score is equal (Q = 0): their
    outputs agree, and so do their gradients with respect to V."""
    zero = np.zeros_like(k)
    results = {}
    for form in ("masa", "masa_decomposed"):
        forward, core_backward = table[form]
        o, c = forward(zero, k, v)
        results[form] = core_backward(v, c)[2] if backward else o     # dO = V: not uniform
    what = "dV (for dO = V)" if backward else "O"
    yield Step("Check: with Q = 0 every score is equal, only the decay weighs, and the full "
               f"and decomposed forms are one operator: their {what} agree   (V.6), (V.7)",
               [fmt(f"{what.split()[0]}, full, Q = 0", results["masa"][0, 0]),
                difference(f"{what.split()[0]}, full vs decomposed, Q = 0", results["masa"],
                           results["masa_decomposed"])])


# --- MaSA decomposed (V.7) -----------------------------------------------------------------------

def _rows_of(a, n_y, n_x):
    """(1, 1, N, f) in raster order -> (n_y, n_x, f): the grid."""
    return a[0, 0].reshape(n_y, n_x, -1)


def _masa_decomposed(q, k, v, Gamma, out, cache, table):
    (n_y, n_x), rows, cols = cache.grid, cache.rows, cache.columns
    mid = np.swapaxes(cols.v, 2, 3)[0, 0]             # the row pass's output (n_y, n_x, dv)
    written = rows.A[0, 0] @ _rows_of(v, n_y, n_x)
    yield Step("Rows first: attention within every row of the grid with the 1-D decay "
               "Gamma^x, softmax(E_row + ln Gamma^x)   (V.7)",
               [fmt("Gamma^x", rows.Gamma[0, 0]),
                *(fmt(f"grid row {y}: weights", rows.A[0, 0, y]) for y in range(n_y)),
                fmt("row pass output, raster order", mid.reshape(n_y * n_x, -1)),
                difference("A_row V written out vs the library's", written, mid)])
    yield Step("Then columns: attention within every column with Gamma^y, on the row pass's "
               "output, with the same queries and keys   (V.7)",
               [fmt("Gamma^y", cols.Gamma[0, 0]),
                *(fmt(f"grid column {x}: weights", cols.A[0, 0, x]) for x in range(n_x)),
                fmt("O", out[0, 0])])
    Wt = _weights(cache)
    _, full_cache = table["masa"][0](q, k, v)
    yield Step("Check: the two passes are one N x N weight matrix. Output (y, x) reads token "
               "(y', x') through (y', x) only, with weight A^H_x[y, y'] A^W_y'[x, x']",
               [fmt("composed weights", Wt),
                difference("composed weights times V vs the output", Wt @ v[0, 0], out[0, 0]),
                fmt("full MaSA's weights (V.6), for comparison", full_cache.A[0, 0]),
                "not the same: the content weights are a product of two 1-D softmaxes"])
    yield from _equal_at_zero_queries(k, v, table, backward=False)


def _weights(cache) -> np.ndarray:
    """The decomposed form's N x N weights from the two passes' weights in the cache."""
    (n_y, n_x), Ar, Ac = cache.grid, cache.rows.A[0, 0], cache.columns.A[0, 0]
    # Ar: (n_y, n_x, n_x) within every row; Ac: (n_x, n_y, n_y) within every column
    Wt = np.zeros((n_y * n_x, n_y * n_x))
    for y in range(n_y):
        for x in range(n_x):
            for y2 in range(n_y):
                for x2 in range(n_x):
                    Wt[y * n_x + x, y2 * n_x + x2] = Ac[x, y, y2] * Ar[y2, x, x2]
    return Wt


def _masa_decomposed_backward(q, k, v, Gamma, out, cache, core_backward, table):
    (n_y, n_x), rows, cols = cache.grid, cache.rows, cache.columns
    dout = np.ones_like(out)
    doutc = np.swapaxes(dout.reshape(1, 1, n_y, n_x, -1), 2, 3)   # by column: (1, 1, n_x, n_y)
    dqc, dkc, dmidc = decayed_attention_backward(doutc, cols)
    dmid = np.swapaxes(dmidc, 2, 3)                              # (1, 1, n_y, n_x, dv)
    yield Step("Backward with dO = 1, the column pass first: d(row pass output) = A_col^T dO "
               "in every column; dQ, dK get the column softmax's share   (A.6)-(A.8)",
               [fmt("d(row pass output), raster order", dmid[0, 0].reshape(n_y * n_x, -1)),
                difference("A_col^T dO vs the library's",
                           np.swapaxes(cols.A, -1, -2) @ doutc, dmidc)])
    dqr, dkr, dvr = decayed_attention_backward(dmid, rows)
    yield Step("Then the row pass: dV = A_row^T d(row pass output) in every row; dQ, dK get "
               "the row softmax's share too   (A.6)-(A.8)",
               [fmt("dV, raster order", dvr[0, 0].reshape(n_y * n_x, -1)),
                difference("A_row^T dmid vs the library's",
                           np.swapaxes(rows.A, -1, -2) @ dmid, dvr)])
    dq = (dqr + np.swapaxes(dqc, 2, 3)).reshape(q.shape)
    dk = (dkr + np.swapaxes(dkc, 2, 3)).reshape(k.shape)
    dv = dvr.reshape(v.shape)
    lib = core_backward(dout, cache)
    yield Step("dQ and dK collect from both passes; dV is the composed weights' A^T dO",
               [fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0]),
                difference("dQ, dK, dV vs masa_decomposed_backward", flat(dq, dk, dv),
                           flat(*lib)),
                difference("A^T dO vs dV", _weights(cache).T @ dout[0, 0], dv[0, 0])])
    yield from _equal_at_zero_queries(k, v, table, backward=True)


# --- softmax-free 2-D retention (V.8)-(V.9) ------------------------------------------------------

def _scans(u, gamma, axis):
    """The forward and backward scans of (V.9) along ``axis`` of a 2-D grid, written out."""
    x = np.moveaxis(u, axis, 0)
    f, f_back = x.copy(), x.copy()
    for i in range(1, len(x)):
        f[i] = gamma * f[i - 1] + x[i]
    for i in reversed(range(len(x) - 1)):
        f_back[i] = gamma * f_back[i + 1] + x[i]
    return np.moveaxis(f, 0, axis), np.moveaxis(f_back, 0, axis)


def _retention_2d(q, k, v, Gamma, out, cache, table):
    n_y, n_x = cache.grid
    QK = q[0, 0] @ k[0, 0].T
    yield Step("Scores R = Q K^T * Gamma: no softmax, no normaliser   (V.8)",
               [fmt("Q K^T", QK), fmt("R", cache.R[0, 0]),
                difference("Q K^T * Gamma vs the library's R", QK * Gamma, cache.R[0, 0])])
    yield Step("O = R V   (V.8)", [fmt("O", out[0, 0])])
    scan_out, scan = retention_2d_scan(q, k, v, (n_y, n_x), cache.gamma)
    U = k[..., :, None] * v[..., None, :]                        # k_m^T v_m, (1, 1, N, d, dv)
    u = U[0, 0, :, 0, 0].reshape(n_y, n_x)
    yield Step("The scan form without the N x N scores: U_m = k_m^T v_m, one d x dv matrix per "
               "token; the state field S_n = sum_m Gamma[n, m] U_m is a separable filter. "
               "Entry (0, 0) of every U_m, on the grid:   (V.9)", [fmt("u = U[.., 0, 0]", u)])
    f, f_back = _scans(u, GAMMA, axis=1)
    along_rows = bidirectional_scan(U.reshape(1, 1, n_y, n_x, *U.shape[-2:]), cache.gamma, axis=3)
    yield Step("Along every row: forward scan f_x = gamma f_(x-1) + u_x, backward scan f<-_x = "
               "gamma f<-_(x+1) + u_x; u_x is in both, so the sum is f + f<- - u   (V.9)",
               [fmt("f", f), fmt("f<-", f_back), fmt("f + f<- - u", f + f_back - u),
                difference("f + f<- - u vs bidirectional_scan", f + f_back - u,
                           along_rows[0, 0, :, :, 0, 0])])
    r = f + f_back - u
    f, f_back = _scans(r, GAMMA, axis=0)
    S = scan.S[0, 0, :, 0, 0].reshape(n_y, n_x)
    yield Step("Then along every column, the same two scans of the row result r = f + f<- - u: "
               "four 1-D recurrences in all give S_n = sum_m Gamma[n, m] U_m   (V.9)",
               [fmt("f", f), fmt("f<-", f_back), fmt("S[.., 0, 0] = f + f<- - r", f + f_back - r),
                difference("four scans vs retention_2d_scan's S", f + f_back - r, S),
                difference("retention_2d_scan's S vs Gamma U", scan.S[0, 0].reshape(n_y * n_x, -1),
                           Gamma @ U[0, 0].reshape(n_y * n_x, -1))])
    yield Step("o_n = q_n S_n: O without ever forming the N x N scores; O(N d dv) per head",
               [fmt("O from the scans", scan_out[0, 0])])
    yield Step("Check: the parallel form (V.8) against the four scans (V.9)",
               [difference("parallel vs scans", out, scan_out)])


def _retention_2d_backward(q, k, v, Gamma, out, cache, core_backward, table):
    n_y, n_x = cache.grid
    dout = np.ones_like(out)
    dv = np.swapaxes(cache.R, -1, -2) @ dout
    dA = (dout @ np.swapaxes(v, -1, -2)) * Gamma
    dq, dk = dA @ k, np.swapaxes(dA, -1, -2) @ q
    yield Step("Backward with dO = 1, parallel form: dV = R^T dO, dA = (dO V^T) * Gamma, "
               "dQ = dA K, dK = dA^T Q   (V.8)",
               [fmt("dA", dA[0, 0]), fmt("dQ", dq[0, 0]), fmt("dK", dk[0, 0]),
                fmt("dV", dv[0, 0]),
                difference("written out vs the library's", flat(dq, dk, dv),
                           flat(*core_backward(dout, cache)))])
    _, scan = retention_2d_scan(q, k, v, (n_y, n_x), cache.gamma)
    dq_scan = np.einsum("bhne,bhnde->bhnd", dout, scan.S)
    dS = q[..., :, None] * dout[..., None, :]                   # q_n^T dO_n
    dU = bidirectional_scan(bidirectional_scan(dS.reshape(1, 1, n_y, n_x, *dS.shape[-2:]),
                                               cache.gamma, axis=2), cache.gamma, axis=3)
    dU = dU.reshape(dS.shape)
    dk_scan = np.einsum("bhnde,bhne->bhnd", dU, v)
    dv_scan = np.einsum("bhnd,bhnde->bhne", k, dU)
    yield Step("Scan form: dq_n = dO_n S_n^T; the field's gradient q_n^T dO_n goes back "
               "through the same four scans (the filter is symmetric) to dU_n; dk_n = dU_n "
               "v_n^T, dv_n = k_n dU_n   (V.9)",
               [fmt("dU[.., 0, 0] on the grid", dU[0, 0, :, 0, 0].reshape(n_y, n_x)),
                difference("written out vs the scan backward",
                           flat(dq_scan, dk_scan, dv_scan),
                           flat(*retention_2d_scan_backward(dout, scan)))])
    yield Step("Check: the scan backward against the parallel backward",
               [difference("dQ, dK, dV, scans vs parallel", flat(dq_scan, dk_scan, dv_scan),
                           flat(dq, dk, dv))])


_FORWARD = {"masa": _masa, "masa_decomposed": _masa_decomposed, "retention_2d": _retention_2d}
_BACKWARD = {"masa": _masa_backward, "masa_decomposed": _masa_decomposed_backward,
             "retention_2d": _retention_2d_backward}
