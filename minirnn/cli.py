"""Command-line interface: ``python -m minirnn COMMAND``.

- ``tour``: check every mechanism by the numbers, train the three models, time decoding.
- ``train``: train one model on one task, with a progress bar and checkpoints.
- ``generate``: answer a task's question (or continue a prompt) with a trained checkpoint.
- ``plot``: draw learning curves from the metrics logs ``train`` writes.
- ``exercise list|start NAME`` and ``grade FILE``: classroom exercises, graded offline.
- ``step MECHANISM``: follow a tiny example number by number.
- ``bench decode|training|delta|torch``: measure the cost of each way to remember.

Errors in what the user asked for end with one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .registry import MODELS
from .tasks import TASKS


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show every option's default, except where the help already says it (or there is none)."""

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


# train's options. On --resume the checkpoint's values hold; one given that contradicts the
# checkpoint is an error, --steps sets the new total. So they have no argparse default: the
# defaults of a new run are in DEFAULTS.
TRAIN_OPTIONS = {
    "--model": dict(choices=list(MODELS),
                    help="lstm, gru, mingru: the RNN with another cell (gru: PyTorch's "
                         "reset-after; mingru: gates from the input only); "
                         "gated: RetNet with gated retention; delta, gated-delta: DeltaNet and "
                         "gated DeltaNet (the delta rule); vit, rmt, vir: image classifiers "
                         "for the image tasks (default: retnet, vit for an image task)"),
    "--task": dict(choices=list(TASKS),
                   help="recall is multi-query associative recall (MQAR); overwrite is recall "
                        "with re-assigned keys (answer the latest value); shapes and relation "
                        "are image tasks (default: recall)"),
    "--steps": dict(type=_positive, help="total training steps (default: 500; with --resume "
                                         "a new total, longer or shorter)"),
    "--batch-size": dict(type=_positive, help="sequences per step (default: 32)"),
    "--lr": dict(type=_positive_float, help="peak learning rate of AdamW (default: 0.003)"),
    "--d-model": dict(type=_positive, help="model width D (default: 32)"),
    "--layers": dict(type=_positive, help="blocks, not for rnn, lstm, gru, mingru (default: 2)"),
    "--heads": dict(type=_positive, help="heads, not for rnn, lstm, gru, mingru (default: 2)"),
    "--form": dict(choices=["parallel", "recurrent", "chunkwise"],
                   help="how retnet, gated, delta and gated-delta compute their memory in "
                        "training (default: chunkwise); mingru scans in parallel with "
                        "parallel, else one step at a time"),
    "--chunk-size": dict(type=_positive, help="chunk size of the chunkwise form (default: 16)"),
    "--eval-every": dict(type=_positive, help="steps between evaluations, checkpoints and "
                                              "metrics lines (default: 100)"),
    "--patience": dict(type=_positive, help="stop after this many evaluations without "
                                            "improvement (default: never)"),
    "--seed": dict(type=int, help="seed of the parameters and the data (default: 0)"),
    "--workers": dict(type=_positive, help="threads per step, each computing a shard of the "
                                           "batch: faster for large models, slower for the "
                                           "tiny default ones (default: 1)"),
}
DEFAULTS = {"model": "retnet", "task": "recall", "steps": 500, "batch_size": 32, "lr": 3e-3,
            "d_model": 32, "layers": 2, "heads": 2, "form": "chunkwise", "chunk_size": 16,
            "eval_every": 100, "patience": None, "seed": 0, "workers": 1}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minirnn",
        description="minirnn: RNNs, attention and retention by hand in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"minirnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tour = sub.add_parser("tour",
                          formatter_class=Formatter,
                          help="check every mechanism by the numbers and print tables",
                          description="Gradient-check every mechanism, compare the forms of "
                                      "retention, train the three models, time decoding.")
    tour.add_argument("--seed", type=int, default=0, help="seed of the random examples")
    tour.add_argument("--steps", type=_positive, default=500,
                      help="training steps per model in part (c)")

    train = sub.add_parser("train", help="train a model on a synthetic task",
                           formatter_class=Formatter,
                           description="Train one tiny language model; writes a checkpoint and "
                                       "a metrics log next to it. Ctrl-C (or SIGTERM) stops "
                                       "after the current step and saves the exact state.")
    for flag, kwargs in TRAIN_OPTIONS.items():
        train.add_argument(flag, **kwargs)
    train.add_argument("--checkpoint", type=Path, default=Path("minirnn-checkpoint.npz"),
                       help="where to save; the metrics log is CHECKPOINT.metrics.jsonl")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint (--steps sets a new total)")
    bar = train.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show the progress bar (default: only when output is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show the progress bar")

    gen = sub.add_parser("generate", help="continue a prompt with a trained checkpoint",
                         formatter_class=Formatter,
                         description="Sample a continuation from a checkpoint. Without "
                                     "--prompt, the task asks a well-formed question and the "
                                     "expected answer is printed beside the model's.")
    gen.add_argument("--checkpoint", type=Path, required=True)
    gen.add_argument("--prompt", default=None,
                     help="text in the task's notation. copy: symbols, then the separator, "
                          "e.g. '1 2 3 4 5 6 7 0 |' (the model should copy the symbols); "
                          "recall: key-value pairs, then one query key, e.g. 'k3 v5 k1 v2 k3' "
                          "(the model should answer v5); grammar: the start of a sentence, "
                          "e.g. 'the cat '. Default: a random well-formed question of the task")
    gen.add_argument("--tokens", type=_positive, default=None,
                     help="tokens to generate (default: the answer's length for copy and "
                          "recall, 40 for grammar)")
    gen.add_argument("--temperature", type=float, default=0.0,
                     help="0 is greedy (the most likely token); larger values sample")
    gen.add_argument("--top-k", type=_positive, default=None,
                     help="sample only among the k most likely tokens (default: all)")
    gen.add_argument("--seed", type=int, default=0, help="seed of the question and sampling")

    pred = sub.add_parser("predict", help="classify a drawn image with a trained classifier",
                          formatter_class=Formatter,
                          description="Draw an image of the checkpoint's task (shapes or "
                                      "relation), print the class probabilities beside the "
                                      "true class, and optionally save the image with its "
                                      "saliency map (the gradient of the predicted class's "
                                      "score with respect to every pixel).")
    pred.add_argument("--checkpoint", type=Path, required=True)
    pred.add_argument("--seed", type=int, default=0, help="seed of the drawn image")
    pred.add_argument("--save", type=Path, default=None,
                      help="write the image and its saliency map side by side to this PNG")

    plot = sub.add_parser("plot", help="draw learning curves from training metrics logs",
                          formatter_class=Formatter,
                          description="Plot eval loss and accuracy against the step for one "
                                      "or more runs (the .metrics.jsonl files `train` writes, "
                                      "or their checkpoints). Needs matplotlib.")
    plot.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    plot.add_argument("--out", type=Path, default=Path("learning-curves.png"),
                      help="image to write")

    exercise = sub.add_parser("exercise",
                              formatter_class=Formatter, help="list or start classroom exercises",
                              description="Classroom exercises graded offline.")
    ex_sub = exercise.add_subparsers(dest="action", metavar="ACTION")
    ex_sub.required = True
    ex_sub.add_parser("list", help="show the exercises")
    start = ex_sub.add_parser("start", help="write the stub file of an exercise",
                              formatter_class=Formatter)
    start.add_argument("name")
    start.add_argument("--dir", type=Path, default=Path("."),
                       help="folder, created if missing (default: here)")

    from .explore import FORMS, MECHANISMS  # found in the package minirnn/explore

    step = sub.add_parser("step",
                          formatter_class=Formatter, help="follow a tiny example number by number",
                          description="Run a mechanism on a tiny example and show every "
                                      "intermediate array, step by step.")
    step.add_argument("mechanism", choices=MECHANISMS,
                      help="what to walk: one module of minirnn/explore each (gated: gated "
                           "retention; msr: the RetNet layer; vision: patches on a grid)")
    step.add_argument("--form", choices=list(dict.fromkeys(f for fs in FORMS.values()
                                                           for f in fs)), default=None,
                      help="the form to show (default: the mechanism's first); "
                           + "; ".join(f"{m}: {', '.join(fs)}" for m, fs in FORMS.items()))
    step.add_argument("--chunk-size", type=_positive, default=2)
    step.add_argument("--T", type=_positive, default=4,
                      help="sequence length; vision: patch tokens (default 4)")
    step.add_argument("--d", type=_positive, default=2, help="width (default 2)")
    step.add_argument("--seed", type=int, default=0)
    step.add_argument("--backward", action="store_true", help="step through the backward too")
    step.add_argument("--no-pause", action="store_true", help="print everything at once")

    bench = sub.add_parser("bench",
                           formatter_class=Formatter,
                           help="time decoding and training of the mechanisms",
                           description="Benchmarks as ratios within one run; writes JSON.")
    bench.add_argument("which", choices=["decode", "training", "delta", "torch"])
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    bench.add_argument("--runs", type=_positive, default=1,
                       help="consecutive runs of the whole benchmark (3: do the medians agree?)")
    bench.add_argument("--threads", type=_positive, default=None,
                       help="threads of NumPy's BLAS (threadpoolctl) and torch; without it, torch "
                            "runs 1 and then 2")
    bench.add_argument("--out", type=Path, default=None, help="JSON file to write")

    grade = sub.add_parser("grade",
                           formatter_class=Formatter,
                           help="grade exercise files (one, or a whole class)",
                           description="Run the checks of an exercise on each file, every "
                                       "file in its own process with a time limit.")
    grade.add_argument("files", type=Path, nargs="+", metavar="FILE",
                       help="exercise files (a shell glob of a class's submissions works)")
    grade.add_argument("--csv", type=Path, default=None,
                       help="write one row per file: student, file, exercise, score, max_score, "
                            "first_failing_check, likely_mistake, mistake_ids, location, "
                            "wrong_outputs")
    grade.add_argument("--report", type=Path, default=None, metavar="FILE",
                       help="write a class report (score distribution and most common "
                            "mistakes per exercise): HTML for .html, else Markdown")
    grade.add_argument("--memory", type=int, default=1024, metavar="MB",
                       help="memory a submission may allocate (default: 1024)")
    grade.add_argument("--file-mb", type=int, default=16, metavar="MB",
                       help="largest file a submission may write (default: 16)")
    grade.add_argument("--json", action="store_true",
                       help="print the reports as JSON (for tools) instead of text")
    grade.add_argument("--timeout", type=float, default=60.0,
                       help="seconds per file before it is stopped (default: 60)")
    return parser


def _exercise(args) -> int:
    from .exercises import exercise_list, start_exercise
    from .tour import table

    if args.action == "list":
        print(table(["exercise", "difficulty", "goal"], [list(r) for r in exercise_list()]))
        print("\nStart one with: python -m minirnn exercise start NAME")
        return 0
    path = start_exercise(args.name, args.dir)
    print(f"wrote {path}; implement the TODO parts, then run: python -m minirnn grade {path}")
    return 0


def _grade(args) -> int:
    import json

    from .exercises import grade_files, write_csv
    from .tour import table

    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"no such file: {', '.join(missing)}")
    reports = grade_files(args.files, timeout=args.timeout, memory=args.memory,
                          file_mb=args.file_mb)
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
    else:
        print("\n\n".join(r.text() for r in reports))
        if len(reports) > 1:
            print(f"\n{len(reports)} files:\n" + table(
                ["student", "exercise", "score", "first failing check", "likely mistake"],
                [[r.student, r.exercise, f"{r.score}/{r.max_score}", r.first_failing or "-",
                  " ".join(r.mistake_ids) or "-"] for r in reports]))
    if args.csv:
        write_csv(reports, args.csv)
        if not args.json:
            print(f"wrote {args.csv}")
    if args.report:
        from .exercises.classreport import write_class_report

        write_class_report(reports, args.report)
        if not args.json:
            print(f"wrote {args.report}")
    return 0 if all(r.passed for r in reports) else 1


