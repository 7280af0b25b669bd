"""Readable views of one run's trace (`mmrace trace`, Result.to_trace_text and
Result.to_perfetto).

steps() turns the runtime's records into Steps: who, where (the site: the kernel
function), what happened, and the locks that thread holds after it.  Three views are
built on them:

- to_text: one line per step.  The short form keeps the steps a reader follows (ops,
  locks, RCU, IRQs, IPIs, I/O, the failure); the detailed form keeps every record.
- to_columns: one column per thread, as lincheck prints an interleaving, with `switch`
  where a thread is preempted.
- to_perfetto: Chrome trace-event JSON for ui.perfetto.dev.  Each simulated thread is a
  track whose ops are slices, with the held locks, RCU read sections, IRQ-off sections
  and fault paths nested inside them; the events (IPIs, I/O, RCU grace periods) have a
  track of their own; the failure is an instant event.  When check linearizability
  failed, a process "linearizability: pages ..." shows the failing group's ops as
  [invocation, response] intervals, one track per thread, marked as the search left
  them (Porcupine's view).

A timestamp is the step number in microseconds, so the same run gives the same JSON.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from mmrace import _core

if TYPE_CHECKING:
    from mmrace.api import Result

# Lock classes (their lockdep names) whose write side records no lock_acquired: the
# seqcount write sections, held from their lock_acquire.
SEQCOUNT_CLASSES = frozenset({"&mm->write_protect_seq", "&vma->vm_sequence"})

# The short names the views print for lock classes.  The model names its locks as
# lockdep does ("&mm->mmap_lock"); the Perfetto args keep that full class name.
SHORT_LOCK_NAMES = {
    "&mm->mmap_lock": "mmap_lock",
    "&mm->page_table_lock": "page_table_lock",
    "&mm->mm_rb_lock": "mm_rb_lock",
    "&mm->write_protect_seq": "write_protect_seq",
    "&vma->vm_lock->lock": "vma_lock",
    "&vma->vm_sequence": "vm_sequence",
    "ptlock": "ptl",
    "&anon_vma->rwsem": "anon_vma",
    "&mapping->i_mmap_rwsem": "i_mmap_rwsem",
    "&mapping->invalidate_lock": "invalidate_lock",
    "&sb->s_type->i_mutex_key": "i_rwsem",
}

# The sites of the page-fault paths (arch/x86/mm/fault.c, mm/memory.c, the speculative
# and per-VMA-lock entries): a run of a thread's steps at these sites inside one op is
# a fault, named by the handlers it went through.
FAULT_SITES = frozenset({
    "do_user_addr_fault", "handle_speculative_fault", "lock_vma_under_rcu", "vma_start_read",
    "vma_end_read", "lock_mm_and_find_vma", "__handle_mm_fault", "handle_pte_fault",
    "do_anonymous_page", "alloc_anon_folio", "do_wp_page", "wp_page_copy", "wp_page_reuse",
    "__wp_page_copy_user", "do_swap_page", "filemap_fault", "finish_fault", "do_set_pmd",
    "do_huge_pmd_wp_page", "__do_huge_pmd_anonymous_page", "huge_pmd_set_accessed",
    "handle_userfault", "pte_map_lock", "vma_has_changed", "expand_stack",
    "bad_area_access_error", "release_fault_lock", "pmd_install", "pte_alloc_one",
})

# Records that happen to, not in, a thread: they go on the events track.
EVENT_KINDS = frozenset({"event_post", "event_fire", "io_submit", "io_complete", "ipi_send",
                         "ipi_ack", "rcu_gp_end"})

# What the short text form leaves out: scheduling points that only read or write.
DETAIL_ONLY = frozenset({"access", "yield", "wake", "lock_acquire"})

# Sections that nest (rcu_read_lock, local_irq_save): the records that open and close
# them, and their slices' names.
NESTED_BEGIN = {"rcu_read_lock": "rcu", "irq_disable": "irq"}
NESTED_END = {"rcu_read_unlock": "rcu", "irq_enable": "irq"}
NESTED_NAMES = {"rcu": "rcu_read_lock", "irq": "irqs off"}

# Porcupine's colours, as Chrome's reserved colour names (`cname`).
MARK_COLOURS = {"linearized": "good", "stuck": "terrible", "unreached": "grey"}


@dataclass(frozen=True)
class Step:
    """One trace record, with what a reader needs: `what` is the arg as words (the op's
    text, a lock's name, a number), `locks` the locks `thread` holds after it (short
    names, in acquisition order), `op` the text of the op the thread is in."""

    step: int
    thread: str
    site: str
    event: str
    arg: int
    what: str
    locks: tuple[str, ...]
    op: str | None


def short_lock(name: str) -> str:
    return SHORT_LOCK_NAMES.get(name, name)


class _Locks:
    """The locks each thread holds, from its lock records (sync/lockdep.hpp: a lock's
    records carry fnv1a of its class name)."""

    def __init__(self) -> None:
        self.names: dict[int, str] = _core.lock_names()
        self.held: dict[str, list[str]] = {}

    def name(self, site: str, arg: int) -> str:
        if arg in self.names:
            return self.names[arg]
        if site.startswith("folio_"):
            return f"folio_lock(pfn {arg})"
        if site == "isolate_lru_folios":
            return "lru_lock"
        return f"lock {arg:#x}"

    def apply(self, thread: str, site: str, event: str, arg: int) -> tuple[str, str] | None:
        """Follows one record: ("take", lock) or ("release", lock) when it changes what
        `thread` holds, else None."""
        held = self.held.setdefault(thread, [])
        if not (event.startswith("lock_") or event == "trylock_fail"):
            return None
        name = self.name(site, arg)
        if event == "lock_acquired" or (
                event == "lock_acquire" and (name in SEQCOUNT_CLASSES or site == "folio_lock")):
            held.append(name)
            return "take", name
        if event == "lock_release" and name in held:
            del held[len(held) - 1 - held[::-1].index(name)]  # the innermost hold
            return "release", name
        return None


def _op_texts(result: Result) -> dict[tuple[str, int], Any]:
    return {(o.thread, o.index): o for o in result.ops}


def steps(result: Result) -> list[Step]:
    """The run's trace records as Steps, in order."""
    ops = _op_texts(result)
    locks = _Locks()
    current: dict[str, str | None] = {}  # the op each thread is in
    out = []
    for step, who, site, event, arg in result.trace:
        locks.apply(who, site, event, arg)
        op = ops[(who, arg)] if event in ("op_begin", "op_end") else None
        if event == "op_begin":
            current[who] = op.op
        in_op = current.get(who)
        if event == "op_end":
            current[who] = None
        held = tuple(short_lock(n) for n in locks.held.get(who, ()))
        out.append(Step(step, who, site, event, arg, _what(event, site, arg, op, locks), held, in_op))
    return out


