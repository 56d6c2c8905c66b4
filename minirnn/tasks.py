"""Synthetic sequence tasks, generated on the fly from a seed (nothing is downloaded).

- ``copy``: a random string, a separator, then the same string again. Scored on the copy.
- ``recall``: multi-query associative recall (Arora et al. 2023, "Zoology"): key-value pairs,
  then some of the keys again; the model must answer each with its value. The standard probe of
  what a fixed-size state (RNN, retention) can remember compared with attention.
- ``overwrite``: associative recall where keys are re-assigned: every key is written several
  times with new values, and each question asks for the *latest* value. A memory that only
  adds (linear attention, retention) returns a blend of everything written with the key; the
  delta rule replaces the old value.
- ``selective``: selective copying (Gu and Dao 2023, "Mamba"): a few symbols scattered among
  noise tokens, a separator, then the symbols in order without the noise. A model whose decay
  cannot depend on the token (retention) must carry the noise along; a gated one can learn
  not to let it in.
- ``grammar``: text of a tiny English-like language from a small grammar, one character per
  token, so generated samples are readable.

Every task gives ``(tokens, targets)`` batches of shape (B, T) for next-token prediction:
``targets[:, t]`` is the token to predict after reading ``tokens[:, :t+1]``, or
``IGNORE_INDEX`` where nothing is scored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._checks.core import check_int
from .images import RelationTask, ShapesTask
from .layers import IGNORE_INDEX

__all__ = ["CopyTask", "GrammarTask", "OverwriteTask", "RecallTask", "SelectiveCopyTask",
           "make_task"]


def _shift(seq: np.ndarray, scored: np.ndarray):
    """Inputs are seq[:, :-1]; targets seq[:, 1:] where ``scored`` (aligned with targets)."""
    return seq[:, :-1], np.where(scored, seq[:, 1:], IGNORE_INDEX)


@dataclass(frozen=True)
class CopyTask:
    """Copy a random string of ``length`` symbols after a separator.

    With ``delay > 0`` the separator is repeated ``delay`` more times before the copy starts:
    the string must be held for ``delay`` extra steps with nothing new to read (the long-delay
    copy task of "Why the LSTM remembers").
    """

    length: int = 8
    n_symbols: int = 8
    delay: int = 0

    name = "copy"

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + 1               # symbols, then the separator

    @property
    def seq_len(self) -> int:
        return 2 * self.length + self.delay      # tokens per example (inputs)

    def batch(self, rng: np.random.Generator, batch_size: int):
        """``(tokens, targets)`` of shape (batch_size, 2 * length + delay)."""
        sep = self.n_symbols
        x = rng.integers(0, self.n_symbols, (batch_size, self.length))
        seq = np.concatenate([x, np.full((batch_size, 1 + self.delay), sep), x], axis=1)
        n = self.seq_len
        scored = np.arange(n) >= self.length + self.delay            # targets after the seps
        return _shift(seq, np.broadcast_to(scored, (batch_size, n)))

    def question(self, rng: np.random.Generator):
        """A well-formed prompt (a string and the separators) and its answer (the string)."""
        x = rng.integers(0, self.n_symbols, self.length)
        return np.append(x, np.full(1 + self.delay, self.n_symbols)), x

    def answer(self, prompt) -> np.ndarray | None:
        """What a prompt asks for: the symbols before the final ``1 + delay`` separators."""
        prompt = np.asarray(prompt)
        k = 1 + self.delay
        if prompt.size < k + 1 or np.any(prompt[-k:] != self.n_symbols):
            return None
        before = prompt[:-k]
        return before if not np.any(before == self.n_symbols) else None

    def decode(self, tokens) -> str:
        return " ".join("|" if t == self.n_symbols else str(int(t)) for t in tokens)

    def encode(self, text: str) -> np.ndarray:
        words = text.split()
        bad = [w for w in words if w != "|" and not (w.isdigit() and int(w) < self.n_symbols)]
        if bad:
            raise ValueError(f"copy task: {bad[:3]} are not symbols; write numbers 0 to "
                             f"{self.n_symbols - 1} and | for the separator")
        return np.array([self.n_symbols if w == "|" else int(w) for w in words])


@dataclass(frozen=True)
class SelectiveCopyTask:
    """Selective copying: ``n_memorize`` symbols at random places among ``length`` tokens of
    noise, a separator, then the symbols in order. Scored on the copy.

    Symbols are ``[0, n_symbols)``, the noise token is ``n_symbols`` and the separator
    ``n_symbols + 1``. Unlike ``copy``, where the symbols sit at fixed places, the model must
    find them: their positions change from example to example.
    """

    length: int = 32
    n_memorize: int = 4
    n_symbols: int = 8

    name = "selective"

    def __post_init__(self):
        if self.n_memorize > self.length:
            raise ValueError(f"selective task: n_memorize = {self.n_memorize} symbols do not fit "
                             f"in length = {self.length} tokens")

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + 2                # symbols, noise, separator

    @property
    def seq_len(self) -> int:
        return self.length + self.n_memorize

    def batch(self, rng: np.random.Generator, batch_size: int):
        """``(tokens, targets)`` of shape (batch_size, length + n_memorize)."""
        L, n = self.length, self.n_memorize
        where = np.sort(np.argsort(rng.random((batch_size, L)), axis=1)[:, :n], axis=1)
        symbols = rng.integers(0, self.n_symbols, (batch_size, n))
        region = np.full((batch_size, L), self.n_symbols)                # noise everywhere
        np.put_along_axis(region, where, symbols, axis=1)               # then the symbols
        sep = np.full((batch_size, 1), self.n_symbols + 1)
        seq = np.concatenate([region, sep, symbols], axis=1)
        scored = np.arange(L + n) >= L                                   # targets after the sep
        return _shift(seq, np.broadcast_to(scored, (batch_size, L + n)))

    def question(self, rng: np.random.Generator):
        """A well-formed prompt (the noisy region and the separator) and its answer."""
        tokens, targets = self.batch(rng, 1)
        return tokens[0, :self.length + 1], targets[0, self.length:]

    def answer(self, prompt) -> np.ndarray | None:
        """The symbols of the region before a final separator, in order (else None)."""
        prompt = np.asarray(prompt)
        if prompt.size < 2 or prompt[-1] != self.n_symbols + 1:
            return None
        region = prompt[:-1]
        if np.any(region == self.n_symbols + 1):
            return None
        return region[region < self.n_symbols]

    def decode(self, tokens) -> str:
        names = {self.n_symbols: ".", self.n_symbols + 1: "|"}
        return " ".join(names.get(int(t), str(int(t))) for t in tokens)

    def encode(self, text: str) -> np.ndarray:
        names = {".": self.n_symbols, "|": self.n_symbols + 1}
        words = text.split()
        bad = [w for w in words if w not in names and not (w.isdigit()
                                                           and int(w) < self.n_symbols)]
        if bad:
            raise ValueError(f"selective task: {bad[:3]} are not tokens; write numbers 0 to "
                             f"{self.n_symbols - 1}, . for noise and | for the separator")
        return np.array([names[w] if w in names else int(w) for w in words])


@dataclass(frozen=True)
class RecallTask:
    """Multi-query associative recall: ``k1 v1 ... kP vP q1 a1 ... qQ aQ``, scored on answers.

    Keys come from ``[0, n_keys)``, values from ``[n_keys, n_keys + n_values)``; the keys of one
    example are distinct, values may repeat. Each query is one of the example's keys and the
    target after it is that key's value.
    """

    n_pairs: int = 6
    n_queries: int = 4
    n_keys: int = 16
    n_values: int = 16

    name = "recall"

    @property
    def vocab_size(self) -> int:
        return self.n_keys + self.n_values

    @property
    def seq_len(self) -> int:
        return 2 * (self.n_pairs + self.n_queries) - 1

    def batch(self, rng: np.random.Generator, batch_size: int):
        """``(tokens, targets)`` of shape (batch_size, 2 * (n_pairs + n_queries) - 1)."""
        P, Q = self.n_pairs, self.n_queries
        keys = np.argsort(rng.random((batch_size, self.n_keys)), axis=1)[:, :P]
        values = self.n_keys + rng.integers(0, self.n_values, (batch_size, P))
        which = np.argsort(rng.random((batch_size, P)), axis=1)[:, :Q] if Q <= P else \
            rng.integers(0, P, (batch_size, Q))
        rows = np.arange(batch_size)[:, None]
        pairs = np.stack([keys, values], axis=2).reshape(batch_size, 2 * P)
        queries = np.stack([keys[rows, which], values[rows, which]], axis=2)
        seq = np.concatenate([pairs, queries.reshape(batch_size, 2 * Q)], axis=1)
        t = np.arange(seq.shape[1] - 1)
        scored = (t >= 2 * P) & ((t - 2 * P) % 2 == 0)      # the token after each query key
        return _shift(seq, np.broadcast_to(scored, (batch_size, t.size)))

    def question(self, rng: np.random.Generator):
        """A well-formed prompt (the key-value pairs and one query key) and its answer."""
        tokens, _ = self.batch(rng, 1)
        P = self.n_pairs
        return tokens[0, :2 * P + 1], tokens[0, 2 * P + 1:2 * P + 2]

    def answer(self, prompt) -> np.ndarray | None:
        """The value stored last with the prompt's last token, if that is a key of its pairs
        (a key written twice answers with its newer value)."""
        prompt = np.asarray(prompt)
        if prompt.size < 3 or prompt[-1] >= self.n_keys:
            return None
        pairs = prompt[:2 * ((prompt.size - 1) // 2)].reshape(-1, 2)
        hits = [v for k, v in pairs if k == prompt[-1] and v >= self.n_keys]
        return np.array(hits[-1:]) if hits else None

    def decode(self, tokens) -> str:
        return " ".join(f"k{t}" if t < self.n_keys else f"v{t - self.n_keys}" for t in tokens)

    def encode(self, text: str) -> np.ndarray:
        out = []
        for word in text.split():
            kind, number = word[:1], word[1:]
            limit = self.n_keys if kind == "k" else self.n_values
            if kind not in ("k", "v") or not number.isdigit() or int(number) >= limit:
                raise ValueError(f"recall task: {word!r} is not a token; write keys k0 to "
                                 f"k{self.n_keys - 1} and values v0 to v{self.n_values - 1}")
            out.append(int(number) if kind == "k" else self.n_keys + int(number))
        return np.array(out)


@dataclass(frozen=True)
class OverwriteTask(RecallTask):
    """Recall with re-assigned keys: ``n_pairs`` writes over only ``n_distinct`` keys, so every
    key is written at least twice, each time with a value different from its previous one; the
    ``n_queries`` questions ask for keys' latest values.

    The layout is the recall task's, ``k v k v ... q a q a``, scored on the answers; the
    questions ask distinct keys (when ``n_queries <= n_distinct``).
    """

    n_pairs: int = 8
    n_queries: int = 4
    n_keys: int = 16
    n_values: int = 16
    n_distinct: int = 4

    name = "overwrite"

    def __post_init__(self):
        if self.n_pairs < 2 * self.n_distinct:
            raise ValueError(f"overwrite task: n_pairs = {self.n_pairs} writes cannot write "
                             f"each of n_distinct = {self.n_distinct} keys twice")
        if self.n_distinct > self.n_keys or self.n_values < 2:
            raise ValueError(f"overwrite task: needs n_distinct <= n_keys (got "
                             f"{self.n_distinct} > {self.n_keys}) and n_values >= 2")

    def batch(self, rng: np.random.Generator, batch_size: int):
        """``(tokens, targets)`` of shape (batch_size, 2 * (n_pairs + n_queries) - 1)."""
        B, P, Q, m = batch_size, self.n_pairs, self.n_queries, self.n_distinct
        rows = np.arange(B)[:, None]
        keys = np.argsort(rng.random((B, self.n_keys)), axis=1)[:, :m]      # m distinct keys
        twice = np.tile(np.arange(m), 2)                                 # each key twice ...
        extra = rng.integers(0, m, (B, P - 2 * m))                       # ... then any keys
        slots = np.concatenate([np.broadcast_to(twice, (B, 2 * m)), extra], axis=1)
        slots = slots[rows, np.argsort(rng.random((B, P)), axis=1)]      # in a random order
        values = np.empty((B, P), dtype=int)
        last = np.full((B, m), -1)                                       # latest value per key
        for t in range(P):
            prev = last[rows[:, 0], slots[:, t]]
            new = rng.integers(0, self.n_values, B)
            shift = 1 + rng.integers(0, self.n_values - 1, B)            # a different value
            new = np.where(prev < 0, new, (prev + shift) % self.n_values)
            values[:, t] = last[rows[:, 0], slots[:, t]] = new
        which = np.argsort(rng.random((B, m)), axis=1)[:, :Q] if Q <= m else \
            rng.integers(0, m, (B, Q))
        pairs = np.stack([keys[rows, slots], self.n_keys + values], axis=2).reshape(B, 2 * P)
        queries = np.stack([keys[rows, which], self.n_keys + last[rows, which]], axis=2)
        seq = np.concatenate([pairs, queries.reshape(B, 2 * Q)], axis=1)
        t = np.arange(seq.shape[1] - 1)
        scored = (t >= 2 * P) & ((t - 2 * P) % 2 == 0)      # the token after each query key
        return _shift(seq, np.broadcast_to(scored, (B, t.size)))


# A small grammar, written for this project:
#   sentence -> subject verb [object] "."       subject, object -> det [adjective] noun
GRAMMAR = {
    "det": ["the", "a", "one", "every"],
    "adjective": ["small", "red", "quiet", "old", "happy"],
    "noun": ["cat", "dog", "bird", "fox", "robot", "child"],
    "verb_t": ["sees", "follows", "likes", "finds"],        # transitive: take an object
    "verb_i": ["sleeps", "runs", "sings"],                  # intransitive
}
ALPHABET = " .abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class GrammarTask:
    """Character-level text from ``GRAMMAR``; every next character is scored."""

    length: int = 64

    name = "grammar"
    vocab_size = len(ALPHABET)

    @property
    def seq_len(self) -> int:
        return self.length

    def sentence(self, rng: np.random.Generator) -> str:
        def phrase():
            words = [rng.choice(GRAMMAR["det"])]
            if rng.random() < 0.5:
                words.append(rng.choice(GRAMMAR["adjective"]))
            return [*words, rng.choice(GRAMMAR["noun"])]

        if rng.random() < 0.7:
            words = [*phrase(), rng.choice(GRAMMAR["verb_t"]), *phrase()]
        else:
            words = [*phrase(), rng.choice(GRAMMAR["verb_i"])]
        return " ".join(str(w) for w in words) + ". "

    def question(self, rng: np.random.Generator):
        """The start of a sentence (its first word and a space); grammar has no single answer."""
        return self.encode(self.sentence(rng).split(" ")[0] + " "), None

    def answer(self, prompt) -> None:
        return None

    def batch(self, rng: np.random.Generator, batch_size: int):
        """``(tokens, targets)`` of shape (batch_size, length): a window of running text."""
        rows = []
        for _ in range(batch_size):
            text = ""
            while len(text) < self.length + 1 + 40:
                text += self.sentence(rng)
            start = int(rng.integers(0, 40))
            rows.append(self.encode(text[start:start + self.length + 1]))
        seq = np.stack(rows)
        return _shift(seq, np.ones((batch_size, self.length), dtype=bool))

    def decode(self, tokens) -> str:
        return "".join(ALPHABET[int(t)] for t in tokens)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(ALPHABET))
        if unknown:
            raise ValueError(f"grammar task: characters {unknown} are not in the alphabet "
                             f"{ALPHABET!r}")
        return np.array([ALPHABET.index(c) for c in text])


TASKS = {t.name: t for t in (CopyTask, RecallTask, OverwriteTask, SelectiveCopyTask,
                              GrammarTask, ShapesTask, RelationTask)}


def make_task(name: str, **options):
    """The task called ``name`` (``"copy"``, ``"recall"``, ``"overwrite"``, ``"selective"``,
    ``"grammar"``, or
    the image tasks ``"shapes"`` and ``"relation"``) with ``options``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    for key, value in options.items():
        check_int(f"make_task({name!r})", key, value, 0 if key == "delay" else 1)
    try:
        return TASKS[name](**options)
    except TypeError as err:
        raise ValueError(f"make_task({name!r}): {err}") from None


def task_to_dict(task) -> dict:
    return {"name": task.name, **asdict(task)}


def task_from_dict(data: dict):
    """Inverse of ``task_to_dict``."""
    data = dict(data)
    return make_task(data.pop("name", None), **data)
