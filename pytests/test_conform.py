"""`mmrace conform`: the host runner on programs whose Linux results are certain, the
random generator, and the model compared with the host kernel."""
import ctypes
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

import mmrace
from mmrace import conform
from mmrace.conform import ARENA_BASE, ARENA_SIZE, random_program

RUNNER = conform.find_host_runner()
needs_host = pytest.mark.skipif(RUNNER is None, reason="mmrace-host not found (set MMRACE_HOST)")

A = ARENA_BASE
ADDR_NO_RANDOMIZE = 0x0040000  # personality(2)


def program(body: str, files: str = "", children: str = "") -> str:
    """A one-process program; `children` adds forked processes after it."""
    return ("mmrace 1\n" + textwrap.dedent(files) + "process P0\nthread P0.T0\n"
            + textwrap.indent(textwrap.dedent(body).strip() + "\n", "  ")
            + textwrap.dedent(children))


def host(text: str, **kw) -> list:
    return [op["result"] for op in conform.run_host(text, RUNNER, **kw)]


# ---------------------------------------------------------------------------------------
# The host runner on programs whose results on Linux are certain.

@needs_host
def test_unmapped_and_read_only_accesses_fault():
    text = program(f"""
        read {A:#x}
        mmap {A:#x} pages=2 prot=r flags=private,anon,fixed
        read {A + 8:#x}
        write {A:#x} 5
        mprotect {A:#x} pages=1 prot=rw
        write {A:#x} 5
        read {A:#x}
        read {A + 0x1000:#x}
        mprotect {A:#x} pages=1 prot=none
        read {A:#x}
    """)
    assert host(text) == ["SIGSEGV", hex(A), "0", "SIGSEGV", "0", "ok", "5", "0", "0", "SIGSEGV"]


@needs_host
def test_fixed_noreplace_munmap_and_holes():
    text = program(f"""
        mmap {A:#x} pages=2 prot=rw flags=private,anon,fixed
        mmap {A + 0x1000:#x} pages=2 prot=rw flags=private,anon,fixed_noreplace
        mmap {A + 0x2000:#x} pages=1 prot=rw flags=private,anon,fixed_noreplace
        munmap {A + 0x1000:#x} pages=1
        read {A + 0x1000:#x}
        mprotect {A:#x} pages=3 prot=r
        madvise {A:#x} pages=3 advice=dontneed
        munmap {A + 0x10000:#x} pages=4
    """)
    # mprotect and madvise over a hole: ENOMEM (mm/mprotect.c, mm/madvise.c); munmap of
    # nothing succeeds.
    assert host(text) == [hex(A), "EEXIST", hex(A + 0x2000), "0", "SIGSEGV", "ENOMEM",
                          "ENOMEM", "0"]


@needs_host
def test_a_hint_is_honoured_when_free():
    text = program(f"""
        mmap {A + 0x5000:#x} pages=1 prot=rw flags=private,anon
        mmap {A + 0x5000:#x} pages=1 prot=rw flags=private,anon
    """)
    first, second = host(text)
    assert first == hex(A + 0x5000)
    assert not A <= int(second, 16) < A + ARENA_SIZE  # placed top-down, far above


@needs_host
def test_private_file_writes_stay_private_and_shared_ones_reach_the_file():
    text = program(f"""
        mmap {A:#x} pages=2 prot=rw flags=private,file:F0:0
        mmap {A + 0x10000:#x} pages=2 prot=rw flags=shared,file:F0:0
        write {A:#x} 7
        read {A + 0x10000:#x}
        write {A + 0x10008:#x} 8
        read {A + 8:#x}
        read {A:#x}
        file_write F0 1 9
        read {A + 0x1000:#x}
        read {A + 0x11000:#x}
    """, files="file F0 pages=2\n")
    # The private write is a COW copy; a page the private mapping has not copied still
    # shows the file, shared stores included.
    assert host(text) == [hex(A), hex(A + 0x10000), "ok", "0", "ok", "0", "7", "ok", "9", "9"]