def _what(event: str, site: str, arg: int, op: Any, locks: _Locks) -> str:
    """A record's arg in words: the op's text or result, a lock's name, a number."""
    if event == "op_begin":
        return op.op
    if event == "op_end":
        return "-> " + ("-" if op.result is None else op.result)
    if event.startswith("lock_") or event == "trylock_fail":
        return short_lock(locks.name(site, arg))
    return _number(arg)


def _number(arg: int) -> str:
    """An arg as the reader expects it: addresses in hex, counts in decimal, 0 as
    nothing (most records have no arg)."""
    if not arg:
        return ""
    return f"{arg:#x}" if arg >= 0x1000 else str(arg)


def _shown(steps_: Iterable[Step], detailed: bool) -> list[Step]:
    return [s for s in steps_ if detailed or s.event not in DETAIL_ONLY]


def _header(result: Result) -> list[str]:
    lines = [f"verdict {result.verdict}" + (f" ({result.check})" if result.check else "")
             + f", {result.step} steps, trace_hash {result.trace_hash}"]
    if result.message:
        lines += ["  " + line for line in result.message.splitlines()]
    return lines


def to_text(result: Result, detailed: bool = False) -> str:
    """One line per step: step, thread, event, what, site, locks held after it."""
    rows = [("step", "thread", "event", "what", "at", "locks held")]
    for s in _shown(steps(result), detailed):
        rows.append((str(s.step), s.thread, s.event, s.what, s.site, ", ".join(s.locks) or "-"))
    rows.extend(_failure_row(result))
    lines = _header(result) + [""] + _table(rows)
    return "\n".join(lines + _lin_text(result)) + "\n"


