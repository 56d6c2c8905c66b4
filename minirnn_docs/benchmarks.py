"""Build-time helpers of the benchmarks page: read the committed JSON, show every number with
its spread, check the targets, and check that three consecutive runs agree.

Nothing here times anything: the page shows the committed runs of ``python -m minirnn bench``
(``benchmarks/results/*.json``), so it builds without torch and never drifts from them.
"""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"

TABLES = {"decode": ("per token", "against the projections", "short against long context",
                     "RetNet calls after attention"),
          "training": ("retention and attention", "growth against the length"),
          "delta": ("delta rule",),
          "torch": ("minirnn / PyTorch eager",)}


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def rows(name: str, table: str | None = None, run: int = 0) -> list[dict]:
    """The rows of one table of one run (the first table of the benchmark by default)."""
    return load(name)["runs"][run][table or TABLES[name][0]]


def cell(s: dict, digits: int = 2) -> str:
    """A spread as ``median [q1, q3]``."""
    return f"{s['median']:.{digits}f} [{s['q1']:.{digits}f}, {s['q3']:.{digits}f}]"


def ratio_cell(s: dict, digits: int = 2) -> str:
    """A ratio with its spread, and a warning when the spread contains 1.0 (no winner)."""
    text = cell(s, digits)
    return text + " (straddles 1: no winner)" if s["q1"] <= 1.0 <= s["q3"] else text


def source(name: str) -> str:
    """One line: when, where and how a benchmark was run."""
    data = load(name)
    env = data["environment"]
    threads = data.get("threads")
    torch = f", PyTorch {env['torch']}" if name == "torch" and env.get("torch") else ""
    runs = len(data["runs"])
    thread_text = (f"{threads} thread{'s' if threads != 1 else ''} on both sides" if threads
                   else "threads as listed per row")
    note = f" **{data['note']}**" if data.get("note") else ""
    return (f"{runs} consecutive run{'s' if runs > 1 else ''} of {data['date']} on "
            f"{env.get('cpu', env['machine'])}: Python {env['python']}, NumPy {env['numpy']}"
            f"{torch}; BLAS {env['blas']}; {thread_text}.{note}")


# --- targets ------------------------------------------------------------------------------------

def _verdict(s: dict, goal: float, at_most: bool) -> str:
    """yes when the whole interquartile range meets the goal, 'median only' when the median
    does but the spread crosses the goal, **no** otherwise."""
    def ok(x):
        return x <= goal if at_most else x >= goal
    if ok(s["q1"]) and ok(s["q3"]):
        return "yes"
    return "median only (spread crosses the goal)" if ok(s["median"]) else "**no**"


def _point(x: float) -> dict:
    return {"median": x, "q1": x, "q3": x}


def _eighth(T: int, lengths: set) -> int:
    """The length an eighth of ``T`` if it was measured, else the shortest."""
    return T // 8 if T // 8 in lengths else min(lengths)


def targets() -> list[tuple[str, str, dict, str]]:
    """(target, goal, measured spread, verdict) for every target of the project, on run 1."""
    out = []

    def add(name, goal, s, at_most):
        out.append((name, f"{'<=' if at_most else '>='} {goal}", s, _verdict(s, goal, at_most)))

    dec = rows("decode")
    hi = max(r["context"] for r in dec)
    for r in rows("decode", "short against long context"):
        if r["step"] == "retnet":
            add(f"RetNet decode time flat, batch {r['batch']}: t({r['long']}) / t({r['short']})",
                1.3, r["ratio"], True)
    for b in sorted({r["batch"] for r in dec}):
        at = {r["context"]: r for r in dec if r["batch"] == b}
        add(f"RetNet vs KV-cache attention at {hi} tokens, batch {b}", 10, at[hi]["speedup"],
            False)
    first = next(r for r in dec if r["context"] == hi and r["batch"] == 1)
    add(f"RetNet state / KV cache at {hi} tokens", 0.3,
        _point(first["state_bytes"] / first["kv_cache_bytes"]), True)
    for r in rows("decode", "against the projections"):
        if r["batch"] == 1:
            add(f"{r['step']} step / its projections, batch 1", 1.5, r["ratio"], True)
    ms = {(r["T"], r["method"]): r["ms"] for r in rows("training")}
    for r in rows("training", "growth against the length"):
        m = r["method"]
        add(f"retention {m}: t({r['long']}) / t({r['short']}), interleaved (linear: "
            f"{r['linear']})", round(1.2 * r["linear"], 1), r["ratio"], True)
        T_par = max(T for T, method in ms if method == "parallel")
        add(f"retention {m} vs parallel at T = {T_par} (medians)", 5,
            _point(ms[(T_par, "parallel")]["median"] / ms[(T_par, m)]["median"]), False)
    de = rows("delta")
    chunk = next(r["method"] for r in de if r["method"].startswith("chunkwise"))
    dms = {(r["T"], r["method"]): r for r in de}
    D_hi = max(r["T"] for r in de)
    add(f"delta rule {chunk} vs recurrent at T = {D_hi}", 5,
        dms[(D_hi, chunk)]["recurrent_over_this"], False)
    D_lo = _eighth(D_hi, {r["T"] for r in de})
    add(f"delta rule {chunk}: t({D_hi}) / t({D_lo}) (medians; linear: {D_hi // D_lo})",
        round(1.2 * D_hi / D_lo, 1),
        _point(dms[(D_hi, chunk)]["ms"]["median"] / dms[(D_lo, chunk)]["ms"]["median"]), True)
    for r in rows("torch"):
        if " LM " in r["layer"]:
            goal = 0.9 if r["size"] == "tutorial" else 1.2
        else:
            goal = 1.5 if r["layer"] in ("layer norm", "softmax cross-entropy") else 1.25
        add(f"{r['layer']}, {r['size']}, {r['threads']} thread{'s' * (r['threads'] > 1)}: "
            "minirnn / PyTorch", goal, r["ratio"], True)
        if "workers_ratio" in r:
            add(f"{r['layer']}, {r['size']}, {r['threads']} threads as {r['threads']} "
                "workers: minirnn / PyTorch", goal, r["workers_ratio"], True)
    return out