@needs_host
def test_sigbus_past_eof_after_truncate():
    text = program(f"""
        mmap {A:#x} pages=3 prot=rw flags=shared,file:F0:0
        mmap {A + 0x10000:#x} pages=3 prot=rw flags=private,file:F0:0
        write {A + 0x2000:#x} 1
        write {A + 0x12000:#x} 2
        truncate F0 pages=1
        read {A:#x}
        read {A + 0x2000:#x}
        read {A + 0x12000:#x}
        write {A + 0x1000:#x} 3
        truncate F0 pages=3
        read {A + 0x2000:#x}
        read {A + 0x12000:#x}
    """, files="file F0 pages=3\n")
    # truncate_pagecache unmaps even private COW copies past the new EOF (even_cows), so
    # both mappings raise SIGBUS; growing the file again reads zeroes.
    assert host(text) == [hex(A), hex(A + 0x10000), "ok", "ok", "0", "0", "SIGBUS", "SIGBUS",
                          "SIGBUS", "0", "0", "0"]


@needs_host
def test_fork_is_copy_on_write():
    text = program(f"""
        mmap {A:#x} pages=1 prot=rw flags=private,anon,fixed
        write {A:#x} 11
        fork P1
        write {A:#x} 22
        read {A:#x}
    """, children=f"""\
        process P1 forked
        thread P1.T0
          read {A:#x}
          write {A + 8:#x} 33
          read {A + 8:#x}
    """)
    assert host(text) == [hex(A), "ok", "P1", "ok", "22", "11", "ok", "33"]
    assert host(text, child_first=True) == host(text)


@needs_host
def test_a_shared_mapping_is_shared_across_fork_and_order_matters():
    text = program(f"""
        mmap {A:#x} pages=1 prot=rw flags=shared,anon,fixed
        fork P1
        write {A:#x} 5
    """, children=f"""\
        process P1 forked
        thread P1.T0
          read {A:#x}
    """)
    assert host(text) == [hex(A), "P1", "ok", "5"]  # the parent runs all its ops first
    assert host(text, child_first=True) == [hex(A), "P1", "ok", "0"]
    assert conform.order_dependence(text, RUNNER) == [
        conform.Difference("P1.T0", 0, f"read {A:#x}", "5", "0")]


@needs_host
def test_mremap_grow_move_and_shrink():
    text = program(f"""
        mmap {A:#x} pages=2 prot=rw flags=private,anon,fixed
        write {A + 0x1000:#x} 4
        mremap {A:#x} pages=2 new_pages=4
        read {A + 0x3000:#x}
        mmap {A + 0x4000:#x} pages=1 prot=rw flags=private,anon,fixed
        mremap {A:#x} pages=4 new_pages=6
        mremap {A:#x} pages=4 new_pages=2 flags=maymove,fixed to={A + 0x20000:#x}
        read {A + 0x21000:#x}
        read {A + 0x1000:#x}
        mremap {A + 0x4000:#x} pages=2 new_pages=3
        mremap {A + 0x4000:#x} pages=1 new_pages=1 flags=maymove,fixed to={A + 0x4000:#x}
    """)
    # Growing in place is blocked by the mapping at +0x4000: ENOMEM without maymove.  An
    # old range that crosses the end of its VMA is EFAULT; overlapping ranges EINVAL.
    assert host(text) == [hex(A), "ok", hex(A), "0", hex(A + 0x4000), "ENOMEM",
                          hex(A + 0x20000), "4", "SIGSEGV", "EFAULT", "EINVAL"]


@needs_host
def test_growing_a_shared_anonymous_mapping_past_its_object_raises_sigbus():
    text = program(f"""
        mmap {A:#x} pages=1 prot=rw flags=shared,anon,fixed
        mremap {A:#x} pages=1 new_pages=2
        read {A:#x}
        read {A + 0x1000:#x}
    """)
    # The shmem object behind MAP_SHARED|MAP_ANONYMOUS keeps the size it had at mmap.
    assert host(text) == [hex(A), hex(A), "0", "SIGBUS"]


