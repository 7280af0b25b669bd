"""Hypothesis strategies for mmrace programs, drawn as canonical .mmr text (docs/format.md).

    from hypothesis import given
    from mmrace.strategies import mmr_programs

    @given(mmr_programs())
    def test_round_trip(text):
        assert mmrace.parse(text).to_mmr() == text

The text is exactly what ``Program.to_mmr()`` prints: the config line always, optional
fields only when not default, flags in their fixed order.  Every program parses:
forked processes are each forked once by an earlier process, handles name existing pins
and DMA offsets fall inside them, addresses are aligned and inside the user address space.
By default every program also runs: its mutants are built and apply to its strategy
(``runnable=False`` draws any catalogue name, for tests of the format itself).
Hypothesis shrinks toward few processes, few ops and small numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from hypothesis import strategies as st

from mmrace import _core

__all__ = ["MUTANTS", "mmr_programs", "runnable_mutants"]

# The format's limits and its op registry come from the core
# (cpp_core/include/mmrace/ops.hpp), so that what is drawn here cannot drift from what
# the parser takes.
_LIMITS = _core.limits()
_OPS = {row["name"]: row for row in _core.op_specs()}
PAGE = _LIMITS["page_size"]
MAX_PAGES = _LIMITS["max_pages"]  # the format's bound on pages=, counts and file page offsets
U64_MAX = (1 << 64) - 1


def _words(op: str, kind: str) -> tuple[str, ...]:
    """The words argument `kind` of op `op` takes (flags, advice, modes), in print order."""
    for arg in _OPS[op]["args"]:
        if arg["kind"] == kind:
            return tuple(arg["words"])
    raise KeyError(f"op {op!r} has no {kind} argument")

# The mutant catalogue (docs/mutants.md, cpp_core/src/mutants/catalogue.cpp), in its order.
MUTANTS = tuple(_core.mutant_names())
_CATALOGUE = {row["name"]: row for row in _core.mutant_catalogue()}


def runnable_mutants(strategy: str) -> tuple[str, ...]:
    """The mutants a program of `strategy` can switch on: built, and for that strategy."""
    def applies(row: dict) -> bool:
        return row["strategies"] == "all" or strategy in row["strategies"].split(",")
    return tuple(name for name, row in _CATALOGUE.items() if row["built"] and applies(row))

Draw = Callable[[st.SearchStrategy], object]

# --- numbers ---------------------------------------------------------------------------

# Small values most of the time, the edges sometimes.
values = st.one_of(st.integers(0, 100), st.just(U64_MAX), st.integers(0, U64_MAX))
page_counts = st.one_of(st.integers(1, 8), st.just(MAX_PAGES), st.integers(1, MAX_PAGES))
counts = st.one_of(st.integers(0, 20), st.integers(0, MAX_PAGES))


def _hex(addr: int) -> str:
    return f"0x{addr:x}"


def _page_addr(draw: Draw, pages: int) -> int:
    """A page-aligned start for `pages` pages that ends inside the user address space."""
    last_page = _LIMITS["user_top"] // PAGE - pages
    return PAGE * draw(st.one_of(st.integers(0x100, 0x140), st.just(last_page),
                                 st.integers(0, last_page)))


def _word_addr(draw: Draw) -> int:
    return _page_addr(draw, 1) + 8 * draw(st.integers(0, PAGE // 8 - 1))


def _range(draw: Draw) -> str:
    pages = draw(page_counts)
    return f"{_hex(_page_addr(draw, pages))} pages={pages}"


def _subset(draw: Draw, words: tuple[str, ...]) -> list[str]:
    """Any subset of `words`, kept in their order (the canonical order)."""
    return [w for w in words if draw(st.booleans())]


def _prot(draw: Draw) -> str:
    letters = tuple(w for w in _words("mmap", "prot") if w != "none")
    return "".join(_subset(draw, letters)) or "none"


# --- names -----------------------------------------------------------------------------

_odd_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)


def _names(draw: Draw, prefix: str, n: int) -> list[str]:
    """n distinct names: mostly P0, P1, ..., sometimes any valid identifier."""
    names: list[str] = []
    for i in range(n):
        name = draw(st.one_of(st.just(f"{prefix}{i}"), _odd_names))
        while name in names:
            name += "_"
        names.append(name)
    return names


# --- ops -------------------------------------------------------------------------------


@dataclass
class _HandleOp:
    """unpin / dma_read / dma_write: the handle is drawn once all pins are placed."""

    kind: str
    value: int = 0


Op = Union[str, _HandleOp]


@dataclass
class _World:
    files: list[str]
    processes: list[str]


def _mmap(draw: Draw, w: _World) -> str:
    sharing = draw(st.sampled_from(["private", "shared"]))
    if w.files and draw(st.booleans()):
        backing = f"file:{draw(st.sampled_from(w.files))}:{draw(st.integers(0, MAX_PAGES))}"
    else:
        backing = "anon"
    options = _subset(draw, _words("mmap", "mmap_flags")[3:])  # after private, shared, anon
    flags = ",".join([sharing, backing, *options])
    return f"mmap {_range(draw)} prot={_prot(draw)} flags={flags}"


def _mremap(draw: Draw, w: _World) -> str:
    text = f"mremap {_range(draw)}"
    new_pages = draw(page_counts)
    text += f" new_pages={new_pages}"
    kind = draw(st.sampled_from(["plain", "maymove", "fixed"]))
    if kind == "maymove":
        text += " flags=maymove"
    elif kind == "fixed":
        text += f" flags=maymove,fixed to={_hex(_page_addr(draw, new_pages))}"
    return text


def _pin(draw: Draw, w: _World) -> str:
    flags = _subset(draw, _words("pin", "pin_flags"))
    return f"pin {_range(draw)}" + (f" flags={','.join(flags)}" if flags else "")


def _gup(draw: Draw, w: _World) -> str:
    flags = _subset(draw, _words("gup", "gup_flags"))
    return f"gup {_range(draw)}" + (f" flags={','.join(flags)}" if flags else "")


_ADVICE = _words("madvise", "advice")

# Each process-thread op kind, drawn as its canonical text.  fork is placed separately.
_PROCESS_OPS: dict[str, Callable[[Draw, _World], Op]] = {
    "mmap": _mmap,
    "munmap": lambda d, w: f"munmap {_range(d)}",
    "mprotect": lambda d, w: f"mprotect {_range(d)} prot={_prot(d)}",
    "madvise": lambda d, w: f"madvise {_range(d)} advice={d(st.sampled_from(_ADVICE))}",
    "mremap": _mremap,
    "read": lambda d, w: f"read {_hex(_word_addr(d))}",
    "write": lambda d, w: f"write {_hex(_word_addr(d))} {d(values)}",
    "peek": lambda d, w: f"peek {_hex(_word_addr(d))}",
    "poke": lambda d, w: f"poke {_hex(_word_addr(d))} {d(values)}",
    "exit": lambda d, w: "exit",
    "pin": _pin,
    "gup": _gup,
    "unpin": lambda d, w: _HandleOp("unpin"),
    "dma_read": lambda d, w: _HandleOp("dma_read"),
    "dma_write": lambda d, w: _HandleOp("dma_write", d(values)),
    "uffd_register": lambda d, w: f"uffd_register {_range(d)} "
                                  f"mode={d(st.sampled_from(_words('uffd_register', 'uffd_mode')))}",
    "uffd_wp": lambda d, w: f"uffd_wp {_range(d)} {d(st.sampled_from(_words('uffd_wp', 'on_off')))}",
    "uffd_serve": lambda d, w: f"uffd_serve {d(counts)} value={d(values)}",
    "sysfs_write": lambda d, w: f"sysfs_write {_hex(_word_addr(d))}",
}
_FILE_OPS: dict[str, Callable[[Draw, _World], Op]] = {
    "file_write": lambda d, w: f"file_write {d(st.sampled_from(w.files))} "
                               f"{d(st.integers(0, MAX_PAGES))} {d(values)}",
    "truncate": lambda d, w: f"truncate {d(st.sampled_from(w.files))} "
                             f"pages={d(st.one_of(st.just(0), page_counts))}",
}
_KTHREAD_OPS: dict[str, Callable[[Draw, _World], Op]] = {
    "reclaim": lambda d, w: f"reclaim {d(counts)}",
    "cpu_hotplug": lambda d, w: "cpu_hotplug",
}
_KTHREAD_PROCESS_OPS: dict[str, Callable[[Draw, _World], Op]] = {
    "collapse": lambda d, w: f"collapse {d(st.sampled_from(w.processes))} {_hex(_page_addr(d, 1))}",
    "smaps": lambda d, w: f"smaps {d(st.sampled_from(w.processes))}",
}


def _ops(draw: Draw, w: _World, table: dict[str, Callable[[Draw, _World], Op]]) -> list[Op]:
    kinds = draw(st.lists(st.sampled_from(sorted(table)), max_size=8))
    return [table[k](draw, w) for k in kinds]


# --- whole programs --------------------------------------------------------------------


@dataclass
class _Process:
    name: str
    forked: bool
    threads: list[tuple[str, list[Op]]]


def _config(draw: Draw, runnable: bool) -> str:
    strategy = draw(st.sampled_from(['classic', 'spf', 'pervma']))
    text = f"config strategy={strategy} geometry={draw(st.sampled_from(['small', 'x86']))}"

    for key, default, maximum in _LIMITS["pools"]:
        size = draw(st.one_of(st.just(default), st.integers(1, 8), st.just(maximum),
                              st.integers(1, maximum)))
        if size != default:
            text += f" {key}={size}"
    names = runnable_mutants(strategy) if runnable else MUTANTS
    mutants = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
    return text + (f" mutants={','.join(mutants)}" if mutants else "")


def _schedule(draw: Draw) -> str | None:
    kind = draw(st.sampled_from([None, "replay", "random", "pct"]))
    if kind == "replay":
        decisions = draw(st.lists(st.one_of(st.integers(0, 3), values), max_size=10))
        return " ".join(["schedule replay", *map(str, decisions)])
    if kind == "random":
        return f"schedule random seed={draw(values)}"
    if kind == "pct":
        depth = draw(st.one_of(st.integers(1, 5), st.just(_LIMITS["max_pct_depth"])))
        steps = draw(st.one_of(st.just(0), values))
        text = f"schedule pct seed={draw(values)} depth={depth}"
        return text + (f" steps={steps}" if steps else "")
    return None


def _add_forks(draw: Draw, processes: list[_Process]) -> None:
    """Each forked process i gets one fork in a thread of a process j < i; process 0 is
    never forked, so every chain of forks ends at a process that starts with the run."""
    for i, proc in enumerate(processes):
        if not proc.forked:
            continue
        parent = processes[draw(st.integers(0, i - 1))]
        _, ops = parent.threads[draw(st.integers(0, len(parent.threads) - 1))]
        ops.insert(draw(st.integers(0, len(ops))), f"fork {proc.name}")


def _resolve_handles(draw: Draw, processes: list[_Process]) -> None:
    """Handles number the pins in file order; a handle op with no pin to name becomes one."""
    thread_ops = [ops for p in processes for _, ops in p.threads]
    pins = [op for ops in thread_ops for op in ops if isinstance(op, str) and op.startswith("pin ")]
    for ops in thread_ops:
        for i, op in enumerate(ops):
            if not isinstance(op, _HandleOp):
                continue
            if not pins:  # then this is the first handle op: it becomes the only pin, H0
                ops[i] = _pin(draw, _World([], []))
                pins = [ops[i]]
                continue
            h = draw(st.integers(0, len(pins) - 1))
            if op.kind == "unpin":
                ops[i] = f"unpin H{h}"
                continue
            pin_pages = int(pins[h].split("pages=")[1].split()[0])
            offset = 8 * draw(st.integers(0, pin_pages * PAGE // 8 - 1))
            value = f" {op.value}" if op.kind == "dma_write" else ""
            ops[i] = f"{op.kind} H{h} {offset}{value}"


@st.composite
def mmr_programs(draw: Draw, max_processes: int = 4, max_kthreads: int = 2,
                 runnable: bool = True) -> str:
    """A whole valid program as canonical .mmr text; with `runnable` one that runs."""
    files = _names(draw, "F", draw(st.integers(0, 3)))
    file_lines = [f"file {f} pages={draw(page_counts)}" for f in files]
    names = _names(draw, "P", draw(st.integers(0, max_processes)))
    world = _World(files, names)
    process_ops = dict(_PROCESS_OPS, **(_FILE_OPS if files else {}))
    processes = []
    for i, name in enumerate(names):
        tnames = _names(draw, "T", draw(st.integers(1, 3)))
        threads = [(f"{name}.{t}", _ops(draw, world, process_ops)) for t in tnames]
        processes.append(_Process(name, i > 0 and draw(st.booleans()), threads))
    kthread_ops = dict(_KTHREAD_OPS, **(_KTHREAD_PROCESS_OPS if names else {}))
    kthreads = [(k, _ops(draw, world, kthread_ops))
                for k in _names(draw, "K", draw(st.integers(0, max_kthreads)))]
    _add_forks(draw, processes)
    _resolve_handles(draw, processes)

    lines = ["mmrace 1", _config(draw, runnable), *file_lines]
    for p in processes:
        lines.append(f"process {p.name}" + (" forked" if p.forked else ""))
        for tname, ops in p.threads:
            lines += [f"thread {tname}", *(f"  {op}" for op in ops)]
    for kname, ops in kthreads:
        lines += [f"kthread {kname}", *(f"  {op}" for op in ops)]
    schedule = _schedule(draw)
    if schedule:
        lines.append(schedule)
    return "\n".join(lines) + "\n"
