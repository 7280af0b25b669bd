"""Shrinking a failing program: the fewest processes, threads, ops, files and preemptions
that still fail the same way.

    from mmrace.shrink import shrink
    res = shrink(open("examples/mutants/dirty_cow.mmr").read())
    print(res.before, res.after)
    print(res.program)            # the shrunk .mmr text, with its `schedule replay` line

A candidate *reproduces* when its run gives the same verdict and the same check as the
input's.  The input's schedule is first replaced by the replay list of its failing run,
so every candidate runs one fixed interleaving.  Then delta debugging (Zeller and
Hildebrandt, "Simplifying and Isolating Failure-Inducing Input", TSE 2002: ddmin) removes
processes (a forked process goes with the op that forks it), process threads, kthreads,
ops (a pin goes with the ops that use its handle; later handles are renumbered), files,
and finally preemptions: the replay list is cut short, the run is expressed as a preempt
schedule (docs/schedules.md), its switches are ddmin'ed, and the result is written back
as a `schedule replay` line.  The two phases repeat until a round changes nothing (at
most _MAX_PASSES rounds).  A structural candidate runs under the current replay list, then,
if that does not reproduce, under the current run's preempt form.  A candidate that does
not parse, needs a model that is not built, or hits a model error simply does not
reproduce.

Every step is a function of the text alone, so the same input gives the same output,
unless `max_seconds` or `max_runs` stops the search early.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from mmrace import _core, api

__all__ = ["ShrinkResult", "Size", "shrink"]


@dataclass(frozen=True)
class Size:
    """How big a failing program is: processes, threads (process threads and kthreads),
    ops, decisions of its run, and preemptions (the entries of the run's preempt form)."""

    processes: int
    threads: int
    ops: int
    decisions: int
    preemptions: int


@dataclass(frozen=True)
class ShrinkResult:
    program: str  # the shrunk .mmr text, with its `schedule replay ...` line
    verdict: str  # the verdict it keeps (never ok)
    check: str | None  # the check it keeps
    before: Size
    after: Size
    runs: int  # how many runs the shrinking took


# ---------------------------------------------------------------------------------------
# A program as lines of its canonical text (Program.to_mmr()), taken apart so that
# candidates are made by leaving parts out.

@dataclass(frozen=True)
class _Thread:
    head: str  # "thread P0.T0" or "kthread K0"
    ops: tuple[str, ...]  # op lines, indented as printed


@dataclass(frozen=True)
class _Process:
    head: str  # "process P1 forked"
    threads: tuple[_Thread, ...]

    @property
    def name(self) -> str:
        return self.head.split()[1]


@dataclass(frozen=True)
class _Text:
    header: tuple[str, ...]  # "mmrace 1", the config line
    files: tuple[str, ...]
    processes: tuple[_Process, ...]
    kthreads: tuple[_Thread, ...]
    schedule: str = "schedule replay"

    def render(self) -> str:
        out = [*self.header, *self.files]
        for p in self.processes:
            out.append(p.head)
            for t in p.threads:
                out += [t.head, *t.ops]
        for t in self.kthreads:
            out += [t.head, *t.ops]
        out.append(self.schedule)
        return "\n".join(out) + "\n"

    def threads(self) -> list[_Thread]:
        return [t for p in self.processes for t in p.threads] + list(self.kthreads)


def _split(canonical: str) -> _Text:
    """The canonical text's parts (print_mmr's order: header, files, processes with their
    threads, kthreads, schedule)."""
    header, files, procs, kthreads = [], [], [], []
    schedule = "schedule replay"
    cur: list | None = None  # the op list being filled
    for line in canonical.splitlines():
        word = line.split(" ", 1)[0]
        if line.startswith("  "):
            cur.append(line)
        elif word == "file":
            files.append(line)
        elif word == "process":
            procs.append([line, []])
        elif word == "thread":
            cur = []
            procs[-1][1].append((line, cur))
        elif word == "kthread":
            cur = []
            kthreads.append((line, cur))
        elif word == "schedule":
            schedule = line
        else:
            header.append(line)

    def thread(t) -> _Thread:
        return _Thread(t[0], tuple(t[1]))

    return _Text(tuple(header), tuple(files),
                 tuple(_Process(h, tuple(thread(t) for t in ts)) for h, ts in procs),
                 tuple(thread(t) for t in kthreads), schedule)


_FORK = re.compile(r"^\s+fork (\S+)$")
_HANDLE = re.compile(r"^(\s+\S+ )H(\d+)\b")


def _without_processes(t: _Text, keep: set[int]) -> _Text:
    """Keep only the processes of index in `keep`; the fork op of each one dropped goes
    too (its children's forks then name a process that is gone: the text does not parse,
    so ddmin drops those as well)."""
    gone = {p.name for i, p in enumerate(t.processes) if i not in keep}

    def strip(th: _Thread) -> _Thread:
        return replace(th, ops=tuple(o for o in th.ops
                                     if not (_FORK.match(o) and _FORK.match(o).group(1) in gone)))

    procs = tuple(replace(p, threads=tuple(strip(th) for th in p.threads))
                  for i, p in enumerate(t.processes) if i in keep)
    return replace(t, processes=procs, kthreads=tuple(strip(th) for th in t.kthreads))


def _with_ops(t: _Text, keep: set[tuple[int, int]]) -> _Text:
    """Keep the ops (thread index, op index) in `keep`, threads in _Text.threads() order.
    Pins are numbered in file order, so handles are renumbered; an op whose handle names
    a pin left out goes too."""
    handle_of: dict[int, int] = {}  # old pin number -> new
    old = new = 0
    for ti, th in enumerate(t.threads()):
        for oi, op in enumerate(th.ops):
            if op.lstrip().startswith("pin "):
                if (ti, oi) in keep:
                    handle_of[old] = new
                    new += 1
                old += 1

    def kept(ti: int, th: _Thread) -> _Thread:
        ops = []
        for oi, op in enumerate(th.ops):
            if (ti, oi) not in keep:
                continue
            m = _HANDLE.match(op)
            if m:
                if int(m.group(2)) not in handle_of:
                    continue
                op = f"{m.group(1)}H{handle_of[int(m.group(2))]}{op[m.end():]}"
            ops.append(op)
        return replace(th, ops=tuple(ops))

    threads = [kept(ti, th) for ti, th in enumerate(t.threads())]
    it = iter(threads)
    procs = tuple(replace(p, threads=tuple(next(it) for _ in p.threads)) for p in t.processes)
    return replace(t, processes=procs, kthreads=tuple(it))


# ---------------------------------------------------------------------------------------
# ddmin

def _ddmin(items: Sequence, test: Callable[[list], bool]) -> list:
    """Zeller's ddmin: a 1-minimal sublist of `items` (which passes `test`) that passes
    `test`: removing any one more element fails it.  Tries the empty list first."""
    items = list(items)
    if items and test([]):
        return []
    n = 2
    while len(items) >= 2:
        size = len(items)
        chunks = [items[size * i // n: size * (i + 1) // n] for i in range(n)]
        for i in range(n):
            if test(chunks[i]):  # reduce to a subset
                items, n = chunks[i], 2
                break
            complement = [x for j, c in enumerate(chunks) if j != i for x in c]
            if n > 2 and test(complement):  # reduce to a complement
                items, n = complement, max(n - 1, 2)
                break
        else:
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
    return items


_MAX_PASSES = 4  # rounds of structure then schedule, until one changes nothing


class _Budget(Exception):
    """The run or time budget ran out: keep what was found so far."""


class _Shrinker:
    def __init__(self, text: _Text, verdict: str, check: str | None, budget: int,
                 max_seconds: float | None, max_runs: int | None):
        self.text = text  # the smallest program that reproduces so far
        self.verdict, self.check, self.budget = verdict, check, budget
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.max_runs = max_runs
        self.runs = 0

    def run(self, text: str) -> api.Result | None:
        """One run of a candidate; None when it cannot run (parse error, not built,
        model error)."""
        if self.max_runs is not None and self.runs >= self.max_runs:
            raise _Budget
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _Budget
        self.runs += 1
        try:
            return api.run(text, budget=self.budget, trace=False)
        except (ValueError, NotImplementedError, _core.ModelError):
            return None

    def reproduces(self, cand: _Text) -> bool:
        """Run `cand`; if it fails the same way keep it, with its run's replay list."""
        res = self.run(cand.render())
        if res is None or res.verdict != self.verdict or res.check != self.check:
            return False
        self.text = replace(cand, schedule=res.schedule)
        return True

    def ddmin(self, items: Sequence, make: Callable[[_Text, set], _Text]) -> None:
        """ddmin over `items` of the current program.  A candidate runs under the current
        replay list, and if that does not reproduce, under the current run's preempt form:
        with an op gone the replay list's later entries point elsewhere, while the
        preempt form still switches threads where the failing run did."""
        base = self.text
        self.runs += 1
        alt = "schedule " + str(api.preempt_schedule(base.render(), budget=self.budget))

        def test(kept: list) -> bool:
            cand = make(base, set(kept))
            return self.reproduces(cand) or self.reproduces(replace(cand, schedule=alt))

        _ddmin(items, test)

    def structure(self) -> None:
        t = self.text
        self.ddmin(range(len(t.processes)), _without_processes)
        for pi in range(len(self.text.processes)):
            def threads(base: _Text, keep: set, pi=pi) -> _Text:
                procs = list(base.processes)
                procs[pi] = replace(procs[pi], threads=tuple(
                    th for i, th in enumerate(procs[pi].threads) if i in keep))
                return replace(base, processes=tuple(procs))
            self.ddmin(range(len(self.text.processes[pi].threads)), threads)
        self.ddmin(range(len(self.text.kthreads)), lambda base, keep: replace(
            base, kthreads=tuple(th for i, th in enumerate(base.kthreads) if i in keep)))
        ops = [(ti, oi) for ti, th in enumerate(self.text.threads()) for oi in range(len(th.ops))]
        self.ddmin(ops, _with_ops)
        self.ddmin(range(len(self.text.files)), lambda base, keep: replace(
            base, files=tuple(f for i, f in enumerate(base.files) if i in keep)))

    def schedule(self) -> None:
        """Shorten the replay list, then keep the fewest preemptions and the smallest k,
        and write the result back as a replay line."""
        words = self.text.schedule.split()[2:]
        # The shortest prefix that reproduces, looked for by halving the cut.
        cut = len(words)
        while cut:
            cand = replace(self.text, schedule=" ".join(["schedule replay", *words[:len(words) - cut]]))
            if self.reproduces(cand):
                words = self.text.schedule.split()[2:]
            cut //= 2
        pre = api.preempt_schedule(self.text.render(), budget=self.budget)
        self.runs += 1
        base = self.text

        def with_switches(switches) -> _Text:
            return replace(base, schedule="schedule " + str(api.Preempt(tuple(switches))))

        switches = _ddmin(pre.switches, lambda kept: self.reproduces(with_switches(kept)))
        for i, (d, k) in enumerate(switches):  # smaller k: the next entity over
            if k:
                cand = [*switches[:i], (d, 0), *switches[i + 1:]]
                if self.reproduces(with_switches(cand)):
                    switches = cand

    def size(self, text: _Text) -> Size:
        decisions = len(text.schedule.split()) - 2
        pre = api.preempt_schedule(text.render(), budget=self.budget)
        self.runs += 1
        return Size(len(text.processes), len(text.threads()),
                    sum(len(th.ops) for th in text.threads()), decisions, len(pre.switches))


def _trim(text: _Text, budget: int) -> _Text:
    """The replay line cut after its last preemption: past the end of the list replay
    lets the current thread run on, which is what every later decision did."""
    pre = api.preempt_schedule(text.render(), budget=budget)
    last = pre.switches[-1][0] + 1 if pre.switches else 0
    return replace(text, schedule=" ".join(text.schedule.split()[:2 + last]))


def shrink(program: _core.Program | str, *, max_seconds: float | None = None,
           max_runs: int | None = None) -> ShrinkResult:
    """Shrink a failing program (a Program or .mmr text, run under its own schedule line
    and budget) to a 1-minimal one that fails with the same verdict and check.

    Raises ValueError if the program does not fail (its run is ok) or does not parse.
    `max_seconds` and `max_runs` bound the search; when one runs out, the smallest
    program found so far is returned (still failing the same way)."""
    if isinstance(program, str):
        program = api.parse(program)
    first = api.run(program, trace=False)
    if first.ok:
        raise ValueError("shrink: the program does not fail (its run is ok): nothing to shrink")
    canonical = _split(program.to_mmr())
    start = replace(canonical, schedule=first.schedule)
    s = _Shrinker(start, first.verdict, first.check, first.budget, max_seconds, max_runs)
    s.runs = 1
    before = s.size(start)
    try:
        # Each pass can make room for the other: a shorter schedule lets more ops go.
        for _ in range(_MAX_PASSES):
            size = s.text.render()
            s.structure()
            s.schedule()
            if s.text.render() == size:
                break
    except _Budget:
        pass
    final = _trim(s.text, first.budget)
    s.runs += 1
    return ShrinkResult(program=final.render(), verdict=first.verdict, check=first.check,
                        before=before, after=s.size(final), runs=s.runs)