@needs_host
def test_a_growsdown_mapping_grows_on_access_below_it():
    stack = A + 0x20000000
    text = program(f"""
        mmap {stack:#x} pages=2 prot=rw flags=private,anon,fixed,growsdown
        write {stack - 0x3000:#x} 6
        read {stack - 0x3000:#x}
        read {stack - 0x2000:#x}
    """)
    assert host(text) == [hex(stack), "ok", "6", "0"]


@needs_host
def test_peek_and_poke_use_foll_force():
    text = program(f"""
        mmap {A:#x} pages=1 prot=none flags=private,anon,fixed
        poke {A:#x} 3
        peek {A:#x}
        read {A:#x}
        peek {A + 0x10000:#x}
        mmap {A + 0x2000:#x} pages=1 prot=r flags=shared,file:F0:0
        poke {A + 0x2000:#x} 4
    """, files="file F0 pages=1\n")
    # FOLL_FORCE reads and writes a PROT_NONE private page (a COW write), but cannot
    # write a read-only shared mapping; /proc/self/mem reports failures as EIO.
    assert host(text) == [hex(A), "ok", "3", "SIGSEGV", "EIO", hex(A + 0x2000), "EIO"]


@needs_host
def test_madv_cold_keeps_contents_and_mappings_and_agrees_with_the_model():
    """MADV_COLD (Linux 5.4) only deactivates: private anonymous pages, a page shared with
    a child after fork and a shared file page all keep their content; a hole is ENOMEM."""
    text = program(f"""
        mmap {A:#x} pages=4 prot=rw flags=private,anon,fixed
        write {A:#x} 7
        write {A + 0x1000:#x} 8
        mmap {A + 0x10000:#x} pages=2 prot=rw flags=shared,file:F0:0,fixed
        write {A + 0x10000:#x} 9
        madvise {A:#x} pages=4 advice=cold
        madvise {A + 0x10000:#x} pages=2 advice=cold
        read {A:#x}
        read {A + 0x1000:#x}
        read {A + 0x2000:#x}
        read {A + 0x10000:#x}
        madvise {A:#x} pages=32 advice=cold
        fork P1
        madvise {A:#x} pages=2 advice=cold
        write {A:#x} 10
    """, files="file F0 pages=2\n", children="""
        process P1 forked
        thread P1.T0
          read {a:#x}
          madvise {a:#x} pages=1 advice=cold
          read {a:#x}
    """.format(a=A))
    assert host(text) == [hex(A), "ok", "ok", hex(A + 0x10000), "ok", "0", "0", "7", "8", "0",
                          "9", "ENOMEM", "P1", "0", "ok", "7", "0", "7"]
    assert conform.conform(text, RUNNER) == []


@needs_host
def test_exit_ends_the_process_and_unsupported_ops_are_marked():
    text = program(f"""
        mmap {A:#x} pages=1 prot=rw flags=private,anon,fixed
        pin {A:#x} pages=1
        exit
        read {A:#x}
    """)
    assert host(text) == [hex(A), "unsupported", "0", None]
    with pytest.raises(conform.Skipped):
        conform.conform(text, RUNNER)


def test_programs_with_pool_limits_are_skipped():
    # The host's memory is not bounded by the config line: no host equivalent.
    text = ("mmrace 1\nconfig folios=1 pgtables=8\nprocess P0\nthread P0.T0\n"
            f"  mmap {A:#x} pages=1 prot=rw flags=private,anon,fixed\n")
    with pytest.raises(conform.Skipped, match="no host equivalent: config folios=1 pgtables=8"):
        conform.conform(text, RUNNER)
    assert mmrace.parse(text).pool_limits == {"folios": 1, "pgtables": 8}
    assert mmrace.parse(program("exit")).pool_limits == {}


