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
import random
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmrace import api
from mmrace._core import ModelError, NotBuilt

ARENA_BASE = 0x300000000000  # generated programs use only [ARENA_BASE, ARENA_BASE + ARENA_SIZE)
ARENA_SIZE = 1 << 30
PAGE = 4096
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
# The random generator.
#
# Order independence.  Private anonymous memory is copy-on-write, so a parent and its
# child never see each other's stores to it.  What they can share is a file (its page
# cache and its size) and a shared anonymous mapping.  Each such object has one owner
# process at a time; at a fork the owner either keeps it (and the child never touches
# it) or hands it to the child (and never touches it again).  Only the owner writes or
# truncates a file, maps it, or loads and stores pages that may be backed by it.  Then
# every access to an object is ordered by fork, whatever the schedule.  The generator
# does not predict results; it tracks, per process and page, the set of shared objects
# that may back the page (a superset: mremap and MAP_FIXED_NOREPLACE outcomes are not
# predicted, so they only ever add to it).

MAIN = 0          # the main zone: pages [0, 48) of the arena
MAIN_PAGES = 48
STACK = 0x20000   # the stack zone, 512 MiB up: MAP_GROWSDOWN mappings live here, far
STACK_PAGES = 32  # (more than stack_guard_gap) from everything in the main zone
MAX_PROCESSES = 4
# The THP zone (feature "thp", geometry x86), 256 MiB up: THP_SLOTS slots of one PMD
# (2 MiB, 512 pages) each, PMD-aligned because the arena is.  Private anonymous memory
# and shmem (collapse_file) live here; shmem objects follow the ownership rule below.
THP = 0x10000
THP_SLOTS = 4
PMD_PAGES = 512


def _addr(vpn: int, word: int = 0) -> str:
    return hex(ARENA_BASE + vpn * PAGE + word * 8)


@dataclass
class _Proc:
    name: str
    forked: bool
    backing: dict[int, frozenset] = field(default_factory=dict)  # page -> shared objects
    owned: set = field(default_factory=set)
    mapped: set = field(default_factory=set)  # pages probably mapped, to aim accesses at
    written: list = field(default_factory=list)  # (page, word) stored to, to read back
    ops: list[str] = field(default_factory=list)
    thp_mapped: set = field(default_factory=set)  # THP slots probably mapped

    def may_touch(self, vpn: int) -> bool:
        return self.backing.get(vpn, frozenset()) <= self.owned

    def child(self, name: str) -> "_Proc":
        return _Proc(name, True, dict(self.backing), set(), set(self.mapped), list(self.written),
                     thp_mapped=set(self.thp_mapped))