def _step(args) -> int:
    from .explore import run_explorer

    run_explorer(args.mechanism, args.form, args.chunk_size, args.T, args.d, args.seed,
                 args.backward, pause=False if args.no_pause else None)
    return 0


def _bench(args) -> int:
    from functools import partial

    from .bench.timing import BENCH_EXTRA, have_threadpoolctl

    if args.which == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            print(f"minirnn bench: error: torch is not installed: {BENCH_EXTRA} for the "
                  "comparison with PyTorch", file=sys.stderr)
            return 1                                # asked for, and not run: a failure
    if not have_threadpoolctl():
        print(f"threadpoolctl is not installed ({BENCH_EXTRA}): BLAS threads are left as they "
              "are and the BLAS kernel is not named")
    from . import bench
    from .tour import table

    tables = _BENCH_TABLES[args.which]
    if args.which == "torch" and args.threads:              # one thread count on both sides
        tables = [(name, partial(make, thread_counts=(args.threads,)), cols)
                  for name, make, cols in tables]
    runs = bench.repeat_runs(lambda: {name: make(args.quick) for name, make, _ in tables},
                             args.runs, args.threads)
    for i, run in enumerate(runs):
        for name, _, cols in tables:
            print(f"\n{args.which}, {name}" + (f", run {i + 1}" if len(runs) > 1 else ""))
            print(table(cols, [[_bench_cell(r.get(c)) for c in cols] for r in run[name]]))
    if args.out:
        bench.write_json(args.out, args.which, runs, args.threads)
        print(f"wrote {args.out}")
    return 0


