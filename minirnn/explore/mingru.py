"""minGRU: the GRU with gates that read only the input, a scan with two forms.

Step by step: z and the candidate from x alone (MIN.4), the log-gates g = log(1 - z), the
segment decay Gamma[t, s] = exp(b_t - b_s) of one channel (MIN.2); the check runs the other
form. With ``--backward``: delta = Gamma^T dh and the gate gradient (MIN.3).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..gated import segment_decay
from ..minrnn import init_mingru_params, mingru_backward, mingru_forward
from .printing import Step, difference, fmt, tiny

FORMS = ("parallel", "sequential")


def walk(T: int, d: int, seed: int, backward: bool, form: str = "parallel",
         chunk_size: int = 2) -> Iterator[Step]:
    """minGRU in form ``form`` against the other form."""
    rng = np.random.default_rng(seed)
    x, h0 = tiny(rng, 1, T, d), tiny(rng, 1, d)
    params = {k: np.round(v, 2) for k, v in init_mingru_params(d, d, seed=seed).items()}
    h, cache = mingru_forward(x, h0, params, form)
    z, log_decay = cache.gates["z"], cache.scan.log_decay
    yield Step("Gates from x alone: z = sigmoid(x Wz + bz), h_bar = x Wh + bh, "
               "g = log(1 - z)   (MIN.4)",
               [fmt("z (write)", z[0]), fmt("h_bar", cache.h_bar[0]), fmt("g", log_decay[0])])
    yield Step("Channel 0: Gamma[t, s] = exp(b_t - b_s), the segment decay of gated retention "
               "(GR.1); h = Gamma (z h_bar) + e^b h0   (MIN.2)",
               [fmt("Gamma (channel 0)", segment_decay(log_decay[0, :, 0])), fmt("h", h[0])])
    other = "sequential" if form == "parallel" else "parallel"
    h2, cache2 = mingru_forward(x, h0, params, other)
    yield Step(f"Check: the {form} form against the {other} form",
               [difference(f"{form} vs {other}", h, h2)])
    if backward:
        dh = np.ones_like(h)
        _, dh0, grads = mingru_backward(dh, cache)
        _, _, grads2 = mingru_backward(dh, cache2)
        yield Step("Backward: delta = Gamma^T dh, dg_t = delta_t alpha_t h_{t-1}   (MIN.3)",
                   [fmt("dWz", grads["Wz"]), fmt("dh0", dh0[0]),
                    difference("dWz of both forms", grads["Wz"], grads2["Wz"])])
