"""Grade a class: every file in its own process, with limits, into a CSV, JSON or class report.

``python -m minirnn grade submissions/*.py --csv grades.csv`` runs
``python -m minirnn.exercises.batch ... FILE`` once per file, each in a new temporary
directory, with caps on its memory, CPU time, processes and the size of the files it writes.

**The channel.** Before the student's file is imported, the child reads a per-run secret from
its stdin (then closed) and is handed the write end of a pipe. It sends a report after every
check down that pipe, each line starting with the secret, so a parent stopped by a timeout still
knows which checks passed. The child's stdout and stderr go to a file the parent never parses:
a submission that prints a copied full-score report prints into nothing. The parent reads only
lines that carry the secret.

**What this is not.** The student's code runs in the grading process, as the same user. It
cannot forge a score by printing, and ordinary code (a fork, a large allocation, a large file,
an endless loop) is stopped with a clear line, but code written to attack the grader (reading
the secret from the process's memory, ``ctypes``) can. For an exam, grade in a container (as
GitHub Classroom does) and treat these limits as a second fence.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .catalog import BY_NAME
from .report import Check, Report

DEFAULT_MEMORY_MB = 1024      # on top of what the grader itself uses
DEFAULT_FILE_MB = 16
CSV_COLUMNS = ["student", "file", "exercise", "score", "max_score", "first_failing_check",
               "likely_mistake", "mistake_ids", "location", "wrong_outputs"]


def _placeholder(path: Path) -> Report:
    """The report of a file whose grading produced nothing: the rubric, nothing passed."""
    from .grader import exercise_of, rubric

    name = exercise_of(path)
    known = name in BY_NAME
    return Report(name if known else path.stem,
                  rubric(name) if known else [Check("the file imports", 1)], file=str(path))


def _read_all(fd: int, into: list) -> None:
    with os.fdopen(fd, "rb") as pipe:
        for chunk in iter(lambda: pipe.read(65536), b""):
            into.append(chunk)


def _why(code: int, timeout: float, memory: int, file_mb: int) -> str:
    if code == -signal.SIGXCPU:
        return f"stopped after {math.ceil(timeout)} s of CPU time (an endless loop, or very " \
               f"slow code?)"
    if code == -signal.SIGXFSZ:
        return f"stopped: the code wrote a file larger than the limit of {file_mb} MB"
    if code == -signal.SIGKILL:
        return f"stopped by the system (more memory than the limit of {memory} MB?)"
    return f"the grading process ended before reporting (exit code {code})"


def grade_file(path: str | Path, timeout: float = 60.0, memory: int = DEFAULT_MEMORY_MB,
               file_mb: int = DEFAULT_FILE_MB) -> Report:
    """Grade one file in a fresh Python process in its own temporary directory.

    Parameters
    ----------
    path : str or Path
        The student's file.
    timeout : float
        Seconds (wall clock, and CPU time) before the process is stopped.
    memory : int
        Megabytes the submission may allocate on top of the grader's own memory.
    file_mb : int
        Largest file, in megabytes, the submission may write.

    Returns
    -------
    Report
        The last report the child sent, the checks it did not reach marked "not run".
    """
    path = Path(path).resolve()
    secret = secrets.token_hex(16)
    work = tempfile.mkdtemp(prefix="minirnn-grade-")
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "TMPDIR": work, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH"))
                                         if p)}
    read_end, write_end = os.pipe()
    cmd = [sys.executable, "-m", "minirnn.exercises.batch", "--fd", str(write_end),
           "--memory", str(memory), "--cpu", str(math.ceil(timeout) + 1),
           "--file-mb", str(file_mb), str(path)]
    chunks: list[bytes] = []
    try:
        with open(os.path.join(work, ".output"), "wb") as output:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=output,
                                    stderr=subprocess.STDOUT, pass_fds=(write_end,), cwd=work,
                                    env=env, start_new_session=True)
        os.close(write_end)
        reader = threading.Thread(target=_read_all, args=(read_end, chunks), daemon=True)
        reader.start()
        try:
            proc.stdin.write((secret + "\n").encode())
            proc.stdin.close()
        except OSError:                              # pragma: no cover - the child died at once
            pass
        try:
            code = proc.wait(timeout=timeout)
            why = _why(code, timeout, memory, file_mb)
        except subprocess.TimeoutExpired:
            why = f"stopped after {timeout:g} s (an endless loop, or very slow code?)"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        reader.join(10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    final, last = None, None
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        mark, _, rest = line.partition(" ")
        if mark != secret:
            continue                                 # not from the grader: ignored
        kind, _, data = rest.partition(" ")
        last = Report.from_dict(json.loads(data))
        if kind == "final":
            final = last
    if final is not None:
        final.file = str(path)
        return final
    report = last or _placeholder(path)
    report.file = str(path)
    running = next((c for c in report.checks if not c.ran), None)
    if running is not None:                          # the check that was running when stopped
        running.ran, running.message = True, why
    report.not_run(why)
    return report


def grade_files(paths, timeout: float = 60.0, memory: int = DEFAULT_MEMORY_MB,
                file_mb: int = DEFAULT_FILE_MB) -> list[Report]:
    """Grade every file, each in its own process (see ``grade_file``)."""
    return [grade_file(p, timeout, memory, file_mb) for p in paths]


def csv_row(r: Report) -> list:
    return [r.student, r.file, r.exercise, r.score, r.max_score, r.first_failing, r.mistake,
            " ".join(r.mistake_ids), r.location, r.wrong]


def write_csv(reports: list[Report], path: str | Path) -> None:
    """One row per file, the columns of ``CSV_COLUMNS``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in reports:
            writer.writerow(csv_row(r))