def _failure_row(result: Result) -> list[tuple[str, ...]]:
    if result.ok:
        return []
    thread, step = _failure_point(result)
    return [(str(step), thread or "-", "FAIL", f"{result.verdict} ({result.check})", "-", "-")]


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns; the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]).rstrip() for r in rows]


def _failure_point(result: Result) -> tuple[str | None, int]:
    """The failing thread (None when the failure is the whole run's: a leak or the
    history check) and step."""
    for step, who, _site, event, _arg in reversed(result.trace):
        if event == "fail":
            return who, step
    return None, result.step


# ---------------------------------------------------------------------------------------
# One column per thread (lincheck's interleaving).

def _cell(s: Step) -> str:
    if s.event == "op_begin":
        return s.what
    if s.event == "op_end":
        return f"  result: {s.what.removeprefix('-> ')}"
    text = f"  {s.event} {s.what}".rstrip()
    return f"{text} at {s.site}" if s.site not in ("op", "thread") else text


def to_columns(result: Result, detailed: bool = False) -> str:
    """The interleaving as a table with one column per thread; `switch` marks where a
    thread stops for another while it still has work (a preemption or a block)."""
    shown = [s for s in _shown(steps(result), detailed) if s.event not in EVENT_KINDS]
    threads = list(dict.fromkeys(s.thread for s in shown))
    col = {t: i for i, t in enumerate(threads)}
    rows: list[list[str]] = []
    for prev, s in zip([None, *shown], shown):
        if prev is not None and prev.thread != s.thread and prev.event != "thread_exit":
            rows.append(["switch" if t == prev.thread else "" for t in threads])
        rows.append([_cell(s) if t == s.thread else "" for t in threads])
    fail_thread, _ = _failure_point(result)
    if not result.ok:
        rows.append([f"FAIL: {result.check}" if t == (fail_thread or threads[0]) else ""
                     for t in threads])
    widths = [max([len(t)] + [len(r[col[t]]) for r in rows]) for t in threads]
    rule = "| " + "-" * (sum(widths) + 3 * len(widths) - 3) + " |"
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    lines = _header(result) + ["", rule, fmt(threads), rule] + [fmt(r) for r in rows] + [rule]
    return "\n".join(lines + _lin_text(result)) + "\n"


# ---------------------------------------------------------------------------------------
# The linearizability history.

def _op_steps(result: Result) -> dict[tuple[str, int], list[int]]:
    """(thread, index) -> [op_begin step, op_end step] from the trace."""
    spans: dict[tuple[str, int], list[int]] = {}
    for step, who, _site, event, arg in result.trace:
        if event == "op_begin":
            spans[(who, arg)] = [step, step]
        elif event == "op_end" and (who, arg) in spans:
            spans[(who, arg)][1] = step
    return spans


def lin_ops(result: Result) -> list[dict[str, Any]]:
    """The failing group's ops (empty unless check linearizability failed): thread,
    index, op, result, inv and resp (op clock), begin and end (steps), mark."""
    if not result.lin_history:
        return []
    ops, spans = _op_texts(result), _op_steps(result)
    out = []
    for o in result.lin_history["ops"]:
        key = (o["thread"], o["index"])
        begin, end = spans.get(key, (o["inv"], o["resp"]))
        out.append(dict(o, op=ops[key].op, result=ops[key].result, begin=begin, end=end))
    return out


