"""Training loop with progress, evaluation, early stopping and safe checkpoints; generation.

A checkpoint is one ``.npz`` file holding the parameters (``param.<name>``), the optimiser state
(``opt.<name>``) and, as JSON text, the model config, the task, the training config, the step,
the random generator's state and the loss history. It is read with ``allow_pickle=False`` and
written to a temporary file that replaces the old one only when complete, so an interrupted
save never destroys the last good checkpoint. Resuming continues the exact same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._checks.core import NonFiniteError, Shapes, check_int
from ._checks.layers import tokens as check_tokens
from .layers import IGNORE_INDEX, cross_entropy
from .optim import AdamW, clip_grad_norm, warmup_cosine
from .parallel import DataParallel
from .registry import build_model, config_from_dict, config_to_dict
from .tasks import task_from_dict, task_to_dict

__all__ = ["Checkpoint", "TrainConfig", "TrainResult", "TrainingInterrupted", "evaluate",
           "generate", "load_checkpoint", "save_checkpoint", "train"]

FORMAT = "minirnn-checkpoint-1"


@dataclass(frozen=True)
class TrainConfig:
    """How to train: AdamW with warm-up and cosine decay, gradient clipping, evaluation."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.01
    clip: float = 1.0
    eval_every: int = 50
    eval_batches: int = 4
    patience: int | None = None        # evaluations without improvement before stopping
    seed: int = 0
    workers: int = 1                   # threads per step, each on a shard of the batch (DP.1)

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be an integer >= 1, got {value!r}")
        if not self.lr > 0 or self.warmup < 0 or self.weight_decay < 0 or not self.clip > 0:
            raise ValueError("TrainConfig: need lr > 0, warmup >= 0, weight_decay >= 0, clip > 0")


@dataclass
class TrainResult:
    params: dict
    opt_state: dict
    step: int
    history: list = field(default_factory=list)    # dicts: step, loss, and eval entries
    stopped_early: bool = False
    tokens_per_second: float = 0.0


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training after a whole step; the exact state was saved.

    Attributes: ``step`` (steps done), ``path`` (the checkpoint, or None), ``signum``.
    """

    def __init__(self, step: int, path, signum: int):
        self.step, self.path, self.signum = step, path, signum
        where = f"; saved to {path}" if path else "; no checkpoint path, nothing saved"
        super().__init__(f"interrupted at step {step}{where}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C)."""
        return 128 + self.signum


@contextlib.contextmanager
def _stop_on_signals():
    """While training, SIGINT and SIGTERM only *ask* to stop (the step in progress finishes and
    the state is saved); a second Ctrl-C while saving changes nothing. Outside the main thread
    signals cannot be caught, and training runs as before."""
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: asked.append(signum))
    try:
        yield asked
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class Checkpoint:
    model_config: object
    task: object
    train_config: TrainConfig
    params: dict
    opt_state: dict
    step: int
    rng_state: dict
    history: list


def evaluate(model, params: dict, task, n_batches: int = 4, batch_size: int = 32,
             seed: int = 12345) -> dict:
    """Mean loss and accuracy (argmax = target, on scored positions) on fixed held-out batches.

    The evaluation batches come from their own generator (``seed``), so every evaluation of a
    run, and of a resumed run, sees the same examples.
    """
    rng = np.random.default_rng(seed)
    losses, correct, scored = [], 0, 0
    for _ in range(n_batches):
        tokens, targets = task.batch(rng, batch_size)
        logits, _ = model.forward(params, tokens)
        losses.append(cross_entropy(logits, targets)[0])
        keep = targets != IGNORE_INDEX
        correct += int(np.sum((logits.argmax(axis=-1) == targets) & keep))
        scored += int(keep.sum())
    return {"loss": float(np.mean(losses)), "accuracy": correct / max(scored, 1)}


