"""Build-time helpers of the benchmarks page: read the committed JSON, check the targets."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def targets_table() -> str:
    """Markdown table: each target of the project, the measured value and whether it is met."""
    dec = load("decode")["rows"]
    tr = load("training")["rows"]
    torch = load("torch")["rows"]

    def dec_row(context, batch):
        return next(r for r in dec if r["context"] == context and r["batch"] == batch)

    def tr_s(T, method):
        return next(r["seconds"] for r in tr if r["T"] == T and r["method"] == method)

    lo, hi = min(r["context"] for r in dec), max(r["context"] for r in dec)
    rows = []
    for b in sorted({r["batch"] for r in dec}):
        flat = dec_row(hi, b)["retnet_ms"] / dec_row(lo, b)["retnet_ms"]
        rows.append((f"RetNet decode time flat, batch {b}: t({hi}) / t({lo})", "<= 1.3",
                     f"{flat:.2f}", flat <= 1.3))
        speed = dec_row(hi, b)["speedup"]
        rows.append((f"RetNet vs KV-cache attention at {hi}, batch {b}", ">= 8.4x",
                     f"{speed:.1f}x", speed >= 8.4))
    mem = dec_row(hi, 1)["state_bytes"] / dec_row(hi, 1)["kv_cache_bytes"]
    rows.append((f"state memory / KV-cache memory at {hi}", "<= 30%", f"{mem:.2%}", mem <= 0.3))
    for C in sorted({int(r["method"].split()[1]) for r in tr if r["method"].startswith("chunk")}):
        growth = tr_s(8192, f"chunkwise {C}") / tr_s(1024, f"chunkwise {C}")
        rows.append((f"chunkwise {C}: t(8192) / t(1024)", "<= 9.5", f"{growth:.1f}",
                     growth <= 9.5))
        vs = tr_s(8192, "parallel") / tr_s(8192, f"chunkwise {C}")
        rows.append((f"chunkwise {C} vs parallel at T = 8192", ">= 5x", f"{vs:.0f}x", vs >= 5))
    for r in torch:
        limit = 1.0 if " LM " in r["layer"] else 1.25
        rows.append((f"{r['layer']}: minirnn / PyTorch", f"<= {limit}", f"{r['ratio']:.2f}",
                     r["ratio"] <= limit))
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else '**no**'} |" for a, b, c, ok in rows]
    missed = [a for a, _, _, ok in rows if not ok]
    lines += ["", f"{len(rows) - len(missed)} of {len(rows)} targets met."]
    if missed:
        lines.append("Missed, and explained with numbers in the sections below: "
                     + "; ".join(missed) + ".")
    return "\n".join(lines)
