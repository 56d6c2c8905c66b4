"""The plan of the house: every module of minirnn on one floor, bottom to top.

A module may import from its own floor and the floors below it, never from a floor above, and
the package has no import cycle (``tests/test_floors.py`` reads every import, including those
inside functions, and holds the code to this table). A new module must be added here, or that
test fails. The docs' maintainers page draws the same table.

The floors are not the library's neural-network layers (``minirnn/layers.py``): a floor is a
level of the code's plan.
"""

from __future__ import annotations

FLOORS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ground", "what each model carries between tokens, and this plan",
     ("states", "_floors")),
    ("checks", "all input validation; imports only the ground floor",
     ("_checks",)),
    ("measure", "the gradient checker: finite differences of any function (imports no math; "
     "the checks' trusted switch skips re-checking the nudged calls)",
     ("gradcheck",)),
    ("math", "the mechanisms, forward and backward, one file per derivation page",
     ("layers", "rnn", "attention", "retention", "gated", "msr", "gated_msr", "vision", "delta",
      "deltanet", "lstm", "gru", "minrnn", "mlstm")),
    ("blocks", "the residual block stack every model is built from",
     ("blocks",)),
    ("models", "language models and image classifiers",
     ("models", "classifiers")),
    ("training", "the registry of models, data, optimisers, training and checkpoints",
     ("registry", "optim", "images", "tasks", "parallel", "train")),
    ("teaching", "what students run rather than step into",
     ("explore", "tour", "exercises", "bench", "memory_probe")),
    ("entry", "the command line and the package's public names",
     ("cli", "__main__", "__init__")),
)

# Functions called from these floors trust their inputs: the model or layer that called them
# checked its own inputs once, where they entered the library (minirnn/_checks/core.py).
TRUSTED_FLOORS = ("math", "blocks", "models")


def floor_of(module: str) -> str:
    """The floor of ``module``, given relative to the package (``"gated"``,
    ``"explore.retention"``, ``"_checks.core"``); a submodule lives on its package's floor."""
    top = module.split(".")[0]
    for name, _, modules in FLOORS:
        if top in modules:
            return name
    raise KeyError(f"module minirnn.{module} is on no floor; add it to minirnn/_floors.py")


def trusted_modules() -> tuple[str, ...]:
    """The top-level modules whose calls into the library are not checked again."""
    return tuple(m for name, _, modules in FLOORS if name in TRUSTED_FLOORS for m in modules)