def _bench_cell(value) -> str:
    """One cell of a bench table: a spread as ``median [q1, q3]``, "-" where a row has none."""
    from .bench.timing import fmt

    if value is None:
        return "-"
    return fmt(value) if isinstance(value, dict) else \
        f"{value:.3g}" if isinstance(value, float) else str(value)


def _bench_decode(quick):
    from . import bench

    sizes = dict(contexts=(16, 64), D=32, n_heads=2, rounds=3) if quick else {}
    return [r for b in (1, 8) for r in bench.decode_benchmark(batch=b, **sizes)]


def _bench_floors(quick):
    from . import bench

    sizes = dict(context=64, D=32, n_heads=2, rounds=3) if quick else {}
    return [r for b in (1, 8) for r in bench.decode_floor_benchmark(batch=b, **sizes)]


def _bench_flat(quick):
    from . import bench

    sizes = dict(short=16, long=64, D=32, n_heads=2, rounds=3) if quick else {}
    return [r for b in (1, 8) for r in bench.decode_flat_benchmark(batch=b, **sizes)]


def _bench_recovery(quick):
    from . import bench

    sizes = dict(context=64, D=32, n_heads=2, rounds=3) if quick else {}
    return bench.decode_recovery_benchmark(**sizes)


def _bench_growth(quick):
    from . import bench

    return bench.training_growth_benchmark(**(dict(short=64, long=128, d=8, chunks=(16,),
                                                   rounds=3) if quick else {}))