def _lin_text(result: Result) -> list[str]:
    h = result.lin_history
    if not h:
        return []
    ops = lin_ops(result)
    lines = ["", f"linearizability history of {h['pages']}: the longest order the check found "
             f"linearizes {h['linearized']} of {len(ops)} ops; after it, no op marked stuck can "
             "go next (its result disagrees with the reference model)"]
    rows = [("steps", "thread", "op", "result", "mark")]
    for o in ops:
        rows.append((f"[{o['begin']}, {o['end']}]", f"{o['thread']}[{o['index']}]", o["op"],
                     f"-> {o['result']}", o["mark"]))
    return lines + ["  " + line for line in _table(rows)]


# ---------------------------------------------------------------------------------------
# Chrome trace-event JSON (ui.perfetto.dev).

PID_THREADS, PID_EVENTS, PID_LIN = 1, 2, 3


def _meta(pid: int, tid: int | None, kind: str, name: str, sort: int | None = None) -> list[dict]:
    ev = [{"ph": "M", "pid": pid, "name": kind, "args": {"name": name}}]
    if tid is not None:
        ev[0]["tid"] = tid
    if sort is not None:
        key = "thread_sort_index" if tid is not None else "process_sort_index"
        ev.append(dict(ev[0], name=key, args={"sort_index": sort}))
    return ev


@dataclass
class _Slice:
    begin: int
    end: int
    name: str
    cat: str
    args: dict[str, Any]


class _Sections:
    """The slices of each thread, opened and closed as its records go by.  A key names
    what is open ("op", "lock:NAME", "rcu", ...); the same key may be open several times
    (two PTLs), and closing it closes the innermost."""

    def __init__(self) -> None:
        self.slices: dict[str, list[_Slice]] = defaultdict(list)
        self.open: dict[tuple[str, str], list[_Slice]] = defaultdict(list)
        self.depth: dict[tuple[str, str], int] = defaultdict(int)

    def begin(self, thread: str, key: str, sl: _Slice) -> None:
        self.open[(thread, key)].append(sl)
        self.slices[thread].append(sl)

    def end(self, thread: str, key: str, step: int) -> None:
        if self.open[(thread, key)]:
            self.open[(thread, key)].pop().end = step

    def nest(self, thread: str, key: str, s: Step) -> None:
        """A nestable section (rcu_read_lock, local_irq_save): a slice for the outermost."""
        self.depth[(thread, key)] += 1
        if self.depth[(thread, key)] == 1:
            self.begin(thread, key, _Slice(s.step, s.step, NESTED_NAMES[key], key, {"at": s.site}))

    def unnest(self, thread: str, key: str, step: int) -> None:
        if self.depth[(thread, key)] > 0:
            self.depth[(thread, key)] -= 1
            if self.depth[(thread, key)] == 0:
                self.end(thread, key, step)

    def close_all(self, last: dict[str, int]) -> None:
        """What is still open when the run ended (a failure) ends at its thread's last step."""
        for (thread, _key), stack in self.open.items():
            for sl in stack:
                sl.end = max(sl.end, last.get(thread, sl.begin))


def _thread_slices(all_steps: list[Step], result: Result) -> dict[str, list[_Slice]]:
    """Per thread: its ops (and do_exit), held locks, RCU read sections, IRQ-off
    sections and faults."""
    ops = _op_texts(result)
    sec = _Sections()
    locks = _Locks()
    last: dict[str, int] = {}
    for s in all_steps:
        if s.event in EVENT_KINDS:
            continue
        t = s.thread
        last[t] = s.step
        change = locks.apply(t, s.site, s.event, s.arg)
        if change and change[0] == "take":
            sec.begin(t, "lock:" + change[1], _Slice(s.step, s.step, short_lock(change[1]), "lock",
                                                     {"class": change[1], "at": s.site}))
        elif change:
            sec.end(t, "lock:" + change[1], s.step)
        if s.op is None and s.event not in ("thread_start", "thread_exit") and not sec.open[(t, "exit")]:
            # After its last op a thread exits (ops::do_exit): exit_mmap's locks nest in it.
            sec.begin(t, "exit", _Slice(s.step, s.step, "do_exit", "exit", {"thread": t}))
        if s.event == "thread_exit":
            sec.end(t, "exit", s.step)
        elif s.event == "op_begin":
            op = ops[(t, s.arg)]
            sec.begin(t, "op", _Slice(s.step, s.step, op.op, "op", {"thread": t, "index": s.arg,
                                                                   "op": op.op, "result": op.result}))
        elif s.event == "op_end":
            sec.end(t, "op", s.step)
        elif s.event in NESTED_BEGIN:
            sec.nest(t, NESTED_BEGIN[s.event], s)
        elif s.event in NESTED_END:
            sec.unnest(t, NESTED_END[s.event], s.step)
    sec.close_all(last)
    for thread, fault_slices in _faults(all_steps).items():
        sec.slices[thread].extend(fault_slices)
    return sec.slices