class _Generator:
    # Features beyond anonymous private memory and fork, each enabled per program.
    FEATURES = ("files", "shared_anon", "munmap", "mprotect", "madvise", "mremap",
                "growsdown", "peek", "exit", "thp")

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        # A third of the programs stick to what every model version runs (anonymous
        # private mmap, read, write, fork); the others add features at random.
        basic = self.rng.random() < 0.3
        self.features = set() if basic else {f for f in self.FEATURES if self.rng.random() < 0.5}
        self.files = ([(f"F{i}", self.rng.randint(1, 4)) for i in range(self.rng.randint(1, 2))]
                      if "files" in self.features else [])
        self.procs: list[_Proc] = []
        self.next_shared = 0
        self.next_value = 100

    # -- choices -------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def value(self) -> int:
        if self.chance(0.05):
            return (1 << 64) - 1  # the top of the unsigned decimal range
        self.next_value += 1
        return self.next_value

    def prot(self) -> str:
        # No exec-only: with protection keys, x86 makes PROT_EXEC alone unreadable.
        return self.rng.choices(["rw", "r", "none", "w", "rx", "rwx"], [10, 4, 2, 1, 2, 1])[0]

    def range_in_zone(self, stack: bool) -> tuple[int, int]:
        pages = self.rng.randint(1, 6)
        if stack:
            return STACK + self.rng.randint(8, STACK_PAGES - pages), pages
        return MAIN + self.rng.randint(0, MAIN_PAGES - 8), pages

    def any_range(self, p: _Proc) -> tuple[int, int]:
        stack = "growsdown" in self.features and self.chance(0.2)
        if p.mapped and self.chance(0.7):  # aim at what is mapped, to hit something
            start = self.rng.choice(sorted(p.mapped))
            return start, self.rng.randint(1, 4)
        return self.range_in_zone(stack)

    def access_page(self, p: _Proc) -> int | None:
        candidates = sorted(v for v in p.mapped if p.may_touch(v))
        for _ in range(10):
            if candidates and self.chance(0.8):
                vpn = self.rng.choice(candidates)
                if self.chance(0.15):
                    vpn -= 1  # just below: a hole, or a stack that grows down
            elif "growsdown" in self.features and self.chance(0.3):
                vpn = STACK + self.rng.randint(4, STACK_PAGES - 1)
            else:
                vpn = MAIN + self.rng.randint(0, MAIN_PAGES - 1)
            if vpn >= 0 and p.may_touch(vpn):
                return vpn
        return None

    # -- ops -------------------------------------------------------------------------------

    def set_backing(self, p: _Proc, start: int, pages: int, obj: str | None, certain: bool):
        new = frozenset([obj]) if obj else frozenset()
        for v in range(start, start + pages):
            p.backing[v] = new if certain else p.backing.get(v, frozenset()) | new
            p.mapped.add(v)

    def op_mmap(self, p: _Proc):
        kinds = ["anon"] * 4
        if "shared_anon" in self.features:
            kinds.append("shared_anon")
        owned_files = [f for f in self.files if f[0] in p.owned]
        if owned_files:
            kinds += ["file"] * 3
        kind = self.rng.choice(kinds)
        growsdown = kind == "anon" and "growsdown" in self.features and self.chance(0.3)
        start, pages = self.range_in_zone(stack=growsdown or (
            "growsdown" in self.features and self.chance(0.1)))
        mode = self.rng.choices(["fixed", "fixed_noreplace", "hint"], [4, 2, 4])[0]
        if not self.features and mode == "fixed":
            # The basic programs stay within what the first model ran: no MAP_FIXED over
            # a mapping (`mapped` is exact here: nothing is ever unmapped or moved).
            start = self.free_start(p, pages)
            if start is None:
                start, mode = self.range_in_zone(False)[0], "fixed_noreplace"
        obj, flags = None, "private,anon"
        if kind == "shared_anon":
            obj, flags = f"S{self.next_shared}", "shared,anon"
            self.next_shared += 1
            p.owned.add(obj)
        elif kind == "file":
            name, size = self.rng.choice(owned_files)
            obj = name
            share = "shared" if self.chance(0.5) else "private"
            flags = f"{share},file:{name}:{self.rng.randint(0, size)}"
        extra = [mode] if mode != "hint" else []
        if growsdown:
            extra.append("growsdown")
        if self.chance(0.15):
            extra.append("populate")
        p.ops.append(f"mmap {_addr(start)} pages={pages} prot={self.prot()} "
                     f"flags={','.join([flags] + extra)}")
        self.set_backing(p, start, pages, obj, certain=(mode == "fixed"))

    def free_start(self, p: _Proc, pages: int) -> int | None:
        free = [s for s in range(MAIN, MAIN + MAIN_PAGES - pages)
                if not any(v in p.mapped for v in range(s, s + pages))]
        return self.rng.choice(free) if free else None

    def op_munmap(self, p: _Proc):
        start, pages = self.any_range(p)
        p.ops.append(f"munmap {_addr(start)} pages={pages}")
        for v in range(start, start + pages):
            p.backing.pop(v, None)
            p.mapped.discard(v)

    def op_mprotect(self, p: _Proc):
        start, pages = self.any_range(p)
        p.ops.append(f"mprotect {_addr(start)} pages={pages} prot={self.prot()}")

    def op_madvise(self, p: _Proc):
        # No collapse: MADV_COLLAPSE depends on the host's THP configuration and on the
        # PMD size, which the `small` geometry changes on purpose.
        start, pages = self.any_range(p)
        advice = self.rng.choices(["dontneed", "pageout", "hugepage", "nohugepage"],
                                  [5, 2, 1, 1])[0]
        p.ops.append(f"madvise {_addr(start)} pages={pages} advice={advice}")

    def op_mremap(self, p: _Proc):
        start, pages = self.any_range(p)
        new_pages = self.rng.randint(1, 8)
        how = self.rng.choices(["", "maymove", "fixed"], [3, 3, 3])[0]
        text = f"mremap {_addr(start)} pages={pages} new_pages={new_pages}"
        objs = frozenset().union(*(p.backing.get(v, frozenset())
                                   for v in range(start, start + pages)))
        if how == "fixed":
            to = MAIN + self.rng.randint(0, MAIN_PAGES - 8)
            text += f" flags=maymove,fixed to={_addr(to)}"
            dest = range(to, to + new_pages)
        else:
            text += " flags=maymove" if how else ""
            dest = range(start, start + max(pages, new_pages))  # grown in place, maybe
        p.ops.append(text)
        for v in dest:  # whatever the outcome, these pages may now be the source's
            p.backing[v] = p.backing.get(v, frozenset()) | objs
            p.mapped.add(v)

    def emit_access(self, p: _Proc, load: bool, vpn: int, word: int, peek_chance: float):
        """A load or store of (vpn, word), through /proc/pid/mem now and then."""
        addr = _addr(vpn, word)
        peek = "peek" in self.features and self.chance(peek_chance)
        if load:
            p.ops.append(f"{'peek' if peek else 'read'} {addr}")
        else:
            p.ops.append(f"{'poke' if peek else 'write'} {addr} {self.value()}")
            p.written.append((vpn, word))

    def op_access(self, p: _Proc):
        load = self.chance(0.5)
        back = [w for w in p.written if p.may_touch(w[0])]
        if load and back and self.chance(0.6):  # read back a store (or what replaced it)
            vpn, word = self.rng.choice(back)
        else:
            vpn, word = self.access_page(p), self.rng.choice([0, 1, 511])
            if vpn is None:
                return
        self.emit_access(p, load, vpn, word, peek_chance=0.25)

    def op_file(self, p: _Proc):
        owned = [f for f in self.files if f[0] in p.owned]
        if not owned:
            return
        name, size = self.rng.choice(owned)
        if self.chance(0.5):
            p.ops.append(f"file_write {name} {self.rng.randint(0, size)} {self.value()}")
        else:  # to fewer pages too, so that mapped pages end up past EOF: SIGBUS
            p.ops.append(f"truncate {name} pages={self.rng.randint(0, size + 1)}")

    def op_fork(self, p: _Proc):
        c = p.child(f"P{len(self.procs)}")
        for obj in sorted(p.owned):
            if self.chance(0.5):
                p.owned.discard(obj)
                c.owned.add(obj)
        p.ops.append(f"fork {c.name}")
        self.procs.append(c)

    # -- the THP zone (feature "thp") ---------------------------------------------------------
    #
    # 2 MiB-aligned private anonymous mappings of one or two PMDs, MADV_HUGEPAGE /
    # NOHUGEPAGE / COLLAPSE / DONTNEED over aligned and unaligned ranges, a few words
    # written and read back around the collapses (content must survive them), and
    # munmap/mprotect of parts, which leave PMD ranges a collapse must refuse (EINVAL).

    def thp_slot_range(self, aligned: bool, slots=range(THP_SLOTS)) -> tuple[int, int]:
        """A range of the THP zone from one of `slots`: whole slots, or anywhere (across
        slot ends too)."""
        slot = self.rng.choice(sorted(slots))
        if aligned:
            slots = 2 if slot + 1 < THP_SLOTS and self.chance(0.3) else 1
            return THP + slot * PMD_PAGES, slots * PMD_PAGES
        if self.chance(0.3):  # a few pages anywhere: no whole PMD inside
            start, pages = THP + slot * PMD_PAGES + self.rng.randrange(PMD_PAGES), self.rng.randint(1, 16)
        else:  # ends near PMD boundaries, on either side: one PMD inside, or none
            start = max(THP, THP + slot * PMD_PAGES + self.rng.randint(-32, 32))
            pages = self.rng.choice([1, 2]) * PMD_PAGES + self.rng.randint(-64, 64)
        return start, min(pages, THP + THP_SLOTS * PMD_PAGES - start)

    def thp_slots(self, start: int, pages: int) -> range:
        return range((start - THP) // PMD_PAGES, (start + pages - 1 - THP) // PMD_PAGES + 1)

    def op_thp_mmap(self, p: _Proc):
        start, pages = self.thp_slot_range(aligned=True)
        if self.chance(0.15):  # no whole PMD inside the VMA: nothing it may collapse
            start += self.rng.randint(1, 64)
            pages = min(pages, THP + THP_SLOTS * PMD_PAGES - start)
        mode = self.rng.choices(["fixed", "fixed_noreplace", "hint"], [6, 2, 1])[0]
        prot = self.rng.choices(["rw", "r"], [9, 1])[0]
        extra = [mode] if mode != "hint" else []
        if self.chance(0.1):
            extra.append("populate")
        kind = "private,anon"
        if self.chance(0.25):  # shmem: a collapse makes a file THP (collapse_file)
            obj = f"S{self.next_shared}"
            self.next_shared += 1
            p.owned.add(obj)
            kind = "shared,anon"
            self.set_backing(p, start, pages, obj, certain=(mode == "fixed"))
        p.ops.append(f"mmap {_addr(start)} pages={pages} prot={prot} "
                     f"flags={','.join([kind] + extra)}")
        slots = set(self.thp_slots(start, pages))
        p.thp_mapped |= slots

    def op_thp_access(self, p: _Proc):
        back = [w for w in p.written if w[0] >= THP and p.may_touch(w[0])]
        load = self.chance(0.5)
        if load and back and self.chance(0.6):
            vpn, word = self.rng.choice(back)
        else:
            slots = sorted(p.thp_mapped) if p.thp_mapped and self.chance(0.9) else range(THP_SLOTS)
            vpn = THP + self.rng.choice(slots) * PMD_PAGES + self.rng.randrange(PMD_PAGES)
            word = self.rng.choice([0, 1, 511])
            if not p.may_touch(vpn):  # another process's shmem
                return
        self.emit_access(p, load, vpn, word, peek_chance=0.2)

    def collapse_range(self, p: _Proc) -> tuple[int, int] | None:
        """A range to MADV_COLLAPSE, or None.  Slots mapped before a fork are fair game:
        the huge PMD a fork shares (copy_huge_pmd) and the PTE-mapped THP a COW leaves
        behind are modelled as Linux has them."""
        for _ in range(5):
            slots = p.thp_mapped if p.thp_mapped and self.chance(0.85) else range(THP_SLOTS)
            start, pages = self.thp_slot_range(self.chance(0.6), slots)
            # Only the owner collapses shmem: whether pages exist yet (SCAN_TRUNCATED)
            # depends on the owner's stores.
            if all(p.may_touch(v) for v in range(start, start + pages)):
                return start, pages
        return None

    def op_thp_madvise(self, p: _Proc):
        advice = self.rng.choices(["collapse", "hugepage", "nohugepage", "dontneed"],
                                  [6, 3, 1, 2])[0]
        if advice == "collapse":
            r = self.collapse_range(p)
            if r is None:
                return
            start, pages = r
        else:
            slots = p.thp_mapped if p.thp_mapped and self.chance(0.8) else range(THP_SLOTS)
            start, pages = self.thp_slot_range(self.chance(0.7), slots)
            if advice == "dontneed":
                start, pages = self.within_a_pmd(start, pages)
        p.ops.append(f"madvise {_addr(start)} pages={pages} advice={advice}")

    def within_a_pmd(self, start: int, pages: int) -> tuple[int, int]:
        """The range cut so that it holds no whole PMD of page table.  Linux 6.14's
        CONFIG_PT_RECLAIM frees a PTE table that MADV_DONTNEED empties over a whole
        PMD (zap_pte_range, reclaim_pt), so a collapse there finds no table
        (SCAN_PMD_NONE, EINVAL); the model keeps the empty table and collapses it."""
        offset = (start - THP) % PMD_PAGES
        return start, min(pages, PMD_PAGES - 1 if offset == 0 else PMD_PAGES - offset)

    def op_thp_munmap_or_mprotect(self, p: _Proc):
        slots = p.thp_mapped if p.thp_mapped and self.chance(0.8) else range(THP_SLOTS)
        start, pages = self.thp_slot_range(self.chance(0.2), slots)
        if self.chance(0.4):
            p.ops.append(f"munmap {_addr(start)} pages={pages}")
            if pages >= PMD_PAGES and (start - THP) % PMD_PAGES == 0:
                p.thp_mapped -= set(self.thp_slots(start, pages))
        else:  # PROT_NONE too: a huge PMD stays huge (change_huge_pmd), as in Linux
            prot = self.rng.choice(["rw", "r", "none"])
            p.ops.append(f"mprotect {_addr(start)} pages={pages} prot={prot}")

    # -- programs --------------------------------------------------------------------------

    def pick_op(self, p: _Proc):
        table = [(self.op_mmap, 4), (self.op_access, 10)]
        if len(self.procs) < MAX_PROCESSES:
            table.append((self.op_fork, 1))
        optional = {"munmap": self.op_munmap, "mprotect": self.op_mprotect,
                    "madvise": self.op_madvise, "mremap": self.op_mremap}
        table += [(op, 2) for name, op in optional.items() if name in self.features]
        if self.files:
            table.append((self.op_file, 2))
        if "thp" in self.features:
            table += [(self.op_thp_mmap, 2), (self.op_thp_access, 8), (self.op_thp_madvise, 4),
                      (self.op_thp_munmap_or_mprotect, 2)]
        ops, weights = zip(*table)
        self.rng.choices(ops, weights)[0](p)

    def fill(self, p: _Proc):
        if not p.forked:
            self.op_mmap(p)  # something to access from the start
            if "thp" in self.features:
                self.op_thp_mmap(p)
        # THP programs run longer: a collapse needs a mapping, stores, maybe advice first.
        for _ in range(self.rng.randint(3, 16) * (2 if "thp" in self.features else 1)):
            self.pick_op(p)
        if "exit" in self.features and self.chance(0.3):
            p.ops.append("exit")

    def program(self) -> str:
        root = _Proc("P0", False, owned={f for f, _ in self.files})
        self.procs.append(root)
        i = 0
        while i < len(self.procs):  # a fork appends the child; it is filled in turn
            self.fill(self.procs[i])
            i += 1
        lines = ["mmrace 1"]
        if "thp" in self.features:  # real 2 MiB PMDs, as the host's
            lines.append("config geometry=x86")
        lines += [f"file {name} pages={size}" for name, size in self.files]
        for p in self.procs:
            lines.append(f"process {p.name}" + (" forked" if p.forked else ""))
            lines.append(f"thread {p.name}.T0")
            lines += [f"  {op}" for op in p.ops]
        return "\n".join(lines) + "\n"


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
    the order in which parent and child run (see the comment above _Proc).
    """
    return _Generator(seed).program()


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