def _bench_training(quick):
    from . import bench

    return bench.training_benchmark(**(dict(lengths=(64, 128), d=8, chunks=(16,)) if quick
                                       else {}))


def _bench_delta(quick):
    from . import bench

    return bench.delta_training_benchmark(**(dict(lengths=(32, 64), d=8, chunk=16) if quick
                                             else {}))


def _bench_torch(quick, thread_counts=(1, 2)):
    from .bench.versus_torch import torch_benchmark

    return torch_benchmark(thread_counts, quick=quick)


# which -> [(table name, function of quick, columns to print)]
_BENCH_TABLES = {
    "decode": [("per token", _bench_decode,
                ["context", "batch", "attention_ms", "retnet_ms", "delta_ms", "speedup",
                 "delta_speedup", "kv_cache_bytes", "state_bytes"]),
               ("against the projections", _bench_floors,
                ["step", "batch", "step_ms", "projections_ms", "ratio"]),
               ("short against long context", _bench_flat,
                ["step", "batch", "short", "long", "short_ms", "long_ms", "ratio"]),
               ("RetNet calls after attention", _bench_recovery,
                ["call", "context", "batch", "ms"])],
    "training": [("retention and attention", _bench_training,
                  ["T", "method", "ms", "peak_bytes"]),
                 ("growth against the length", _bench_growth,
                  ["method", "short", "long", "short_ms", "long_ms", "ratio", "linear"])],
    "delta": [("delta rule", _bench_delta,
               ["T", "method", "ms", "peak_bytes", "recurrent_over_this"])],
    "torch": [("minirnn / PyTorch eager", _bench_torch,
               ["threads", "size", "layer", "minirnn_ms", "torch_ms", "ratio", "workers_ms",
                "workers_ratio"])],
}


IMAGE_MODELS, IMAGE_TASKS = ("vit", "rmt", "vir"), ("shapes", "relation")