def train(model, params: dict, task, config: TrainConfig = TrainConfig(), *,
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
          resume: Checkpoint | None = None, progress: bool = True,
          log=None, callback=None, metrics_file: str | os.PathLike | None = None) -> TrainResult:
    """Train ``params`` (updated in place) on ``task`` for ``config.steps`` steps.

    Parameters
    ----------
    model : RNNLM, TransformerLM or RetNetLM
    params : dict
        Initial parameters (ignored when ``resume`` is given).
    task : CopyTask, RecallTask or GrammarTask
    config : TrainConfig
        With ``workers > 1`` each step computes its loss and gradients as that many shards of
        the batch in threads ([`DataParallel`][minirnn.parallel.DataParallel]): the same
        numbers to rounding, faster for large models, slower for tiny ones.
    checkpoint : path, optional
        Where to save; written at every evaluation (or every ``checkpoint_every`` steps) and at
        the end, atomically.
    resume : Checkpoint, optional
        Continue a run from [`load_checkpoint`][minirnn.train.load_checkpoint]; the continuation is
        identical to a run
        that was never interrupted.
    progress : bool, optional
        Show a tqdm progress bar with loss and tokens per second.
    log : callable, optional
        Receives one line of text per evaluation.
    metrics_file : path, optional
        Appends one JSON line per evaluation: step, train loss, eval loss, accuracy, tokens
        per second (``python -m minirnn plot`` draws the learning curves from it).
    callback : callable, optional
        Called as ``callback(step, loss)`` after every step (an exception it raises stops
        training; the last checkpoint written stays valid).

    Returns
    -------
    TrainResult

    Raises
    ------
    FloatingPointError
        If a loss or gradient is not finite; the message names the step, and the last good
        checkpoint (if any) is left untouched.
    TrainingInterrupted
        On SIGINT or SIGTERM: after the step in progress, the exact state is saved to
        ``checkpoint`` (resuming continues the same run bit for bit).
    """
    optimiser = AdamW(weight_decay=config.weight_decay)
    if resume is not None:
        params, opt_state, step = resume.params, resume.opt_state, resume.step
        rng = np.random.default_rng()
        rng.bit_generator.state = resume.rng_state
        history = list(resume.history)
    else:
        opt_state, step, history = optimiser.init(params), 0, []
        rng = np.random.default_rng(config.seed)
    result = TrainResult(params, opt_state, step, history)
    best, waited, seen_tokens = np.inf, 0, 0
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.steps, initial=step, desc=f"{model.config.kind} on {task.name}",
                   unit="step", leave=False)
    model.check_params(params, "train")    # NaN before the first step is bad input
    start = time.perf_counter()
    kept = f"; the last good checkpoint {checkpoint} was kept" if checkpoint else ""
    with _stop_on_signals() as asked, contextlib.ExitStack() as closing:
        if bar is not None:
            closing.callback(bar.close)
        losses = model if config.workers == 1 else \
            closing.enter_context(DataParallel(model, config.workers))   # shards in threads
        while step < config.steps:
            if asked:
                if checkpoint:
                    _save(checkpoint, model, task, config, params, opt_state, step, rng,
                          history)
                raise TrainingInterrupted(step, checkpoint, asked[0])
            tokens, targets = task.batch(rng, config.batch_size)
            try:
                loss, grads = losses.loss_and_grads(params, tokens, targets)
            except NonFiniteError as err:   # finite weights, but an activation overflowed
                raise FloatingPointError(f"training diverged at step {step}: {err}{kept}") \
                    from err
            grads, norm = clip_grad_norm(grads, config.clip)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                raise FloatingPointError(f"training diverged at step {step}: loss = {loss}, "
                                         f"gradient norm = {norm}: an activation or gradient "
                                         f"became non-finite although the parameters were "
                                         f"finite (try a smaller lr){kept}")
            lr = warmup_cosine(step, config.lr, config.warmup, config.steps)
            optimiser.update(params, grads, opt_state, lr)
            broken = [key for key, value in params.items() if not np.all(np.isfinite(value))]
            if broken:
                raise FloatingPointError(f"training diverged at step {step}: the update made "
                                         f"params{broken[:3]} non-finite{kept}")
            step += 1
            seen_tokens += tokens.size
            history.append({"step": step, "loss": float(loss)})
            if callback is not None:
                callback(step, float(loss))
            if bar is not None:
                rate = seen_tokens / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}")
                bar.update(1)
            if step % config.eval_every == 0 or step == config.steps:
                metrics = evaluate(model, params, task, config.eval_batches, config.batch_size)
                history[-1].update({"eval_loss": metrics["loss"],
                                    "eval_accuracy": metrics["accuracy"]})
                rate = seen_tokens / max(time.perf_counter() - start, 1e-9)
                if log is not None:
                    log(f"step {step}: train loss {loss:.4f}, eval loss {metrics['loss']:.4f}, "
                        f"accuracy {metrics['accuracy']:.3f}")
                if metrics_file is not None:
                    with open(metrics_file, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"step": step, "train_loss": float(loss),
                                            "eval_loss": metrics["loss"],
                                            "accuracy": metrics["accuracy"],
                                            "tokens_per_second": rate}) + "\n")
                if checkpoint and checkpoint_every is None:
                    _save(checkpoint, model, task, config, params, opt_state, step, rng, history)
                if metrics["loss"] < best - 1e-4:
                    best, waited = metrics["loss"], 0
                else:
                    waited += 1
                if config.patience is not None and waited >= config.patience:
                    result.stopped_early = True
                    break
            if checkpoint and checkpoint_every and step % checkpoint_every == 0:
                _save(checkpoint, model, task, config, params, opt_state, step, rng, history)
    if checkpoint:
        _save(checkpoint, model, task, config, params, opt_state, step, rng, history)
    result.step = step
    result.tokens_per_second = seen_tokens / max(time.perf_counter() - start, 1e-9)
    return result