@needs_host
@pytest.mark.parametrize("text, message", [
    ("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x300000000000\nthread P0.T1\n"
     "  read 0x300000000000\n", "exactly one thread"),
    # Without ASLR the runner's stack is just below 0x7ffffffff000: in this range.
    ("mmrace 1\nprocess P0\nthread P0.T0\n  munmap 0x7fff00000000 pages=1048576\n", "refusing"),
    ("mmrace 1\nprocess P0\nthread P0.T0\n  read 0x300000000001\n", "aligned"),
])
def test_host_runner_errors_exit_2(text, message):
    no_aslr = lambda: ctypes.CDLL(None).personality(ADDR_NO_RANDOMIZE)  # noqa: E731
    p = subprocess.run([RUNNER, "-"], input=text, capture_output=True, text=True, timeout=60,
                       preexec_fn=no_aslr)
    assert p.returncode == 2 and message in p.stderr and p.stdout == ""


# ---------------------------------------------------------------------------------------
# The generator.

def test_random_programs_are_deterministic_valid_and_stay_in_the_arena():
    for seed in range(200):
        text = random_program(seed)
        assert random_program(seed) == text
        prog = mmrace.parse(text)
        names = prog.thread_names
        assert all(n.endswith(".T0") for n in names)
        assert len(set(n.split(".")[0] for n in names)) == len(names)  # one per process
        for addr in re.findall(r"0x[0-9a-f]+", text):
            assert A <= int(addr, 16) < A + ARENA_SIZE, (seed, addr)


def test_random_programs_cover_the_issue_list():
    text = "".join(random_program(seed) for seed in range(300))
    for word in ("fork", "shared,file:", "private,file:", "truncate", "file_write", "mremap",
                 "flags=maymove,fixed", "mprotect", "advice=dontneed", "advice=pageout",
                 "munmap", "fixed_noreplace", "growsdown", "shared,anon", "populate", "exit",
                 "peek", "poke"):
        assert word in text, word


@needs_host
def test_random_programs_do_not_depend_on_parent_child_order():
    """The generator's promise, checked on the kernel: children run first or last, the
    results are the same."""
    forking = [s for s in range(400) if "fork" in random_program(s)][:120]
    for seed in forking:
        assert conform.order_dependence(random_program(seed), RUNNER) == [], seed


def test_the_model_runs_a_parent_to_its_end_before_its_child():
    """The default schedule (replay, empty list) keeps the current thread running, so the
    model runs processes in the host runner's order: declaration order, each to its end.
    A thread that waits for I/O (file reads, swap writeback after MADV_PAGEOUT) cannot
    run, and then the lowest runnable thread does (DESIGN §2), so programs with files or
    pageout may interleave; the generator keeps their results independent of that order."""
    checked = 0
    for seed in range(300):
        text = random_program(seed)
        if "fork" not in text or "\nfile " in text or "advice=pageout" in text:
            continue
        try:
            res = mmrace.run(text, schedule=mmrace.Replay([]))
        except mmrace.NotBuilt:
            continue
        order = [who for _, who, _, ev, _ in res.trace if ev == "op_begin"]
        blocks = [w for i, w in enumerate(order) if i == 0 or order[i - 1] != w]
        declared = [n for n in mmrace.parse(text).thread_names if n in blocks]
        assert blocks == declared, seed
        checked += 1
    assert checked >= 10


# ---------------------------------------------------------------------------------------
# Comparing, and the model against the host.

def test_compare_ignores_only_addresses_the_kernel_chose_outside_the_arena():
    op = {"thread": "P0.T0", "index": 0, "op": f"mmap {A:#x} pages=1 prot=rw flags=private,anon"}
    h, m = dict(op, result="0x7f1234560000"), dict(op, result="0x7feffffff000")
    assert conform.compare([h], [m]) == []
    assert conform.compare([dict(op, result=hex(A))], [m]) != []
    assert conform.compare([dict(op, result="ENOMEM")], [m]) != []


@needs_host
def test_random_programs_conform():
    """Zero differences among the programs the model runs; skipped ones are counted."""
    outcomes = [conform.check(f"seed {s}", random_program(s), RUNNER) for s in range(1, 201)]
    differ = [(o.name, o.differences) for o in outcomes if o.status == "differ"]
    assert differ == []
    counts = {s: sum(o.status == s for o in outcomes) for s in ("identical", "skipped")}
    assert counts["identical"] + counts["skipped"] == 200
    assert counts["identical"] >= 20  # anonymous memory and fork run in every model version
    print(conform.summary(outcomes))


