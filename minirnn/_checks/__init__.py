"""All input validation of minirnn, in one package a debugger can skip.

A student who passes the wrong thing should read *which* argument is wrong and *what* was
expected, not a broadcasting error from deep inside NumPy. A student who steps through a
function in a debugger should land on its first equation, not on fifty lines of checks. Both
hold because every check lives here: a public math function makes **one** call into this
package (``check.<function name>(...)``, in ``minirnn/_checks/<module>.py``), and
``pdb.Pdb(skip=["minirnn._checks*"])`` or VS Code's ``justMyCode`` steps over it.

Each validator declares every array with the letters of its axes (the alphabet of the notation
page: ``B`` batch, ``T`` time, ``D`` model width, ...) on a :class:`Shapes`. The first array
that uses a letter fixes its size; every later use must agree, and the error names both arrays.
A validator only checks and converts (nested lists to arrays, a scalar decay to one per head,
mixed float32/float64 inputs to one dtype, a missing state to zeros); it never computes
anything a student needs to see.

**Checked once per call.** A public function built from other public functions (a multi-head
layer, a retention layer, a language model) is decorated with :func:`once`. Its own validator
runs as usual and then calls :func:`trust_inner_calls`: until it returns, the functions it calls
skip their checks (they still convert). A student who calls any function directly gets every
check; a model does not re-check its layers at every step.
"""

from .attention import *  # noqa: F403
from .core import (  # noqa: F401
    FLOAT_DTYPES,
    NonFiniteError,
    Shapes,
    active,
    check_bool,
    check_cache,
    check_eps,
    check_int,
    lead,
    once,
    same_dtype,
    trust_inner_calls,
    trusted,
)
from .layers import *  # noqa: F403
from .models import *  # noqa: F403
from .msr import *  # noqa: F403
from .retention import *  # noqa: F403
from .rnn import *  # noqa: F403
