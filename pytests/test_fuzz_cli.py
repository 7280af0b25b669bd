"""`mmrace fuzz`: its usage errors, the engine checks, convert's round trip and the
engines' statistics (issue 17).  The engines themselves run in test_fuzz_engines.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmrace import _core, fuzz_build, fuzz_engine

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "examples" / "mutants"
needs_fuzz_bindings = pytest.mark.skipif(not hasattr(_core, "fuzz_targets"),
                                         reason="this mmrace has no fuzz bindings")


def mmrace_cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "mmrace", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _stub(bindir: Path, name: str, body: str) -> None:
    f = bindir / name
    f.write_text("#!/bin/sh\n" + body + "\n")
    f.chmod(0o755)


# --- usage errors: exit 2 and a message naming what is wrong --------------------------


@pytest.mark.parametrize("args, message", [
    ([], "--engine and --target required"),
    (["--engine", "libfuzzer"], "--target required"),
    (["--engine", "honggfuzz", "--target", "spf"], "invalid choice: 'honggfuzz'"),
    (["--engine", "afl", "--target", "spf", "--seconds", "0"], "expected a positive number of seconds"),
    (["--engine", "afl", "--target", "spf", "--jobs", "two"], "expected a positive number of processes"),
    (["--engine", "afl", "--target", "spf", "--seed", "0"], "expected a seed in [1, 2^31)"),
])
def test_bad_arguments_exit_2_naming_what_is_wrong(args, message):
    p = mmrace_cli("fuzz", *args)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert "Traceback" not in p.stderr


@needs_fuzz_bindings
@pytest.mark.parametrize("args, message", [
    (["--target", "spff"], "--target spff: unknown target (did you mean spf?)"),
    (["--target", "spf", "--mutant", "spf_no_pmd_rechek"],
     "--mutant spf_no_pmd_rechek: unknown mutant (did you mean spf_no_pmd_recheck?"),
    (["--target", "pervma", "--mutant", "spf_no_pmd_recheck"],
     "--mutant spf_no_pmd_recheck: a mutant of spf; target pervma runs pervma"),
    (["--target", "spf", "--mutant", "spf_no_vma_refcount"], "not built yet"),
])
def test_bad_targets_and_mutants_exit_2_before_anything_is_built(args, message, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    p = mmrace_cli("fuzz", "--engine", "libfuzzer", *args, "--out", str(tmp_path / "out"),
                   env=env)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


@needs_fuzz_bindings
@pytest.mark.parametrize("engine, stubs, message", [
    ("libfuzzer", {}, "apt-get install clang libclang-rt-"),
    # clang 14 without its runtime: -print-file-name echoes the name it did not find
    ("libfuzzer", {"clang++": 'case "$1" in --version) echo "Debian clang version 14.0.6";; '
                              '-print-file-name=*) echo "${1#-print-file-name=}";; esac'},
     "apt-get install libclang-rt-14-dev"),
    ("afl", {}, "apt-get install afl++"),
])
def test_a_missing_engine_exits_2_with_the_apt_command(engine, stubs, message, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in stubs.items():
        _stub(bindir, name, body)
    env = {**os.environ, "PATH": str(bindir), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    p = mmrace_cli("fuzz", "--engine", engine, "--target", "spf", "--out",
                   str(tmp_path / "out"), env=env)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert not (tmp_path / "cache").exists()


# --- convert ----------------------------------------------------------------------------


def _run_json(path: Path) -> dict:
    p = mmrace_cli("run", str(path), "--json")
    return json.loads(p.stdout)


@needs_fuzz_bindings
@pytest.mark.parametrize("target, mutant", [("program", "dirty_cow"),
                                            ("program", "spf_no_pmd_recheck")])
def test_convert_round_trips_a_reproducer_through_its_bytes(target, mutant, tmp_path):
    """encode(reproducer) -> bytes -> `mmrace fuzz convert` -> .mmr: the same failure,
    and encoding the converted text gives the same bytes."""
    original = (MUTANTS / f"{mutant}.mmr").read_text()
    crash = tmp_path / "crash-1"
    crash.write_bytes(_core.fuzz_encode(target, original))
    out = tmp_path / "crash-1.mmr"
    p = mmrace_cli("fuzz", "convert", str(crash), "--target", target, "--mutant", mutant,
                   "-o", str(out))
    assert p.returncode == 0, p.stderr
    want, got = _run_json(MUTANTS / f"{mutant}.mmr"), _run_json(out)
    assert (got["verdict"], got["check"]) == (want["verdict"], want["check"]) != ("ok", None)
    assert _core.fuzz_encode(target, out.read_text()) == crash.read_bytes()
    printed = mmrace_cli("fuzz", "convert", str(crash), "--target", target, "--mutant", mutant)
    assert printed.stdout == out.read_text()


@needs_fuzz_bindings
def test_convert_errors_exit_2(tmp_path):
    p = mmrace_cli("fuzz", "convert", str(tmp_path / "missing"))
    assert p.returncode == 2 and "missing: No such file or directory" in p.stderr
    (tmp_path / "x").write_bytes(b"\1\2\3")
    p = mmrace_cli("fuzz", "convert", str(tmp_path / "x"), "--target", "nope")
    assert p.returncode == 2 and "--target nope: unknown target" in p.stderr


@needs_fuzz_bindings
def test_convert_decodes_any_bytes_to_a_program_that_runs(tmp_path):
    """The decoder is total: random bytes become a program `mmrace run` accepts."""
    import random
    rnd = random.Random(17)
    for i in range(5):
        f = tmp_path / f"in{i}"
        f.write_bytes(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))))
        out = tmp_path / f"in{i}.mmr"
        assert mmrace_cli("fuzz", "convert", str(f), "--target", "spf", "-o",
                          str(out)).returncode == 0
        assert mmrace_cli("run", str(out)).returncode in (0, 1)


# --- the engines' statistics ----------------------------------------------------------


def test_libfuzzer_rate_is_its_executed_units_over_the_time():
    final = ("#65536\tpulse  cov: 10 ft: 12 corp: 3/9b exec/s: 21845 rss: 40Mb\n"
             "stat::number_of_executed_units: 700000\nstat::average_exec_per_sec:     23333\n")
    assert fuzz_engine.libfuzzer_execs_per_s(final, 20.0) == 35000
    # fork mode: the outer status lines count every job; an inner job's stats are its own
    fork = ("#1000: cov: 10 ft: 12 corp: 3 exec/s 1500 oom/timeout/crash: 0/0/0 time: 2s\n"
            "stat::number_of_executed_units: 400\n"
            "#5000: cov: 11 ft: 13 corp: 4 exec/s 2500 oom/timeout/crash: 0/0/0 time: 4s\n")
    assert fuzz_engine.libfuzzer_execs_per_s(fork, 2.0) == 2500
    assert fuzz_engine.libfuzzer_execs_per_s("#2\tINITED exec/s: 7 rss: 1Mb\n", 0.0) == 7
    assert fuzz_engine.libfuzzer_execs_per_s("INFO: Seed: 1\n", 1.0) is None


def test_afl_rate_sums_the_instances_fuzzer_stats(tmp_path):
    for name, rate in (("main", "1200.50"), ("secondary1", "800.25")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "fuzzer_stats").write_text(
            f"start_time        : 1\nexecs_done        : 9\nexecs_per_sec     : {rate}\n")
    assert fuzz_engine.afl_execs_per_s(tmp_path) == pytest.approx(2000.75)
    assert fuzz_engine.afl_execs_per_s(tmp_path / "main" / "queue") is None


# --- the sources a build reads --------------------------------------------------------


def test_the_package_carries_the_sources_a_fuzz_build_reads():
    pkg = Path(fuzz_build.__file__).resolve().parent
    if pkg == ROOT / "bindings" / "mmrace":
        pytest.skip("mmrace runs from the checkout, not from an installed package")
    assert fuzz_build.source_dir() == pkg / "_src"
    for part in fuzz_build.SOURCE_PARTS:
        assert (pkg / "_src" / part).exists(), part
    assert not (pkg / "_src" / "cpp_core" / "tests").exists()


def test_the_source_hash_follows_content_not_mtimes(tmp_path):
    for part in fuzz_build.SOURCE_PARTS:
        p = tmp_path / part
        if part.endswith(".txt"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("project(x)\n")
        else:
            p.mkdir(parents=True, exist_ok=True)
            (p / "a.cpp").write_text("int a;\n")
    first = fuzz_build.source_hash(tmp_path)
    os.utime(tmp_path / "fuzz" / "a.cpp", (1, 1))
    assert fuzz_build.source_hash(tmp_path) == first
    (tmp_path / "fuzz" / "a.cpp").write_text("int b;\n")
    assert fuzz_build.source_hash(tmp_path) != first
    (tmp_path / "fuzz" / "a.cpp").write_text("int a;\n")
    (tmp_path / "fuzz" / "b.cpp").write_text("")
    assert fuzz_build.source_hash(tmp_path) != first


def test_a_build_directory_configured_from_another_install_is_reconfigured(tmp_path):
    """Two virtualenvs share $XDG_CACHE_HOME/mmrace/fuzz: CMake refuses a build directory
    made for another source directory, so the second install's build drops that cache."""
    cmake = fuzz_build._build_tool("cmake")
    srcs = [tmp_path / "venv-a" / "_src", tmp_path / "venv-b" / "_src"]
    for s in srcs:
        s.mkdir(parents=True)
        (s / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.15)\nproject(p NONE)\n")
    bdir = tmp_path / "cache"

    def configure(src):
        return subprocess.run([cmake, "-S", str(src), "-B", str(bdir)], capture_output=True, text=True)

    assert configure(srcs[0]).returncode == 0
    assert not fuzz_build.forget_other_source(bdir, srcs[0])  # its own: kept
    refused = configure(srcs[1])
    assert refused.returncode != 0 and "does not match the source" in refused.stderr
    assert fuzz_build.forget_other_source(bdir, srcs[1])
    assert configure(srcs[1]).returncode == 0
    assert not fuzz_build.forget_other_source(bdir, srcs[1])