@needs_host
@pytest.mark.parametrize("strategy", ["spf", "pervma"])
def test_random_programs_conform_under_the_speculative_strategies(strategy):
    """A single-threaded program means the same under every strategy (issue 4)."""
    outcomes = [conform.check(f"seed {s}", conform.with_strategy(random_program(s), strategy), RUNNER)
                for s in range(1, 101)]
    assert [(o.name, o.differences) for o in outcomes if o.status == "differ"] == []
    assert sum(o.status == "identical" for o in outcomes) >= 20


def test_with_strategy_sets_or_adds_the_config():
    assert conform.with_strategy("mmrace 1\nprocess P0\nthread P0.T0\n", "spf") == \
        "mmrace 1\nconfig strategy=spf geometry=small\nprocess P0\nthread P0.T0\n"
    assert conform.with_strategy("mmrace 1\nconfig geometry=x86 strategy=classic\n", "pervma") == \
        "mmrace 1\nconfig strategy=pervma geometry=x86\n"
    assert conform.with_strategy("mmrace 1\n# kept\n", None) == "mmrace 1\n# kept\n"
    text = conform.with_strategy(random_program(3), "pervma")
    assert mmrace.parse(text) == mmrace.parse(random_program(3)).with_config(strategy="pervma")


@needs_host
def test_the_examples_conform():
    for path in ("fork_cow.mmr",):
        text = open(os.path.join(os.path.dirname(__file__), "..", "examples", path)).read()
        assert conform.conform(text, RUNNER) == []


# ---------------------------------------------------------------------------------------
# The CLI.

def mmrace_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mmrace", *args], capture_output=True,
                          text=True, timeout=300, env=env)


@needs_host
def test_cli_random_summary_and_json():
    p = mmrace_cli("conform", "--random", "30", "--seed", "5")
    assert p.returncode == 0, p.stdout + p.stderr
    last = p.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"30 programs: \d+ identical, 0 differ, \d+ skipped \(not built\)", last)
    s = mmrace_cli("conform", "--random", "10", "--seed", "5", "--strategy", "pervma")
    assert s.returncode == 0 and " 0 differ" in s.stdout, s.stdout + s.stderr
    j = mmrace_cli("conform", "--random", "30", "--seed", "5", "--json")
    out = json.loads(j.stdout)
    assert out["summary"] == last and len(out["outcomes"]) == 30


@needs_host
def test_cli_reports_a_difference_and_exits_1(tmp_path):
    """A host runner that lies about one op: the difference is printed, exit status 1."""
    fake = tmp_path / "fake-host"
    fake.write_text(f"""#!{sys.executable}
import json, subprocess, sys
out = subprocess.run([{RUNNER!r}, *sys.argv[1:]], stdin=sys.stdin, capture_output=True,
                     text=True).stdout
for line in out.splitlines():
    op = json.loads(line)
    if op["op"].startswith("read"):
        op["result"] = "SIGBUS"
    print(json.dumps(op))
""")
    fake.chmod(0o755)
    env = dict(os.environ, MMRACE_HOST=str(fake))
    p = mmrace_cli("conform", os.path.join(os.path.dirname(__file__), "..", "examples",
                                           "fork_cow.mmr"), env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert re.search(r"P1\.T0 #0 +read 0x200000 +host SIGBUS +model 11", p.stdout)
    assert p.stdout.strip().endswith("1 programs: 0 identical, 1 differ, 0 skipped (not built)")


def test_cli_usage_errors_exit_2(tmp_path):
    assert mmrace_cli("conform").returncode == 2
    bad = tmp_path / "bad.mmr"
    bad.write_text("mmrace 1\nprocess P0\nthread P0.T0\n  mmapp 0x1000\n")
    p = mmrace_cli("conform", str(bad))
    assert p.returncode == 2 and "bad.mmr:4:3" in p.stderr
    two = os.path.join(os.path.dirname(__file__), "..", "examples", "design_example.mmr")
    p = mmrace_cli("conform", two)
    assert p.returncode == 2 and "one thread per process" in p.stderr