# --- the child ---------------------------------------------------------------------------------

def _no_processes(*args, **kwargs):
    raise PermissionError("a submission may not start processes (the grader's limit)")


def _limit(memory_mb: int, cpu_s: int, file_mb: int) -> None:
    """Caps for the rest of this process: memory on top of what it uses now, CPU time,
    processes, file size; a large file raises OSError instead of killing the process."""
    import resource

    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):                    # pragma: no cover - not Linux
        used = 0
    caps = [(resource.RLIMIT_AS, used + memory_mb * 2**20), (resource.RLIMIT_CPU, cpu_s),
            (resource.RLIMIT_FSIZE, file_mb * 2**20), (resource.RLIMIT_NPROC, 0)]
    for which, value in caps:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):                # pragma: no cover - a cap the OS refuses
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # RLIMIT_NPROC does not bind root: starting a process is refused here as well
    import _posixsubprocess
    import subprocess as sp

    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp", "execv", "execve",
                 "execvp", "execvpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "popen"):
        if hasattr(os, name):
            setattr(os, name, _no_processes)
    _posixsubprocess.fork_exec = _no_processes
    sp.Popen._execute_child = _no_processes


def _child(argv=None) -> int:
    """Grade one file, sending the report after every check down the channel."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB)
    parser.add_argument("--cpu", type=int, default=61)
    parser.add_argument("--file-mb", type=int, default=DEFAULT_FILE_MB)
    parser.add_argument("path")
    args = parser.parse_args(argv)
    secret = sys.stdin.readline().strip()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.set_inheritable(args.fd, False)
    import hypothesis  # noqa: F401 - imported before the caps, for the property exercise

    from . import report as report_module
    from .grader import grade

    report_module.LIMITS.update(memory=args.memory, file_mb=args.file_mb)
    fd = args.fd

    def send(kind, report):
        data = f"{secret} {kind} {json.dumps(report.to_dict())}\n".encode()
        while data:
            data = data[os.write(fd, data):]

    _limit(args.memory, args.cpu, args.file_mb)
    result = grade(args.path, progress=lambda r: send("progress", r))
    send("final", result)
    os._exit(0)                                      # no student atexit handlers


if __name__ == "__main__":                        # pragma: no cover - run as a child process
    sys.exit(_child())