def _faults(all_steps: list[Step]) -> dict[str, list[_Slice]]:
    """Per thread, per op: the span from its first to its last step at a fault site,
    named by the handlers it went through."""
    spans: dict[tuple[str, str | None, int], list[Step]] = {}
    op_serial: dict[str, int] = {}
    for s in all_steps:
        if s.event == "op_begin":
            op_serial[s.thread] = op_serial.get(s.thread, 0) + 1
        if s.site in FAULT_SITES and s.event not in EVENT_KINDS:
            spans.setdefault((s.thread, s.op, op_serial.get(s.thread, 0)), []).append(s)
    out: dict[str, list[_Slice]] = {}
    for (thread, _op, _n), ss in spans.items():
        handlers = list(dict.fromkeys(s.site for s in ss))
        out.setdefault(thread, []).append(
            _Slice(ss[0].step, ss[-1].step, "fault: " + " > ".join(handlers), "fault",
                   {"handlers": handlers}))
    return out


def _lanes(slices: list[_Slice]) -> list[list[_Slice]]:
    """Slices split into lanes in which they nest (Perfetto requires it on a track):
    lane 0 is the thread's track; a slice that would cross one there (a lock released
    after the one taken after it) goes to the first lane where it nests."""
    rank = ["op", "exit", "fault", "rcu", "irq", "lock"]
    order = sorted(slices, key=lambda s: (s.begin, -s.end, rank.index(s.cat)))
    lanes: list[list[_Slice]] = []
    stacks: list[list[_Slice]] = []  # per lane: the slices that enclose the next one
    for sl in order:
        for lane, stack in zip(lanes, stacks):
            while stack and _ended(stack[-1], sl):
                stack.pop()
            if not stack or sl.end <= stack[-1].end:
                stack.append(sl)
                lane.append(sl)
                break
        else:
            lanes.append([sl])
            stacks.append([sl])
    return lanes or [[]]


def _ended(outer: _Slice, sl: _Slice) -> bool:
    """Whether `outer` is over when `sl` begins (a slice that begins at the step another
    ends is its sibling, unless it ends there too)."""
    return outer.end < sl.begin or (outer.end == sl.begin and sl.end > outer.end)


def to_perfetto(result: Result, name: str = "mmrace") -> dict[str, Any]:
    """The run as a Chrome trace-event JSON object (see the module's docstring)."""
    if result.trace == [] and result.step:
        raise ValueError("to_perfetto needs the run's trace: run it with trace=True")
    all_steps = steps(result)
    threads = _thread_order(result, all_steps)
    events: list[dict[str, Any]] = []
    meta = _meta(PID_THREADS, None, "process_name", f"{name}: threads", 0)
    tids: dict[str, int] = {}
    slices = _thread_slices(all_steps, result)
    next_tid = 1
    for t_index, thread in enumerate(threads):
        for lane_no, lane in enumerate(_lanes(slices.get(thread, []))):
            tid = next_tid
            next_tid += 1
            if lane_no == 0:
                tids[thread] = tid
            meta += _meta(PID_THREADS, tid, "thread_name",
                          thread if lane_no == 0 else f"{thread} (overlapping locks {lane_no})",
                          t_index * 100 + lane_no)
            events += [_complete(PID_THREADS, tid, sl) for sl in lane]
    events += _event_track(all_steps, meta)
    events.append(_failure_instant(result, tids))
    events += _lin_track(result, meta)
    events = [e for e in events if e is not None]
    events.sort(key=lambda e: (e["pid"], e["tid"], e["ts"], -e.get("dur", 0)))
    return {"traceEvents": meta + events, "displayTimeUnit": "ns",
            "otherData": {"verdict": result.verdict, "check": result.check,
                          "message": result.message, "trace_hash": result.trace_hash,
                          "schedule": result.schedule}}


