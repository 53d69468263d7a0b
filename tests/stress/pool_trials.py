"""Trials of ``with multiprocessing.Pool(2)`` leaving its block (``terminate()``) under CPU load,
each bounded: the way a SIGTERM handler in a pool worker hung the parent forever.

    python tests/stress/pool_trials.py TRIALS [MODE ...]

MODE is ``fork-parent`` (sessionkit initialised in the parent, fork workers inherit it),
``fork-workers`` / ``spawn-workers`` (each worker initialises sessionkit), ``spawn-parent``.
Two busy-loop processes load the cores meanwhile. Prints one line per mode with the trials run
and hung, and exits 1 if any trial hung (a trial that does not leave its block within 20 s).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIAL = r"""
import multiprocessing, sys, time
import sessionkit

mode = sys.argv[1]
method = mode.split("-")[0]

def initializer():
    sessionkit.init(service_name="pool-worker", exporter="memory")

def work(x):
    time.sleep(0.001)
    return x * x

if __name__ == "__main__":
    if mode.endswith("parent"):
        sessionkit.init(service_name="pool-parent", exporter="memory")
    ctx = multiprocessing.get_context(method)
    init = initializer if mode.endswith("workers") else None
    for _ in range(int(sys.argv[2])):
        with ctx.Pool(2, initializer=init) as pool:
            assert pool.map(work, range(4)) == [0, 1, 4, 9]
        # leaving the block: terminate() SIGTERMs the workers and joins them with no timeout
    print("ok")
"""


TRIAL_FILE = Path()


def busy() -> None:
    while True:
        pass


def run(mode: str, trials: int, per_process: int) -> tuple[int, int]:
    """``trials`` pools, ``per_process`` in each of a series of fresh interpreters; a process
    that does not finish its pools within 20 s each is a hang (killed, with its stacks dumped)."""
    done = hung = 0
    while done < trials:
        count = min(per_process, trials - done)
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", str(TRIAL_FILE), mode, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: a hung trial's workers go with it
        )
        try:
            out, err = proc.communicate(timeout=20 * count)
            if proc.returncode != 0 or out.strip() != "ok":
                print(f"{mode}: a trial failed (exit {proc.returncode}):\n{err[-3000:]}", file=sys.stderr)
                hung += count
        except subprocess.TimeoutExpired:
            hung += 1
            dump_stacks(proc)
            # The workers too: one stuck in the pool's queue lock would keep the pipes open.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        done += count
    return done, hung


def dump_stacks(proc: subprocess.Popen) -> None:
    """The hung trial's stacks (py-spy when installed), for the log."""
    try:
        out = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "py-spy"), "dump", "--subprocesses", "--pid", str(proc.pid)],
            capture_output=True,
            text=True,
            timeout=20,
        )
        print(out.stdout[-4000:], file=sys.stderr)
    except Exception:
        print(f"(no stack dump of {proc.pid}: py-spy is not installed)", file=sys.stderr)


def main(argv: list[str]) -> int:
    global TRIAL_FILE
    folder = tempfile.mkdtemp(prefix="sessionkit-pool-trials-")
    TRIAL_FILE = Path(folder) / "trial.py"  # a file: spawned workers import the main module
    TRIAL_FILE.write_text(TRIAL)
    trials = int(argv[1]) if len(argv) > 1 else 50
    modes = argv[2:] or ["fork-parent", "fork-workers", "spawn-parent", "spawn-workers"]
    loaders = [multiprocessing.Process(target=busy, daemon=True) for _ in range(os.cpu_count() or 2)]
    for p in loaders:
        p.start()
    failed = 0
    try:
        for mode in modes:
            began = time.monotonic()
            # spawn trials start two interpreters per pool: fewer pools per process keeps each bounded
            ran, hung = run(mode, trials, 25 if mode.startswith("fork") else 10)
            failed += hung
            print(f"pool trials {mode}: {ran} run, {hung} hung or failed, {time.monotonic() - began:.1f}s")
    finally:
        for p in loaders:
            p.terminate()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