def _save(path, model, task, config, params, opt_state, step, rng, history):
    save_checkpoint(path, Checkpoint(model.config, task, config, params, opt_state, step,
                                     rng.bit_generator.state, history))


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically (temporary file in the same folder, then rename).

    Raises
    ------
    OSError
        If the folder is missing or not writable (the old file, if any, is untouched).
    """
    path = Path(path)
    meta = {"format": FORMAT, "model": config_to_dict(ckpt.model_config),
            "task": task_to_dict(ckpt.task), "train": asdict(ckpt.train_config),
            "step": int(ckpt.step), "rng": ckpt.rng_state, "history": ckpt.history}
    arrays = {f"param.{k}": v for k, v in ckpt.params.items()}
    arrays.update({f"opt.{k}": v for k, v in ckpt.opt_state.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by [`save_checkpoint`][minirnn.train.save_checkpoint].

    Raises
    ------
    ValueError
        If the file is not a minirnn checkpoint, is truncated or corrupt, or its parameters do
        not match its model config. The message names the file.
    FileNotFoundError
        If there is no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as err:
        raise ValueError(f"{path} is not a readable minirnn checkpoint ({err})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    model_config = config_from_dict(meta["model"])
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param.")}
    opt_state = {k[4:]: v for k, v in arrays.items() if k.startswith("opt.")}
    expected = build_model(model_config).init(0, np.float32)
    wrong = sorted(k for k in expected.keys() | params.keys()
                   if k not in params or k not in expected or params[k].shape != expected[k].shape)
    if wrong:
        raise ValueError(f"{path}: parameters do not match the {model_config.kind} config "
                         f"{model_config}: mismatched {wrong[:5]}")
    return Checkpoint(model_config, task_from_dict(meta["task"]), TrainConfig(**meta["train"]),
                      params, opt_state, int(meta["step"]), meta["rng"], meta["history"])


def generate(model, params: dict, prompt, n_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0) -> np.ndarray:
    """Continue ``prompt`` by ``n_tokens`` sampled tokens.

    The prompt is processed in one call (``model.start``: the RNN runs its recurrence, the
    transformer fills its KV caches, RetNet uses its parallel or chunkwise form); then each new
    token costs one ``model.step`` (O(1) for the RNN and RetNet, O(t) for the transformer).

    Parameters
    ----------
    model, params
    prompt : array of int, shape (T,) or (B, T)
    n_tokens : int
    temperature : float, optional
        0 picks the most likely token (greedy); larger values flatten the distribution.
    top_k : int, optional
        Sample only among the ``top_k`` most likely tokens.
    seed : int, optional

    Returns
    -------
    ndarray of int, shape (T + n_tokens,) or (B, T + n_tokens)
    """
    n_tokens = check_int("generate", "n_tokens", n_tokens, 0)
    if top_k is not None:
        top_k = check_int("generate", "top_k", top_k, 1)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not temperature >= 0:
        raise ValueError(f"generate: temperature must be a number >= 0, got {temperature!r}")
    single = np.ndim(prompt) == 1
    axes = "T" if single else "B T"
    prompt = check_tokens(Shapes("generate"), "prompt", prompt, model.config.vocab_size, axes)
    tokens = prompt[None] if single else prompt
    rng = np.random.default_rng(seed)
    logits, state = model.start(params, tokens)
    logits = logits[:, -1]
    out = [tokens]
    for i in range(n_tokens):
        nxt = _sample(logits.astype(np.float64), temperature, top_k, rng)
        out.append(nxt[:, None])
        if i + 1 < n_tokens:
            logits, state = model.step(params, nxt, state)
    result = np.concatenate(out, axis=1)
    return result[0] if single else result


def _sample(logits, temperature, top_k, rng):
    if temperature == 0:
        return logits.argmax(axis=-1)
    z = logits / temperature
    if top_k is not None and top_k < z.shape[-1]:
        cut = np.sort(z, axis=-1)[:, -top_k][:, None]
        z = np.where(z >= cut, z, -np.inf)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(p.shape[-1], p=row) for row in p])
