"""The parallel explore: the C++ explore loop (_core.explore) on `jobs` worker processes.

    from mmrace.testing import explore
    from mmrace import workload
    report = explore(workload=workload.shape(mutants=["dirty_cow"]), runs=20000, jobs=2)
    report.findings[0].program  # the .mmr reproducer of the lowest failing seed

The seeds S, S+1, ... are cut into chunks of CHUNK_SEEDS seeds, dealt out in order to
the workers; each chunk is one call of _core.explore (the GIL released, its own PCT
step bound learned from its first run).  The chunks do not depend on `jobs`, so with
`runs=` the same seeds run under the same schedules whatever `jobs` is, and the report
is the same: with stop_at_first_failure the finding is the one of the lowest seed (a
later chunk's finding waits until every earlier chunk is done; chunks after the finding
are cancelled), and `runs` counts the chunks up to the finding's.

Workers are spawned by a forkserver, never forked from this process (which may hold the
extension's state), and ignore SIGINT: on Ctrl-C this process cancels every chunk, each
returns what it found so far, and explore() raises ExploreInterrupted carrying the
report.  Workers send their progress on a queue every PROGRESS_SECONDS.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import queue
import re
import resource
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from mmrace import _core, api

__all__ = ["ExploreInterrupted", "ExploreReport", "Finding", "POLICIES", "explore"]

# The schedule families of each policy, in the order each seed runs them.
POLICIES = {"random": ("random",), "pct": ("pct",), "mixed": ("random", "pct")}
# Seeds per chunk: about a quarter of a second of runs (generated workloads run about
# 1000 a second, one small program 10000), so a chunk's start-up (a message each way,
# PCT's first run) is about 1% of it.  Fixed: a chunk's seeds must not depend on `jobs`.
CHUNK_SEEDS = {"workload": 256, "program": 2048}
PROGRESS_SECONDS = 0.25
KEEP_PER_CHUNK = 64  # failures a chunk hands back when exploration goes on past them
_NEVER = 1 << 62     # no chunk is cancelled
WORKER_MEMORY = 4 << 30  # address space of a worker, bytes


@dataclass(frozen=True)
class Finding:
    """A run that did not end ok: its seed, verdict, check and message, the
    `schedule replay ...` line that replays it, and `program`, its .mmr reproducer."""

    seed: int
    verdict: str
    check: str | None
    message: str
    schedule: str
    program: str

    @property
    def signature(self) -> str:
        """What two findings of one bug share (docs/cli.md#signature): the check and its
        message's first line with every number, address and thread name masked, so that
        the same failing site reached in another program or schedule compares equal."""
        head = self.message.strip().split("\n", 1)[0]
        head = re.sub(r"\b(P\d+\.T\d+|K\d+|khugepaged)\b", "T", head)
        head = re.sub(r"0x[0-9a-fA-F]+|\d+", "#", head)
        return f"{self.check or self.verdict}: {head}"


@dataclass
class ExploreReport:
    """What an exploration ran and found.  `stopped`: done (runs exhausted), time,
    failure (stop_at_first_failure) or interrupted.  `lin_gave_up`: linearizability
    groups whose search was given up (not checked) in the chunks that finished."""

    runs: int = 0
    seconds: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    stopped: str = "done"
    lin_gave_up: int = 0
    jobs: int = 1
    cpu_seconds: float = 0.0  # the workers' CPU time in the chunks counted

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds if self.seconds > 0 else 0.0

    @property
    def found(self) -> bool:
        return bool(self.findings)


class ExploreInterrupted(KeyboardInterrupt):
    """Ctrl-C during explore(): the workers are stopped; `report` has what they ran."""

    def __init__(self, report: ExploreReport):
        super().__init__("explore interrupted")
        self.report = report


# ---------------------------------------------------------------------------------------
# The worker side.  Module globals, set once per worker process by _init_worker.

_progress_queue: Any = None
_cancel_from: Any = None  # a shared int: chunks with an index >= it stop


class _Cancelled(Exception):
    pass


def _init_worker(progress_queue: Any, cancel_from: Any) -> None:
    global _progress_queue, _cancel_from
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    # A worker that needs more than 4 GiB fails (MemoryError in the parent) instead of
    # taking the machine's memory from the other jobs (as bench/run_generated.py).
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    _progress_queue, _cancel_from = progress_queue, cancel_from
    progress_queue.cancel_join_thread()  # exit even if the parent stopped reading


def _run_chunk(task: dict) -> dict:
    """Explores one chunk; returns _core.explore's dict plus `index`, or, when the chunk
    is cancelled, what it had when it stopped (`cancelled` set)."""
    index, last = task["index"], {"runs": 0, "verdicts": {}, "failures": []}
    sent = 0  # failures already sent: each goes on the queue once, and not at all when
    # only the lowest seed's counts (it comes back with the chunk's result)

    def progress(d: dict) -> None:
        nonlocal last, sent
        last = d
        new = [] if task["stop_first"] else d["failures"][sent:]
        sent += len(new)
        _progress_queue.put((index, d["runs"], d["verdicts"], new))
        if index >= _cancel_from.value:
            raise _Cancelled

    seconds = 0.0
    if task["deadline"] is not None:
        seconds = task["deadline"] - time.monotonic()
        if seconds <= 0:
            return {**last, "index": index, "cancelled": True}
    if index >= _cancel_from.value:
        return {**last, "index": index, "cancelled": True}
    source, kw = task["program"], {}
    if source is None:
        kw["workload"] = task["workload"]
    cpu0 = time.process_time()
    try:
        d = _core.explore(source, policies=list(task["policies"]), first_seed=task["first_seed"],
                          max_runs=task["max_runs"], max_seconds=seconds,
                          stop_at_first_failure=task["stop_first"], keep_failures=task["keep"],
                          budget=task["budget"], progress=progress,
                          progress_seconds=PROGRESS_SECONDS, **kw)
    except _Cancelled:
        return {**last, "index": index, "cancelled": True, "cpu": time.process_time() - cpu0}
    return {**d, "index": index, "cancelled": False, "cpu": time.process_time() - cpu0}


# ---------------------------------------------------------------------------------------
# The parent side.

def _chunks(seed: int, runs: int | None, seeds: int, per_seed: int) -> Iterator[tuple[int, int, int]]:
    """(index, first seed, max runs) of each chunk of `seeds` seeds, in order; endless
    without `runs`."""
    per_chunk = seeds * per_seed
    index = 0
    while runs is None or index * per_chunk < runs:
        left = per_chunk if runs is None else min(per_chunk, runs - index * per_chunk)
        yield index, seed + index * seeds, left
        index += 1


def _finding(f: dict) -> Finding:
    return Finding(seed=f["seed"], verdict=f["verdict"], check=f["check"], message=f["message"],
                   schedule=f["replay"], program=f["program"])


def _check_args(program: Any, workload: Any, policy: str, runs: Any, seconds: Any,
                jobs: Any, seed: Any) -> None:
    """ValueError naming the first bad argument."""
    if (program is None) == (workload is None):
        raise ValueError("explore: give a program or workload=, not both and not neither")
    if policy not in POLICIES:
        raise ValueError(f"explore: policy={policy!r}: expected one of {', '.join(POLICIES)}")
    for name, value in (("runs", runs), ("jobs", jobs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"explore: {name}={value!r}: expected a positive integer")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not seconds > 0):
        raise ValueError(f"explore: seconds={seconds!r}: expected a positive number of seconds")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 63:
        raise ValueError(f"explore: seed={seed!r}: expected an integer in [0, 2^63)")


def _budget(text: str | None) -> int:
    """The step budget of every run: the program's `config budget=`, else the default
    (a generated workload has none)."""
    m = re.search(r"^config .*\bbudget=(\d+)", text or "", re.M)
    return int(m.group(1)) if m else api.DEFAULT_BUDGET


def _as_text(program: Any) -> str:
    """The program as .mmr text (what a worker can be sent), parsed here first so that a
    malformed one is a ValueError of this process, not of a worker."""
    if isinstance(program, str):
        program = _core.parse(program, "<program>")
    if not isinstance(program, _core.Program):
        raise TypeError(f"explore: program must be a Program or .mmr text, not {type(program).__name__}")
    _core.check_built(program)
    return program.to_mmr()


class _Explorer:
    """The parent's state: chunks in flight, results in, findings out."""

    def __init__(self, tasks: Iterator[dict], jobs: int, stop_first: bool,
                 on_progress: Callable[[ExploreReport], None] | None,
                 on_finding: Callable[[Finding], None] | None):
        self.tasks, self.jobs, self.stop_first = tasks, jobs, stop_first
        self.on_progress, self.on_finding = on_progress, on_finding
        self.report = ExploreReport(jobs=jobs)
        self.done: dict[int, dict] = {}       # index -> the chunk's final dict
        self.live: dict[int, tuple] = {}      # index -> its latest progress message
        self.seen: set[tuple[int, str]] = set()  # (seed, schedule) reported to on_finding
        self.first_failing: int | None = None
        self.futures: dict[cf.Future, int] = {}  # the chunks in flight
        self.t0 = time.monotonic()

    def run(self, pool: cf.ProcessPoolExecutor, progress_q: Any, cancel_from: Any) -> None:
        """Keeps 2 * jobs chunks in flight (a worker never waits for the next) until
        the tasks run out, the time is up, or every chunk up to a finding is done."""
        while True:
            while len(self.futures) < 2 * self.jobs:
                task = next(self.tasks, None)
                if task is None or (self.first_failing is not None and task["index"] > self.first_failing) \
                        or (task["deadline"] is not None and time.monotonic() >= task["deadline"]):
                    self.tasks = iter(())
                    break
                self.futures[pool.submit(_run_chunk, task)] = task["index"]
            if not self.futures:
                return
            done, _ = cf.wait(self.futures, timeout=PROGRESS_SECONDS, return_when=cf.FIRST_COMPLETED)
            self._drain(progress_q)
            for fut in done:
                self.futures.pop(fut)
                self._chunk_done(fut.result(), cancel_from)
            self._tell_progress()

    def _drain(self, progress_q: Any) -> None:
        while True:
            try:
                msg = progress_q.get_nowait()
            except queue.Empty:
                return
            if msg[0] not in self.done:
                self.live[msg[0]] = msg
                if not self.stop_first:
                    for f in msg[3]:
                        self._found(_finding(f))

    def _chunk_done(self, d: dict, cancel_from: Any) -> None:
        index = d["index"]
        self.done[index] = d
        self.live.pop(index, None)
        if d["failures"] and self.stop_first and (self.first_failing is None or index < self.first_failing):
            self.first_failing = index
            with cancel_from.get_lock():
                cancel_from.value = min(cancel_from.value, index + 1)
        if not self.stop_first:
            for f in d["failures"]:
                self._found(_finding(f))

    def _found(self, f: Finding) -> None:
        if (f.seed, f.schedule) not in self.seen:
            self.seen.add((f.seed, f.schedule))
            self.report.findings.append(f)
            if self.on_finding:
                self.on_finding(f)

    def _counted(self) -> list[dict]:
        """The chunks the report counts: all, or with a finding those up to its chunk."""
        last = self.first_failing if self.stop_first and self.first_failing is not None else _NEVER
        return [d for i, d in sorted(self.done.items()) if i <= last]

    def _tell_progress(self) -> None:
        if not self.on_progress:
            return
        r = self.summary(final=False)
        for _, runs, verdicts, failures in self.live.values():
            r.runs += runs
            for k, v in verdicts.items():
                r.verdicts[k] = r.verdicts.get(k, 0) + v
        self.on_progress(r)

    def summary(self, final: bool = True) -> ExploreReport:
        r = ExploreReport(jobs=self.jobs, findings=list(self.report.findings))
        verdicts: Counter[str] = Counter()
        for d in self._counted():
            r.runs += d["runs"]
            verdicts.update(d["verdicts"])
            r.lin_gave_up += d.get("lin_gave_up", 0)
            r.cpu_seconds += d.get("cpu", 0.0)
        r.verdicts = dict(verdicts)
        r.seconds = time.monotonic() - self.t0
        if final and self.stop_first:
            firsts = [_finding(d["failures"][0]) for d in self._counted() if d["failures"]]
            r.findings = sorted(firsts, key=lambda f: f.seed)[:1]
        return r


def explore(program: Any = None, *, workload: dict | None = None, policy: str = "random",
            runs: int | None = None, seconds: float | None = None, jobs: int | None = None,
            seed: int = 0, stop_at_first_failure: bool = True, budget: int | None = None,
            on_progress: Callable[[ExploreReport], None] | None = None,
            on_finding: Callable[[Finding], None] | None = None) -> ExploreReport:
    """Explore a program's schedules (`program`: a Program or .mmr text) or generated
    workloads (`workload`: a mmrace.workload.shape() dict) under `policy` (random, pct,
    or mixed: each seed under both) on `jobs` processes (default: the CPU count), until
    `runs` runs, `seconds` seconds, or (stop_at_first_failure) a finding; without
    either limit, 1000 runs.  Seed S+i's program and schedule depend only on S+i.
    `budget`: each run's step budget (default: the program's, else 1000000).

    on_progress(report so far) is called in this process about every PROGRESS_SECONDS;
    on_finding(finding) once per finding as it arrives (with stop_at_first_failure, once,
    at the end, for the lowest seed's).  Raises ValueError naming a bad argument, and on
    Ctrl-C ExploreInterrupted (a KeyboardInterrupt) whose `report` has what ran."""
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    _check_args(program, workload, policy, runs, seconds, jobs, seed)
    if runs is None and seconds is None:
        runs = 1000
    text = _as_text(program) if program is not None else None
    budget = _budget(text) if budget is None else api.check_budget(budget)
    deadline = time.monotonic() + seconds if seconds is not None else None
    families = POLICIES[policy]
    stop_first = stop_at_first_failure
    tasks = ({"index": i, "first_seed": first, "max_runs": n, "program": text, "workload": workload,
              "policies": families, "deadline": deadline, "stop_first": stop_first,
              "keep": 1 if stop_first else KEEP_PER_CHUNK, "budget": budget}
             for i, first, n in _chunks(seed, runs, CHUNK_SEEDS["program" if text else "workload"],
                                        len(families)))
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mmrace._core"])
    progress_q, cancel_from = ctx.Queue(), ctx.Value("q", _NEVER)
    ex = _Explorer(tasks, jobs, stop_first, on_progress, None if stop_first else on_finding)
    pool = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                  initargs=(progress_q, cancel_from))
    try:
        ex.run(pool, progress_q, cancel_from)
    except KeyboardInterrupt:
        with cancel_from.get_lock():
            cancel_from.value = 0
        ex.tasks = iter(())
        ex.run(pool, progress_q, cancel_from)  # the chunks in flight hand back what they have
        report = _finish(ex, "interrupted", on_finding if stop_first else None)
        raise ExploreInterrupted(report) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    stopped = "failure" if stop_first and ex.first_failing is not None else (
        "time" if deadline is not None and time.monotonic() >= deadline else "done")
    return _finish(ex, stopped, on_finding if stop_first else None)


def _finish(ex: _Explorer, stopped: str, on_finding: Callable[[Finding], None] | None) -> ExploreReport:
    """The report; on_finding(f) for its findings (the lowest seed's, when only that one
    counts).  Ctrl-C in on_finding raises ExploreInterrupted with the report."""
    report = ex.summary()
    report.stopped = stopped
    try:
        for f in report.findings if on_finding else ():
            on_finding(f)
    except KeyboardInterrupt:
        report.stopped = "interrupted"
        raise ExploreInterrupted(report) from None
    return report
