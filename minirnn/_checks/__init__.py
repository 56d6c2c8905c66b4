"""All input validation of minirnn, in one package a debugger can skip.

A student who passes the wrong thing should read *which* argument is wrong and *what* was
expected, not a broadcasting error from deep inside NumPy. A student who steps through a
function in a debugger should land on its first equation, not on fifty lines of checks. Both
hold because every check lives here: a math module imports its twin statically
(``from ._checks import retention as check``) and each public function makes **one** call into
it (``check.retention_parallel(...)``; go-to-definition on that line lands on the validator), and
``pdb.Pdb(skip=["minirnn._checks*"])`` or VS Code's ``justMyCode`` steps over it.

Each validator declares every array with the letters of its axes (the alphabet of the notation
page: ``B`` batch, ``T`` time, ``D`` model width, ...) on a ``Shapes``. The first array
that uses a letter fixes its size; every later use must agree, and the error names both arrays.
A validator only checks and converts what the caller handed in (nested lists to arrays, a float
decay to one per head, mixed float32/float64 inputs to one dtype) and returns it; it builds
nothing a student needs to see (initial states are made in the math, from ``minirnn.states``).

**Checked once per call.** A validator checks only when its function was called from code
outside the library's math, block and model files (``minirnn/_floors.py``): your script, a
notebook cell, a line typed at a pdb prompt, a test, the tour, the grader. When a multi-head
layer calls attention, or a language model calls its layers at every step, the inputs were
already checked at the boundary, so the inner validators return their arguments untouched
(``core.active`` walks the frames to the caller's code). ``core.trusted()`` switches the checks
off for a block (the decode benchmark checks once, then times many steps);
``numerical_gradient`` switches them off for its nudged calls but for a line typed at a prompt.

The package imports only the ground floor (``minirnn.states``); the checks of each module sit
in the module of the same name.
"""
