"""Running a fuzz engine on a built harness, and reading what it found and how fast.

libFuzzer runs in process: one harness process (or -fork=J workers) that stops at its
first crash and writes it as <out>/crash-<sha1>.  AFL++ runs the harness through its
libFuzzer-compatible driver: one afl-fuzz (or a -M main and -S secondaries sharing the
sync directory <out>/afl-<target>) that keeps crashes in <instance>/crashes/.  Either way
only files that appeared during this run are findings: an output directory is reused
across runs, so that a continuous campaign keeps its corpus.

The engines' own counts give the executions per second: libFuzzer's executed units
(its final stats, or in fork mode its last status line) over the run's time; AFL++'s
`execs_per_sec` in each instance's fuzzer_stats, summed over the instances.

Each engine runs in its own process group, so Ctrl-C reaches this process only; it is
forwarded to the groups (libFuzzer's -fork jobs and AFL++'s forkserver included), the
engines are given 10 s to write their stats and exit, and the findings so far are
reported.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mmrace.fuzz_build import Harness, Toolchain

STOP_GRACE_S = 10.0
POLL_S = 0.2
LIBFUZZER_ARTIFACTS = ("crash-", "leak-", "oom-", "timeout-")


@dataclass
class Options:
    seconds: float
    jobs: int
    out: Path
    env: dict[str, str]   # MMRACE_MUTANTS, MMRACE_FUZZ_COUNTERS
    seed: int | None      # the engine's random seed; None: the engine picks one
    use_seeds: bool       # start from the harness's seed corpus
    echo: bool            # copy the engine's output to stderr as it comes


@dataclass
class Outcome:
    crashes: list[Path]
    seconds: float
    execs_per_s: float | None
    interrupted: bool
    logs: list[Path] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)


def _pump(stream, log: Path, echo: bool) -> None:
    """Copies a child's output into its log (and to stderr); runs in its own thread."""
    with open(log, "ab") as f:
        for line in iter(stream.readline, b""):
            f.write(line)
            f.flush()
            if echo:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()


def _spawn(cmd: list[str], env: dict[str, str], log: Path, echo: bool):
    log.write_bytes(("$ " + " ".join(cmd) + "\n").encode())
    # Its own process group: a signal reaches libFuzzer's -fork jobs and AFL++'s
    # forkserver with it, and the engine stops when we say, not when the terminal does.
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    t = threading.Thread(target=_pump, args=(p.stdout, log, echo), daemon=True)
    t.start()
    return p, t


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)  # the group is the engine's own (start_new_session)
    except ProcessLookupError:
        pass


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGINT to each engine's group (the engines write their stats on it), then SIGKILL
    past the grace time."""
    for p in procs:
        if p.poll() is None:
            _signal_group(p, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(p, signal.SIGKILL)
            p.wait()


def _supervise(procs, threads, new_crashes, stop_at_first: bool) -> tuple[bool, float]:
    """Waits for the engines to end (or, with stop_at_first, for a first crash file);
    returns (interrupted, seconds)."""
    start = time.monotonic()
    interrupted = False
    try:
        while any(p.poll() is None for p in procs):
            if stop_at_first and new_crashes():
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.monotonic() - start
    try:
        _stop(procs)
    except KeyboardInterrupt:  # a second Ctrl-C: do not wait any longer
        for p in procs:
            _signal_group(p, signal.SIGKILL)
            p.wait()
        interrupted = True
    for t in threads:
        t.join(timeout=5)
    return interrupted, seconds


# --- libFuzzer ----------------------------------------------------------------------------


def _libfuzzer_artifacts(out: Path) -> set[Path]:
    return {p for p in out.iterdir() if p.is_file() and p.name.startswith(LIBFUZZER_ARTIFACTS)
            and p.suffix != ".mmr"}


def libfuzzer_execs_per_s(log_text: str, seconds: float) -> float | None:
    """Executions per second from libFuzzer's own counts over `seconds`: in fork mode the
    last status line's total (`#N: cov: ...`; the inner jobs' final stats in the same log
    are one job's each), else the final `stat::number_of_executed_units`; failing both,
    the last status line's exec/s."""
    fork = re.findall(r"^#(\d+): cov:", log_text, re.M)
    units = fork or re.findall(r"^stat::number_of_executed_units:\s+(\d+)", log_text, re.M)
    if units and seconds > 0:
        return int(units[-1]) / seconds
    status = re.findall(r"exec/s:? (\d+)", log_text)
    return float(status[-1]) if status else None