def _model_config(args, task):
    from .classifiers import RMTConfig, ViRConfig, ViTConfig
    from .models import (
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

    image_task, image_model = args.task in IMAGE_TASKS, args.model in IMAGE_MODELS
    if image_task != image_model:
        raise ValueError(f"--model {args.model} does not fit --task {args.task}: the image "
                         f"tasks {IMAGE_TASKS} need an image model {IMAGE_MODELS}, and the "
                         f"sequence tasks a language model")
    D = args.d_model
    if image_model:
        if D % args.heads:
            raise ValueError(f"--heads {args.heads} must divide --d-model {D}")
        config = {"vit": ViTConfig, "rmt": RMTConfig, "vir": ViRConfig}[args.model]
        return config(task.n_classes, image_size=task.size, channels=1, patch_size=4,
                      d_model=D, n_heads=args.heads, n_layers=args.layers, d_ff=2 * D)
    vocab_size = task.vocab_size
    if args.model in ("rnn", "lstm", "gru"):
        config = {"rnn": RNNConfig, "lstm": LSTMConfig, "gru": GRUConfig}[args.model]
        return config(vocab_size, d_model=D, hidden=2 * D)
    if args.model == "mingru":
        form = "parallel" if args.form == "parallel" else "sequential"
        return MinGRUConfig(vocab_size, d_model=D, hidden=2 * D, form=form)
    if D % args.heads:
        raise ValueError(f"--heads {args.heads} must divide --d-model {D}")
    if args.model == "transformer":
        return TransformerConfig(vocab_size, D, args.heads, args.layers, 2 * D, max_len=512)
    if args.model in ("retnet", "gated") and (D // args.heads) % 2:
        raise ValueError(f"--d-model / --heads = {D // args.heads} must be even for "
                         f"{args.model}'s rotation")
    config = {"retnet": RetNetConfig, "gated": GatedConfig, "delta": DeltaNetConfig,
              "gated-delta": GatedDeltaNetConfig}[args.model]
    return config(vocab_size, D, args.heads, args.layers, dv=D // args.heads, d_ff=2 * D,
                  form=args.form, chunk_size=args.chunk_size)


def _train(args) -> int:
    from dataclasses import replace

    from .blocks import count_parameters
    from .registry import build_model
    from .tasks import make_task
    from .train import TrainConfig, TrainingInterrupted, load_checkpoint, train

    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        ckpt = load_checkpoint(args.checkpoint)
        _check_resume(args, ckpt, given)
        model, task, config, params = (build_model(ckpt.model_config), ckpt.task,
                                       ckpt.train_config, ckpt.params)
        if "steps" in given and given["steps"] != config.steps:
            how = "extending" if given["steps"] > config.steps else "shortening"
            print(f"{how} the run from {config.steps} to {given['steps']} steps in all")
            config = replace(config, steps=given["steps"])
        if "workers" in given and given["workers"] != config.workers:
            print(f"computing each step on {given['workers']} worker"
                  f"{'s' * (given['workers'] > 1)} instead of {config.workers}: the run "
                  f"continues equal to rounding, not bit for bit")
            config = replace(config, workers=given["workers"])
        print(f"resuming {ckpt.model_config.kind} on {task.name} at step {ckpt.step} of "
              f"{config.steps}" + (" (already there: nothing to train)"
                                   if ckpt.step >= config.steps else ""))
    else:
        ckpt = None
        if args.checkpoint.exists():
            raise ValueError(f"{args.checkpoint} exists; pass --resume to continue it or "
                             f"choose another --checkpoint")
        if given.get("task") in IMAGE_TASKS and "model" not in given:
            given["model"] = "vit"                       # an image task needs an image model
        args = argparse.Namespace(**{**vars(args), **DEFAULTS, **given})
        task = make_task(args.task)
        model = build_model(_model_config(args, task))
        params = model.init(args.seed)
        config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             eval_every=args.eval_every, patience=args.patience, seed=args.seed,
                             workers=args.workers)
        print(f"training {model.config.kind} ({count_parameters(params):,} parameters) "
              f"on {task.name}")
    progress = sys.stdout.isatty() if args.progress is None else args.progress
    metrics = args.checkpoint.with_name(args.checkpoint.name + ".metrics.jsonl")
    try:
        result = train(model, params, task, config, checkpoint=args.checkpoint, resume=ckpt,
                       progress=progress, log=print, metrics_file=metrics)
    except TrainingInterrupted as stop:
        print(f"{stop}; continue with: python -m minirnn train --resume --checkpoint "
              f"{args.checkpoint}", flush=True)
        return stop.exit_code
    unit = "pixels" if model.config.kind in IMAGE_MODELS else "tokens"
    print(f"done: {result.step} steps, {result.tokens_per_second:,.0f} {unit}/s"
          + (" (stopped early)" if result.stopped_early else "")
          + f"; checkpoint saved to {args.checkpoint}; metrics in {metrics}")
    return 0


def _check_resume(args, ckpt, given) -> None:
    """Options given with --resume must agree with the checkpoint (except --steps)."""
    config, train_config = ckpt.model_config, ckpt.train_config
    saved = {"model": config.kind, "task": ckpt.task.name, "d_model": config.d_model,
             "batch_size": train_config.batch_size, "lr": train_config.lr,
             "eval_every": train_config.eval_every, "patience": train_config.patience,
             "seed": train_config.seed}
    for name in ("n_layers", "n_heads", "form", "chunk_size"):
        if hasattr(config, name):
            saved[{"n_layers": "layers", "n_heads": "heads"}.get(name, name)] = \
                getattr(config, name)
    wrong = [f"--{k.replace('_', '-')} {v} (the checkpoint has {saved[k]})"
             for k, v in given.items() if k in saved and v != saved[k]]
    if wrong:
        raise ValueError(f"{args.checkpoint} does not match {'; '.join(wrong)}; drop the "
                         f"option to continue that run, or train a new one")


def _generate(args) -> int:
    import numpy as np

    from .registry import build_model
    from .train import generate, load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    model, task = build_model(ckpt.model_config), ckpt.task
    if ckpt.model_config.kind in IMAGE_MODELS:
        raise ValueError(f"{args.checkpoint} holds an image classifier: use python -m minirnn "
                         f"predict --checkpoint {args.checkpoint}")
    if args.prompt is None:
        prompt, expected = task.question(np.random.default_rng(args.seed))
    else:
        prompt = task.encode(args.prompt)
        if prompt.size == 0:
            raise ValueError("--prompt is empty")
        expected = task.answer(prompt)
    n = args.tokens or (len(expected) if expected is not None else 40)
    out = generate(model, ckpt.params, prompt, n, args.temperature, args.top_k, args.seed)
    answer = out[len(prompt):]
    print(f"prompt:    {task.decode(prompt)}")
    print(f"generated: {task.decode(answer)}")
    if expected is not None:
        right = len(answer) >= len(expected) and np.array_equal(answer[:len(expected)],
                                                                 expected)
        print(f"expected:  {task.decode(expected)}   ({'right' if right else 'wrong'})")
    return 0


def _predict(args) -> int:
    import numpy as np

    from .images import save_png
    from .registry import build_model
    from .train import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.model_config.kind not in IMAGE_MODELS:
        raise ValueError(f"{args.checkpoint} holds a language model: use python -m minirnn "
                         f"generate --checkpoint {args.checkpoint}")
    model, task = build_model(ckpt.model_config), ckpt.task
    images, labels = task.batch(np.random.default_rng(args.seed), 1)
    probabilities = model.predict(ckpt.params, images)[0]
    print(f"a {task.name} image (seed {args.seed}); true class: {task.classes[labels[0, 0]]}")
    for name, p in sorted(zip(task.classes, probabilities), key=lambda item: -item[1]):
        print(f"  {p:6.1%}  {name}")
    best = int(np.argmax(probabilities))
    print(f"predicted: {task.classes[best]} ({'right' if best == labels[0, 0] else 'wrong'})")
    if args.save is not None:
        saliency = np.abs(model.saliency(ckpt.params, images, best))[0, :, :, 0]
        save_png(args.save, images[0, :, :, 0], saliency)
        print(f"image and saliency map saved to {args.save}")
    return 0


def _plot(args) -> int:
    import json

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plot needs matplotlib: python -m pip install matplotlib") from None
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for run in args.runs:
        path = run if run.name.endswith(".jsonl") else run.with_name(run.name + ".metrics.jsonl")
        if not path.is_file():
            raise FileNotFoundError(f"no metrics log at {path} (train writes "
                                    f"CHECKPOINT.metrics.jsonl)")
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        steps = [r["step"] for r in rows]
        label = path.name.removesuffix(".metrics.jsonl")
        loss_ax.plot(steps, [r["eval_loss"] for r in rows], label=label)
        acc_ax.plot(steps, [r["accuracy"] for r in rows], label=label)
    loss_ax.set_xlabel("step"), loss_ax.set_ylabel("eval loss")
    acc_ax.set_xlabel("step"), acc_ax.set_ylabel("accuracy")
    acc_ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:                      # `python -m minirnn` alone: what can I run?
        parser.print_help()
        return 0
    if args.command == "tour":
        from .tour import run_tour

        return 0 if run_tour(seed=args.seed, steps=args.steps) else 1
    commands = {"train": _train, "generate": _generate, "predict": _predict,
                "exercise": _exercise, "grade": _grade, "step": _step, "bench": _bench,
                "plot": _plot}
    try:
        return commands[args.command](args)
    except (ValueError, TypeError, OSError, FloatingPointError) as err:
        print(f"minirnn {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
