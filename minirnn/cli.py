"""Command-line interface: ``python -m minirnn COMMAND``.

- ``tour``: check every mechanism by the numbers, train the three models, time decoding.
- ``train``: train one model on one task, with a progress bar and checkpoints.
- ``generate``: continue a prompt with a trained checkpoint.
- ``exercise list|start NAME`` and ``grade FILE``: classroom exercises, graded offline.
- ``step MECHANISM``: follow a tiny example number by number.
- ``bench decode|training``: measure the cost of each way to remember.

Errors in what the user asked for end with one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minirnn",
        description="minirnn: RNNs, attention and retention by hand in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"minirnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    tour = sub.add_parser("tour", help="check every mechanism by the numbers and print tables",
                          description="Gradient-check every mechanism, compare the forms of "
                                      "retention, train the three models, time decoding.")
    tour.add_argument("--seed", type=int, default=0, help="seed of the random examples (0)")
    tour.add_argument("--steps", type=_positive, default=500,
                      help="training steps per model in part (c) (500)")

    train = sub.add_parser("train", help="train a model on a synthetic task",
                           description="Train one tiny language model; writes a checkpoint.")
    train.add_argument("--model", choices=["rnn", "transformer", "retnet"], default="retnet")
    train.add_argument("--task", choices=["copy", "recall", "grammar"], default="recall")
    train.add_argument("--steps", type=_positive, default=500)
    train.add_argument("--batch-size", type=_positive, default=32)
    train.add_argument("--lr", type=_positive_float, default=3e-3)
    train.add_argument("--d-model", type=_positive, default=32)
    train.add_argument("--layers", type=_positive, default=2, help="blocks (not for rnn)")
    train.add_argument("--heads", type=_positive, default=2, help="heads (not for rnn)")
    train.add_argument("--form", choices=["parallel", "recurrent", "chunkwise"],
                       default="chunkwise", help="how RetNet computes retention in training")
    train.add_argument("--chunk-size", type=_positive, default=16)
    train.add_argument("--eval-every", type=_positive, default=100)
    train.add_argument("--patience", type=_positive, default=None,
                       help="stop after this many evaluations without improvement")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint", type=Path, default=Path("minirnn-checkpoint.npz"),
                       help="where to save (default minirnn-checkpoint.npz)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    gen = sub.add_parser("generate", help="continue a prompt with a trained checkpoint",
                         description="Sample a continuation from a checkpoint.")
    gen.add_argument("--checkpoint", type=Path, required=True)
    gen.add_argument("--prompt", default=None,
                     help="text in the task's notation (grammar: characters; recall: "
                          "'k3 v5 k1'; copy: '1 4 2 |'); default: an example of the task")
    gen.add_argument("--tokens", type=_positive, default=40, help="tokens to generate (40)")
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--top-k", type=_positive, default=None)
    gen.add_argument("--seed", type=int, default=0)
    exercise = sub.add_parser("exercise", help="list or start classroom exercises",
                              description="Classroom exercises graded offline.")
    ex_sub = exercise.add_subparsers(dest="action", metavar="ACTION")
    ex_sub.required = True
    ex_sub.add_parser("list", help="show the exercises")
    start = ex_sub.add_parser("start", help="write the stub file of an exercise")
    start.add_argument("name")
    start.add_argument("--dir", type=Path, default=Path("."),
                       help="folder, created if missing (default: here)")

    step = sub.add_parser("step", help="follow a tiny example number by number",
                          description="Run a mechanism on a tiny example and show every "
                                      "intermediate array, step by step.")
    step.add_argument("mechanism", choices=["rnn", "attention", "retention", "msr"])
    step.add_argument("--form", choices=["parallel", "recurrent", "chunkwise"],
                      default="recurrent", help="retention and msr only (default recurrent)")
    step.add_argument("--chunk-size", type=_positive, default=2)
    step.add_argument("--T", type=_positive, default=4, help="sequence length (default 4)")
    step.add_argument("--d", type=_positive, default=2, help="width (default 2)")
    step.add_argument("--seed", type=int, default=0)
    step.add_argument("--backward", action="store_true", help="step through the backward too")
    step.add_argument("--no-pause", action="store_true", help="print everything at once")

    bench = sub.add_parser("bench", help="time decoding and training of the mechanisms",
                           description="Benchmarks as ratios within one run; writes JSON.")
    bench.add_argument("which", choices=["decode", "training", "torch"])
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    bench.add_argument("--out", type=Path, default=None, help="JSON file to write")

    grade = sub.add_parser("grade", help="grade exercise files (one, or a whole class)",
                           description="Run the checks of an exercise on each file, every "
                                       "file in its own process with a time limit.")
    grade.add_argument("files", type=Path, nargs="+", metavar="FILE",
                       help="exercise files (a shell glob of a class's submissions works)")
    grade.add_argument("--csv", type=Path, default=None,
                       help="write one row per file: file, exercise, score, max_score, "
                            "first_failing_check, likely_mistake")
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
    reports = grade_files(args.files, timeout=args.timeout)
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
    else:
        print("\n\n".join(r.text() for r in reports))
        if len(reports) > 1:
            print(f"\n{len(reports)} files:\n" + table(
                ["file", "exercise", "score", "first failing check"],
                [[r.file, r.exercise, f"{r.score}/{r.max_score}", r.first_failing or "-"]
                 for r in reports]))
    if args.csv:
        write_csv(reports, args.csv)
        if not args.json:
            print(f"wrote {args.csv}")
    return 0 if all(r.passed for r in reports) else 1


def _step(args) -> int:
    from .explore import run_explorer

    run_explorer(args.mechanism, args.form, args.chunk_size, args.T, args.d, args.seed,
                 args.backward, pause=False if args.no_pause else None)
    return 0


def _bench(args) -> int:
    from . import bench
    from .tour import table

    if args.which == "decode":
        sizes = dict(contexts=(16, 64), D=32, n_heads=2, steps=3) if args.quick else {}
        rows = [r for b in (1, 8) for r in bench.decode_benchmark(batch=b, **sizes)]
        cols = ["context", "batch", "attention_ms", "retnet_ms", "speedup", "kv_cache_bytes",
                "state_bytes"]
    elif args.which == "training":
        sizes = dict(lengths=(64, 128), d=8, chunks=(16,)) if args.quick else {}
        rows = bench.training_benchmark(**sizes)
        cols = ["T", "method", "seconds", "peak_bytes"]
    else:
        try:
            from .bench_torch import torch_benchmark
        except ImportError:
            print("torch is not installed: python -m pip install -e '.[bench]' for the "
                  "comparison with PyTorch")
            return 0
        rows = torch_benchmark(repeat=3 if args.quick else 20)
        cols = ["layer", "minirnn_ms", "torch_ms", "ratio"]
    print(table(cols, [[f"{r[c]:.3g}" if isinstance(r[c], float) else r[c] for c in cols]
                       for r in rows]))
    if args.out:
        bench.write_json(args.out, args.which, rows)
        print(f"wrote {args.out}")
    return 0


def _model_config(args, vocab_size):
    from .models import RetNetConfig, RNNConfig, TransformerConfig

    D = args.d_model
    if args.model == "rnn":
        return RNNConfig(vocab_size, d_model=D, hidden=2 * D)
    if D % args.heads:
        raise ValueError(f"--heads {args.heads} must divide --d-model {D}")
    if args.model == "transformer":
        return TransformerConfig(vocab_size, D, args.heads, args.layers, 2 * D, max_len=512)
    if (D // args.heads) % 2:
        raise ValueError(f"--d-model / --heads = {D // args.heads} must be even for RetNet's "
                         f"rotation")
    return RetNetConfig(vocab_size, D, args.heads, args.layers, dv=D // args.heads, d_ff=2 * D,
                        form=args.form, chunk_size=args.chunk_size)


def _train(args) -> int:
    from .models import build_model, count_parameters
    from .tasks import make_task
    from .train import TrainConfig, load_checkpoint, train

    if args.resume:
        ckpt = load_checkpoint(args.checkpoint)
        model, task, config, params = (build_model(ckpt.model_config), ckpt.task,
                                       ckpt.train_config, ckpt.params)
        print(f"resuming {ckpt.model_config.kind} on {task.name} at step {ckpt.step}")
    else:
        ckpt = None
        if args.checkpoint.exists():
            raise ValueError(f"{args.checkpoint} exists; pass --resume to continue it or "
                             f"choose another --checkpoint")
        task = make_task(args.task)
        model = build_model(_model_config(args, task.vocab_size))
        params = model.init(args.seed)
        config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             eval_every=args.eval_every, patience=args.patience, seed=args.seed)
        print(f"training {model.config.kind} ({count_parameters(params):,} parameters) "
              f"on {task.name}")
    result = train(model, params, task, config, checkpoint=args.checkpoint, resume=ckpt,
                   progress=not args.no_progress, log=print)
    print(f"done: {result.step} steps, {result.tokens_per_second:,.0f} tokens/s"
          + (" (stopped early)" if result.stopped_early else "")
          + f"; checkpoint saved to {args.checkpoint}")
    return 0


def _generate(args) -> int:
    import numpy as np

    from .models import build_model
    from .train import generate, load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    model, task = build_model(ckpt.model_config), ckpt.task
    if args.prompt is None:
        tokens, _ = task.batch(np.random.default_rng(args.seed), 1)
        prompt = tokens[0, :max(1, task.seq_len // 2)]
    else:
        prompt = task.encode(args.prompt)
        if prompt.size == 0:
            raise ValueError("--prompt is empty")
    out = generate(model, ckpt.params, prompt, args.tokens, args.temperature, args.top_k,
                   args.seed)
    print(f"prompt:    {task.decode(prompt)}")
    print(f"generated: {task.decode(out[len(prompt):])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "tour":
        from .tour import run_tour

        return 0 if run_tour(seed=args.seed, steps=args.steps) else 1
    commands = {"train": _train, "generate": _generate, "exercise": _exercise, "grade": _grade,
                "step": _step, "bench": _bench}
    try:
        return commands[args.command](args)
    except (ValueError, TypeError, OSError, FloatingPointError) as err:
        print(f"minirnn {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