def run_libfuzzer(h: Harness, o: Options) -> Outcome:
    corpus = o.out / f"corpus-{h.target}"  # the engine adds what it finds; kept across runs
    corpus.mkdir(parents=True, exist_ok=True)
    before = _libfuzzer_artifacts(o.out)
    cmd = [str(h.binary), f"-max_total_time={max(1, round(o.seconds))}",
           f"-artifact_prefix={o.out}/", "-print_final_stats=1", "-timeout=60"]
    if h.dictionary:
        cmd.append(f"-dict={h.dictionary}")
    if o.seed is not None:
        cmd.append(f"-seed={o.seed}")
    if o.jobs > 1:
        cmd.append(f"-fork={o.jobs}")
    cmd.append(str(corpus))
    if o.use_seeds and h.seeds:
        cmd.append(str(h.seeds))  # read, never written: the first directory gets new inputs
    log = o.out / f"libfuzzer-{h.target}.log"
    p, t = _spawn(cmd, {**os.environ, **o.env}, log, o.echo)
    interrupted, seconds = _supervise([p], [t], lambda: False, stop_at_first=False)
    crashes = sorted(_libfuzzer_artifacts(o.out) - before, key=lambda f: f.stat().st_mtime)
    text = log.read_text(encoding="utf-8", errors="replace")
    return Outcome(crashes, seconds, libfuzzer_execs_per_s(text, seconds), interrupted, [log],
                   [p.returncode])


# --- AFL++ --------------------------------------------------------------------------------


def _afl_env(o: Options) -> dict[str, str]:
    env = {**os.environ, **o.env,
           "AFL_SKIP_CPUFREQ": "1",       # a sandbox or VM has no cpufreq governor to check
           "AFL_NO_UI": "1",              # plain status lines into the log, no curses screen
           "AFL_NO_AFFINITY": "1",        # cores shared with other jobs: do not bind one
           "AFL_AUTORESUME": "1",         # reuse <out>/afl-<target> and its queue
           "AFL_BENCH_UNTIL_CRASH": "1"}  # stop at the first crash, as libFuzzer does
    try:
        piped = Path("/proc/sys/kernel/core_pattern").read_text().startswith("|")
    except OSError:
        piped = False
    if piped:  # cores go to a helper (apport, systemd-coredump) that a sandbox cannot change
        env["AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES"] = "1"
    return env


def _afl_crashes(sync: Path) -> set[Path]:
    return {p for p in sync.glob("*/crashes/id:*") if p.is_file()}


def afl_execs_per_s(sync: Path) -> float | None:
    """The sum over the instances of fuzzer_stats' execs_per_sec."""
    rates = []
    for stats in sorted(sync.glob("*/fuzzer_stats")):
        m = re.search(r"^execs_per_sec\s*:\s*([\d.]+)", stats.read_text(errors="replace"), re.M)
        if m:
            rates.append(float(m.group(1)))
    return sum(rates) if rates else None


def _afl_seeds(h: Harness, o: Options) -> Path:
    """The harness's seed corpus, else a directory with one zero byte: afl-fuzz wants an
    input to start from."""
    if o.use_seeds and h.seeds and any(h.seeds.iterdir()):
        return h.seeds
    empty = o.out / f"afl-start-{h.target}"
    empty.mkdir(parents=True, exist_ok=True)
    (empty / "zero").write_bytes(b"\0")
    return empty


def run_afl(h: Harness, tc: Toolchain, o: Options) -> Outcome:
    sync = o.out / f"afl-{h.target}"
    sync.mkdir(parents=True, exist_ok=True)
    before = _afl_crashes(sync)
    for stale in sync.glob("*/fuzzer_stats"):  # only this run's rates count
        stale.unlink()
    env = _afl_env(o)
    procs, threads, logs = [], [], []
    for i in range(o.jobs):
        # -Z: the queue in order, seeds first.  Every new pair of racing sites is an edge
        # to AFL++ (the interleaving counters), so its queue grows by thousands and its
        # weighted pick seldom comes back to the seeds, the catalogue's races: without -Z
        # AFL++ missed pervma_fork_no_vma_write_lock in 300 s at 2 of 2 seeds; with it,
        # it found it in 24 s (spf's mutants: as fast either way).
        cmd = [tc.fuzzer, "-Z", "-i", str(_afl_seeds(h, o)), "-o", str(sync),
               "-V", str(max(1, round(o.seconds)))]
        if o.jobs > 1:
            cmd += ["-M", "main"] if i == 0 else ["-S", f"secondary{i}"]
        if h.dictionary:
            cmd += ["-x", str(h.dictionary)]
        if o.seed is not None:
            cmd += ["-s", str(o.seed + i)]
        cmd += ["--", str(h.binary)]
        logs.append(o.out / f"afl-{h.target}-{i}.log")
        p, t = _spawn(cmd, env, logs[-1], o.echo and i == 0)
        procs.append(p)
        threads.append(t)
    interrupted, seconds = _supervise(procs, threads, lambda: bool(_afl_crashes(sync) - before),
                                      stop_at_first=True)
    crashes = sorted(_afl_crashes(sync) - before, key=lambda f: f.stat().st_mtime)
    return Outcome(crashes, seconds, afl_execs_per_s(sync), interrupted, logs,
                   [p.returncode for p in procs])
