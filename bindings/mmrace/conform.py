"""`mmrace conform`: check the model against the host Linux kernel (issue 3, item 5).

A conformance program is a .mmr program with one thread per process (fork included).
It runs twice: in the model (`mmrace.run`, default schedule) and on the real kernel
through the `mmrace-host` runner (real mmap/munmap/mremap/mprotect/madvise/fork, files as
memfds, loads and stores that may raise SIGSEGV/SIGBUS).  Every op whose result differs
is a difference: either the model is wrong, or the kernel you run behaves differently
from the one the model follows.

Both sides run processes in the same order: the model's default schedule (`schedule
replay` with an empty list) keeps the current thread running until it ends (a thread
that waits for an IPI acknowledgment or I/O gets it before anyone else moves), then
picks the lowest-numbered runnable one, so a parent runs all its ops before its child
starts;
mmrace-host enforces that order with pipes.  The random generator goes further and
builds programs whose results cannot depend on that order at all, so a model that
interleaves processes differently (when a fault waits for I/O, say) still agrees.

    from mmrace.conform import conform, random_program
    diffs = conform(random_program(7))   # [] when the model agrees with the kernel
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmrace import _core, api
from mmrace._core import ModelError, NotBuilt

ARENA_BASE = 0x300000000000  # generated programs use only [ARENA_BASE, ARENA_BASE + ARENA_SIZE)
ARENA_SIZE = 1 << 30
PAGE = _core.limits()["page_size"]
HOST_RUNNER = "mmrace-host"


class HostError(RuntimeError):
    """mmrace-host could not run the program (not found, bad program, arena busy...)."""


class Skipped(Exception):
    """The program cannot be compared: the model or the host cannot run it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Difference:
    thread: str
    index: int
    op: str
    host: str | None
    model: str | None


# ---------------------------------------------------------------------------------------
# The host side.

def find_host_runner() -> str | None:
    """$MMRACE_HOST, else the mmrace-host installed next to this package, else None."""
    env = os.environ.get("MMRACE_HOST")
    if env:
        return env
    here = Path(__file__).resolve().parent / HOST_RUNNER
    return str(here) if here.is_file() and os.access(here, os.X_OK) else None