def _shown(s: dict) -> str:
    """A spread, or a single number when it is one (a ratio of medians)."""
    return f"{s['median']:.2f}" if s["q1"] == s["q3"] else cell(s)


def targets_table() -> str:
    """Markdown table of the targets: goal, measured median [interquartile range], met."""
    ts = targets()
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {name} | {goal} | {_shown(s)} | {verdict} |"
              for name, goal, s, verdict in ts]
    met = sum(v == "yes" for *_, v in ts)
    partly = sum(v.startswith("median") for *_, v in ts)
    lines += ["", f"{met} of {len(ts)} targets met over the whole spread, {partly} more on the "
              f"median only, {len(ts) - met - partly} missed."]
    return "\n".join(lines)


# --- do three runs agree? -----------------------------------------------------------------------

def _headline(name: str, run: int) -> dict[str, dict]:
    """The ratios (and times) of one run that the agreement check compares."""
    out = {}
    if name == "decode":
        for r in rows(name, run=run):
            out[f"RetNet speed-up, {r['context']} tokens, batch {r['batch']}"] = r["speedup"]
        for r in rows(name, "against the projections", run):
            out[f"{r['step']} step / projections, batch {r['batch']}"] = r["ratio"]
        for r in rows(name, "short against long context", run):
            out[f"{r['step']} step, {r['long']} / {r['short']} tokens, batch {r['batch']}"] = \
                r["ratio"]
    elif name == "delta":
        for r in rows(name, run=run):
            if r["method"] != "recurrent":
                out[f"recurrent / {r['method']}, T = {r['T']}"] = r["recurrent_over_this"]
    elif name == "training":
        for r in rows(name, run=run):
            out[f"{r['method']}, T = {r['T']} (ms)"] = r["ms"]
        for r in rows(name, "growth against the length", run):
            out[f"{r['method']}, t({r['long']}) / t({r['short']})"] = r["ratio"]
    else:
        for r in rows(name, run=run):
            out[f"{r['layer']}, {r['size']}, {r['threads']} thr."] = r["ratio"]
            if "workers_ratio" in r:
                out[f"{r['layer']}, {r['size']}, {r['threads']} workers"] = r["workers_ratio"]
    return out


def agreement(name: str) -> tuple[list[tuple[str, list[dict], bool]], int]:
    """For every headline number: its spread in each run, and whether the runs agree (their
    interquartile ranges share a common range: the largest q1 is at most the smallest q3)."""
    runs = [_headline(name, i) for i in range(len(load(name)["runs"]))]
    out = []
    for key in runs[0]:
        spreads = [r[key] for r in runs if key in r]
        agree = max(s["q1"] for s in spreads) <= min(s["q3"] for s in spreads)
        out.append((key, spreads, agree))
    return out, len(runs)


def agreement_table(name: str, digits: int = 2) -> str:
    """Markdown: the median [q1, q3] of every headline number in each run, and whether the runs
    agree within their spreads."""
    table, n = agreement(name)
    head = " | ".join(f"run {i + 1}" for i in range(n))
    lines = [f"| {name} | {head} | agree |", "|---|" + "---|" * n + "---|"]
    lines += [f"| {key} | " + " | ".join(cell(s, digits) for s in spreads)
              + f" | {'yes' if ok else '**no**'} |" for key, spreads, ok in table]
    agreeing = sum(ok for *_, ok in table)
    lines += ["", f"{agreeing} of {len(table)} agree across the {n} runs."]
    return "\n".join(lines)