def _thread_order(result: Result, all_steps: list[Step]) -> list[str]:
    """The program's threads in declaration order."""
    from mmrace import api
    try:
        declared = list(api.parse(result.reproducer).thread_names) if result.reproducer else []
    except ValueError:
        declared = []
    seen = [s.thread for s in all_steps if s.event not in EVENT_KINDS]
    return list(dict.fromkeys(declared + seen))


def _complete(pid: int, tid: int, sl: _Slice) -> dict[str, Any]:
    return {"ph": "X", "pid": pid, "tid": tid, "ts": sl.begin, "dur": sl.end - sl.begin,
            "name": sl.name, "cat": sl.cat, "args": sl.args}


def _event_track(all_steps: list[Step], meta: list[dict]) -> list[dict[str, Any]]:
    """IPIs, I/O and RCU grace periods, as instants on the events process's one track."""
    meta += _meta(PID_EVENTS, None, "process_name", "events", 1)
    meta += _meta(PID_EVENTS, 1, "thread_name", "IPIs, I/O, RCU grace periods")
    return [{"ph": "i", "s": "t", "pid": PID_EVENTS, "tid": 1, "ts": s.step,
             "name": f"{s.event} {s.site}", "cat": "event",
             "args": {"by": s.thread, "site": s.site, "arg": s.arg}}
            for s in all_steps if s.event in EVENT_KINDS]


def _failure_instant(result: Result, tids: dict[str, int]) -> dict[str, Any] | None:
    if result.ok:
        return None
    thread, step = _failure_point(result)
    args = {"verdict": result.verdict, "check": result.check, "message": result.message}
    if thread in tids:
        return {"ph": "i", "s": "t", "pid": PID_THREADS, "tid": tids[thread], "ts": step,
                "name": f"FAIL {result.check}", "cat": "failure", "args": args}
    return {"ph": "i", "s": "g", "pid": PID_THREADS, "tid": 0, "ts": step,
            "name": f"FAIL {result.check}", "cat": "failure", "args": args}


def _lin_track(result: Result, meta: list[dict]) -> list[dict[str, Any]]:
    """The failing group's ops per thread, coloured by their mark."""
    ops = lin_ops(result)
    if not ops:
        return []
    h = result.lin_history
    meta += _meta(PID_LIN, None, "process_name", f"linearizability: pages {h['pages']}", 2)
    threads = list(dict.fromkeys(o["thread"] for o in ops))
    for i, t in enumerate(threads):
        meta += _meta(PID_LIN, i + 1, "thread_name", t, i)
    return [{"ph": "X", "pid": PID_LIN, "tid": threads.index(o["thread"]) + 1, "ts": o["begin"],
             "dur": o["end"] - o["begin"], "name": f"[{o['mark']}] {o['op']} -> {o['result']}",
             "cat": "linearizability", "cname": MARK_COLOURS[o["mark"]],
             "args": {"mark": o["mark"], "op": o["op"], "result": o["result"],
                      "thread": o["thread"], "index": o["index"], "inv": o["inv"],
                      "resp": o["resp"], "linearized": h["linearized"], "of": len(ops)}}
            for o in ops]


def dumps(result: Result, name: str = "mmrace") -> str:
    return json.dumps(to_perfetto(result, name), indent=None, separators=(",", ":"))