def run_host(text: str, runner: str | None = None, timeout: float = 60,
             child_first: bool = False) -> list[dict]:
    """Run `text` on the host kernel; one dict {thread, index, op, result} per op.

    child_first runs each forked child to its end before its parent goes on: not the
    model's order, but the results of an order-independent program must not change.
    """
    runner = runner or find_host_runner()
    if not runner:
        raise HostError(f"{HOST_RUNNER} not found next to the mmrace package; build the wheel "
                        f"(pip install .) or set MMRACE_HOST to build/conform/{HOST_RUNNER}")
    try:
        args = [runner, "--child-first", "-"] if child_first else [runner, "-"]
        p = subprocess.run(args, input=text, capture_output=True, text=True,
                           timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HostError(f"{runner}: {e}") from None
    if p.returncode != 0:
        raise HostError(p.stderr.strip() or f"{runner} exited with status {p.returncode}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------
# Comparing.

def _in_arena(addr: int) -> bool:
    return ARENA_BASE <= addr < ARENA_BASE + ARENA_SIZE


def _requested_address(op: str) -> int | None:
    """The address an mmap/mremap asks for: the hint or fixed address, or mremap's to=."""
    words = op.split()
    if words[0] == "mremap":
        to = [w for w in words if w.startswith("to=")]
        return int(to[0][3:], 16) if to else int(words[1], 16)
    return int(words[1], 16) if words[0] == "mmap" else None


def _normalize(op: str, result: str | None) -> str | None:
    """An address the kernel chose itself outside the arena (a hint it could not honour,
    mremap moving a mapping) depends on ASLR on the host and on the model's fixed
    mmap_base, so only the fact that it was chosen elsewhere is compared."""
    if result is None or not result.startswith("0x"):
        return result
    addr = int(result, 16)
    if addr != _requested_address(op) and not _in_arena(addr):
        return "<an address the kernel chose outside the arena>"
    return result


def compare(host: list[dict], model: list[dict]) -> list[Difference]:
    """The ops whose results differ; both lists are in file order."""
    if [(h["thread"], h["index"]) for h in host] != [(m["thread"], m["index"]) for m in model]:
        raise HostError("mmrace-host and the model list different ops for the same program")
    return [Difference(m["thread"], m["index"], m["op"], h["result"], m["result"])
            for h, m in zip(host, model)
            if _normalize(m["op"], h["result"]) != _normalize(m["op"], m["result"])]


def order_dependence(text: str, runner: str | None = None) -> list[Difference]:
    """The ops whose host results change when children run before their parents
    (`host` is the parent-first result, `model` the child-first one).  Empty for every
    program random_program() makes: this checks the generator against the kernel."""
    return compare(run_host(text, runner), run_host(text, runner, child_first=True))


def run_model(text: str) -> api.Result:
    """The model's results with the default schedule, on a machine with this host's swap
    (as_on_host); raises Skipped if it is not built."""
    try:
        return api.run(as_on_host(text), schedule=api.Replay([]), trace=False)
    except NotBuilt as e:
        msg = str(e)
        raise Skipped(msg if msg.startswith("not built") else f"not built: {msg}") from None


def conform(program_text: str, runner: str | None = None) -> list[Difference]:
    """Run the program in the model and on the host; return the ops whose results differ.
    (compare_with_host() also returns the model run's reproducer.)

    Raises Skipped when the model cannot run the program yet (NotBuilt) or when it uses
    ops or pool limits with no host equivalent, so a skipped program is never mistaken
    for a pass.
    A model error or a verdict other than ok is a difference too (index -1): programs
    with one thread per process must never fail a check.  Raises ValueError for a
    malformed program and HostError when mmrace-host fails.
    """
    return compare_with_host(program_text, runner)[0]


def compare_with_host(program_text: str, runner: str | None = None) -> tuple[list[Difference], str]:
    """conform(), and the reproducer of the model run when it failed (a verdict other
    than ok or a model error; "" otherwise)."""
    limits = api.parse(program_text).pool_limits  # malformed: a ValueError, not a difference
    if limits:  # the host's memory is not bounded by the program
        raise Skipped("no host equivalent: config " +
                      " ".join(f"{k}={v}" for k, v in limits.items()))
    try:
        res = run_model(program_text)
    except ModelError as e:
        return [Difference("-", -1, "(the model run)", "ok", f"model error: {e}")], e.reproducer
    host = run_host(program_text, runner)
    # "unsupported" (an op with no host equivalent) or "unsupported: WHY" (an op this
    # host cannot run as the model does, such as MADV_COLLAPSE before Linux 6.1).
    unsupported = [h for h in host if (h["result"] or "").startswith("unsupported")]
    if unsupported:
        why = unsupported[0]["result"].partition(": ")[2]
        raise Skipped(f"no host equivalent: {why or unsupported[0]['op']}")
    diffs = compare(host, [asdict(o) for o in res.ops])
    if not res.ok:
        diffs.append(Difference("-", -1, "(the run's verdict)", "ok",
                                f"{res.verdict} ({res.check}): {res.message}"))
    return diffs, "" if res.ok else res.reproducer


# ---------------------------------------------------------------------------------------
# The random programs: the core generator's conform shape
# (cpp_core/src/program/generate/conform_program.cpp, where the order-independence rules
# are).  The zones it uses, for the tests: the THP zone, THP_SLOTS PMD-aligned slots of
# PMD_PAGES pages (geometry x86) from page THP of the arena.
THP = 0x10000
THP_SLOTS = 4
PMD_PAGES = 512


def with_strategy(text: str, strategy: str | None) -> str:
    """The program's canonical text with its config's strategy set (None: the text
    unchanged).

    A single-threaded program means the same under every strategy; conform --strategy
    checks that the speculative paths keep it so.
    """
    return text if strategy is None else api.parse(text).with_config(strategy=strategy).to_mmr()


@functools.cache
def host_has_swap() -> bool:
    """Whether this machine has a swap device (SwapTotal in /proc/meminfo)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("SwapTotal:"):
                return int(line.split()[1]) > 0
    except OSError:
        pass
    return True


def as_on_host(text: str) -> str:
    """The program as the model must run it to compare with this host: without swap
    (`swap_slots=0`) when the host has none, since MADV_PAGEOUT then leaves anonymous
    memory resident and a later MADV_COLLAPSE has no swap entries to wait for."""
    prog = api.parse(text)
    if host_has_swap() or "swap_slots" in prog.pool_limits:
        return text
    return prog.with_config(swap_slots=0).to_mmr()


def random_program(seed: int) -> str:
    """A random conformance program (.mmr text), the same for the same seed.

    One thread per process, addresses only inside the arena, results independent of
    the order in which parent and child run (conform_program.cpp says how).
    """
    return _core.generate(seed, "conform")


# ---------------------------------------------------------------------------------------
# Many programs, for the CLI and the tests.

@dataclass
class Outcome:
    name: str
    status: str  # identical | differ | skipped | unsupported
    reason: str = ""
    differences: list[Difference] = field(default_factory=list)
    program: str = ""
    reproducer: str = ""  # the model run's, when it failed (a verdict, a model error)

    def to_json(self) -> dict:
        d = asdict(self)
        if self.status != "differ":
            d.pop("program")
        if not self.reproducer:
            d.pop("reproducer")
        return d


def check(name: str, text: str, runner: str | None = None) -> Outcome:
    """One program's outcome; ValueError/HostError propagate (they are usage errors)."""
    try:
        diffs, reproducer = compare_with_host(text, runner)
    except Skipped as s:
        status = "skipped" if s.reason.startswith("not built") else "unsupported"
        return Outcome(name, status, s.reason)
    if diffs:
        return Outcome(name, "differ", differences=diffs, program=text, reproducer=reproducer)
    return Outcome(name, "identical")


def skip_reasons(outcomes: list[Outcome]) -> list[tuple[int, str]]:
    """Why programs were skipped, most frequent first, without the line numbers."""
    counts: dict[str, int] = {}
    for o in outcomes:
        if o.status in ("skipped", "unsupported"):
            reason = re.sub(r"line \d+: ", "", o.reason)
            counts[reason] = counts.get(reason, 0) + 1
    return sorted(((n, r) for r, n in counts.items()), key=lambda x: (-x[0], x[1]))


def summary(outcomes: list[Outcome]) -> str:
    count = {s: sum(o.status == s for o in outcomes)
             for s in ("identical", "differ", "skipped", "unsupported")}
    line = (f"{len(outcomes)} programs: {count['identical']} identical, {count['differ']} differ, "
            f"{count['skipped']} skipped (not built)")
    if count["unsupported"]:
        line += f", {count['unsupported']} skipped (no host equivalent)"
    return line
