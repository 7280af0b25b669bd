"""The fuzz harnesses that `mmrace fuzz` runs: finding an engine's toolchain, and
building the harnesses from the C++ sources into a cache directory.

A pip-installed mmrace carries the sources it was built from (mmrace/_src: the top-level
CMakeLists.txt, cpp_core/ without its tests, fuzz/; bindings/fuzz_sources.cmake installs
them), so `mmrace fuzz` works from a fresh virtualenv, not only from a checkout.  Each
engine (and each sanitizer setting) has its own build directory under
$XDG_CACHE_HOME/mmrace/fuzz/<version>-<engine>[-asan].  A harness is rebuilt when the
SHA-256 of the sources differs from the one it was built from: a reinstall rewrites every
file's mtime, and Ninja alone would then recompile all of them even when nothing changed.
Two `mmrace fuzz` starting at once serialise on a lock file in the build directory.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ENGINES = ("libfuzzer", "afl")

# What the hash covers and what the wheel ships: everything a fuzz build reads.
SOURCE_PARTS = ("CMakeLists.txt", "cpp_core/CMakeLists.txt", "cpp_core/include",
                "cpp_core/src", "fuzz")


class SetupError(Exception):
    """Something the user must install or fix before fuzzing; the message says what
    (for a missing engine, the apt-get command).  `mmrace fuzz` exits 2 on it."""


class BuildError(Exception):
    """The harness did not build: a bug of mmrace, not of the user's input."""


@dataclass(frozen=True)
class Toolchain:
    engine: str
    cc: str
    cxx: str
    fuzzer: str | None  # afl-fuzz; None for libFuzzer, which links into the harness


@dataclass(frozen=True)
class Harness:
    target: str
    binary: Path
    dictionary: Path | None
    seeds: Path | None


def _clang_major(cxx: str) -> int | None:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"clang version (\d+)", out)
    return int(m.group(1)) if m else None


def _debian_clang_major() -> int | None:
    """The clang major version Debian's `clang` package would install (apt's local
    metadata, no network), so the message names the right libclang-rt package."""
    if not shutil.which("apt-cache"):
        return None
    try:
        out = subprocess.run(["apt-cache", "depends", "clang"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Depends: clang-(\d+)\b", out)
    return int(m.group(1)) if m else None


def _find_clang() -> str | None:
    """clang++ on PATH, else the highest clang++-N."""
    if shutil.which("clang++"):
        return shutil.which("clang++")
    versioned = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for p in Path(d).glob("clang++-[0-9]*") if d and Path(d).is_dir() else []:
            if p.name[len("clang++-"):].isdigit() and os.access(p, os.X_OK):
                versioned.append((int(p.name[len("clang++-"):]), str(p)))
    return max(versioned)[1] if versioned else None


def _libfuzzer_toolchain() -> Toolchain:
    cxx = _find_clang()
    if cxx is None:
        major = _debian_clang_major()
        rt = f"libclang-rt-{major}-dev" if major else "libclang-rt-dev"
        raise SetupError(f"--engine libfuzzer needs clang with its libFuzzer runtime; clang++ "
                         f"is not on PATH.  Install them: apt-get install clang {rt}")
    major = _clang_major(cxx)
    runtime = f"libclang_rt.fuzzer-{platform.machine()}.a"
    found = subprocess.run([cxx, f"-print-file-name={runtime}"], capture_output=True,
                           text=True, timeout=30).stdout.strip()
    if not os.path.isabs(found) or not os.path.isfile(found):
        pkg = f"libclang-rt-{major}-dev" if major else "libclang-rt-dev"
        raise SetupError(f"--engine libfuzzer: {cxx} (clang {major}) has no libFuzzer runtime "
                         f"({runtime}).  Install it: apt-get install {pkg}")
    cc = cxx.replace("clang++", "clang")
    return Toolchain("libfuzzer", cc if shutil.which(cc) else "clang", cxx, None)


def _afl_toolchain() -> Toolchain:
    tools = {t: shutil.which(t) for t in ("afl-fuzz", "afl-clang-fast", "afl-clang-fast++")}
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        raise SetupError(f"--engine afl needs AFL++; {', '.join(missing)} not on PATH.  "
                         f"Install it: apt-get install afl++")
    return Toolchain("afl", tools["afl-clang-fast"], tools["afl-clang-fast++"], tools["afl-fuzz"])


def toolchain(engine: str) -> Toolchain:
    """The compilers and fuzzer of `engine`; SetupError names the apt-get command."""
    if engine == "libfuzzer":
        return _libfuzzer_toolchain()
    if engine == "afl":
        return _afl_toolchain()
    raise SetupError(f"--engine {engine}: unknown engine (libfuzzer or afl)")


def _build_tool(name: str) -> str:
    """cmake or ninja: on PATH, else next to this Python (a venv's pip-installed ones)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise SetupError(f"building the harnesses needs {name}, which is not on PATH.  "
                         f"Install it: {sys.executable} -m pip install cmake ninja")
    return found


def source_dir() -> Path:
    """The C++ sources: those shipped in the package, else the checkout it runs from."""
    here = Path(__file__).resolve().parent
    for root in (here / "_src", here.parent.parent):
        if all((root / part).exists() for part in SOURCE_PARTS):
            return root
    raise SetupError(f"the C++ sources are not in this mmrace package ({here / '_src'}) "
                     "nor in a checkout around it; reinstall it with pip from the source tree")


def source_hash(root: Path) -> str:
    """SHA-256 over the relative path and the bytes of every file a fuzz build reads."""
    h = hashlib.sha256()
    for part in SOURCE_PARTS:
        p = root / part
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(f.relative_to(root).as_posix().encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def cache_dir(engine: str, sanitize: bool) -> Path:
    from mmrace import __version__
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mmrace" / "fuzz" / f"{__version__}-{engine}{'-asan' if sanitize else ''}"


def harness_files(src: Path, target: str) -> tuple[Path | None, Path | None]:
    """(dictionary, seed corpus directory) of a target, beside the harnesses in fuzz/."""
    fuzz = src / "fuzz"
    dictionary = next((p for p in (fuzz / f"{target}.dict", fuzz / f"fuzz_{target}.dict",
                                   fuzz / "dict" / f"{target}.dict") if p.is_file()), None)
    seeds = fuzz / "corpus" / target  # fuzz/seeds/ holds the .mmr texts they come from
    seeds = seeds if seeds.is_dir() and any(seeds.iterdir()) else None
    return dictionary, seeds


def _configure_args(src: Path, bdir: Path, tc: Toolchain, sanitize: bool) -> list[str]:
    args = [_build_tool("cmake"), "-S", str(src), "-B", str(bdir), "-G", "Ninja",
            f"-DCMAKE_MAKE_PROGRAM={_build_tool('ninja')}",
            "-DCMAKE_BUILD_TYPE=Release", "-DMMRACE_TESTS=OFF", "-DMMRACE_BENCH=OFF",
            "-DMMRACE_FUZZ=ON", f"-DMMRACE_FUZZ_ENGINE={tc.engine}",
            f"-DMMRACE_FUZZ_SANITIZE={'ON' if sanitize else 'OFF'}",
            f"-DCMAKE_C_COMPILER={tc.cc}", f"-DCMAKE_CXX_COMPILER={tc.cxx}"]
    if shutil.which("ccache"):  # a rebuild after a reinstall costs seconds, not minutes
        args += ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    return args


def _run_logged(cmd: list[str], log: Path, env: dict[str, str]) -> None:
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise BuildError(f"`{' '.join(cmd[:2])} ...` failed (exit {rc}); the log is {log}:\n"
                         + "\n".join("  " + line for line in tail))


def forget_other_source(bdir: Path, src: Path) -> bool:
    """Drop the CMake cache of bdir if another installation's sources configured it (a
    second virtualenv, a reinstall elsewhere): CMake refuses a build directory made for
    another source directory.  True if it was dropped."""
    cache = bdir / "CMakeCache.txt"
    if not cache.is_file():
        return False
    m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$",
                  cache.read_text(encoding="utf-8", errors="replace"), re.M)
    if m and Path(m.group(1)).resolve() == src.resolve():
        return False
    cache.unlink()
    shutil.rmtree(bdir / "CMakeFiles", ignore_errors=True)
    return True


def build(engine: str, target: str, sanitize: bool = False, notify=None) -> Harness:
    """The harness fuzz_<target> for `engine`, built if missing or stale.  `notify` gets
    one line before a build starts (it takes minutes the first time)."""
    tc = toolchain(engine)
    src = source_dir()
    digest = source_hash(src)
    bdir = cache_dir(engine, sanitize)
    bdir.mkdir(parents=True, exist_ok=True)
    binary = bdir / "fuzz" / f"fuzz_{target}"
    stamp = bdir / "fuzz" / f"fuzz_{target}.sha256"
    with open(bdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        current = stamp.is_file() and stamp.read_text().strip() == digest
        if not (current and binary.is_file()):
            if notify:
                notify(f"building fuzz_{target} for {engine}{' with ASan+UBSan' if sanitize else ''}"
                       f" in {bdir} (log: {bdir / 'build.log'})")
            env = dict(os.environ)
            log = bdir / "build.log"
            log.write_text("")
            forget_other_source(bdir, src)
            _run_logged(_configure_args(src, bdir, tc, sanitize), log, env)
            _run_logged([_build_tool("cmake"), "--build", str(bdir), "--target",
                         f"fuzz_{target}"], log, env)
            if not binary.is_file():
                raise BuildError(f"the build did not produce {binary} (log: {log})")
            stamp.write_text(digest + "\n")
    dictionary, seeds = harness_files(src, target)
    return Harness(target, binary, dictionary, seeds)


def prebuilt(directory: str | Path, target: str) -> Harness:
    """fuzz_<target> from a build made elsewhere: a CMake build directory (its fuzz/) or
    an OSS-Fuzz $OUT.  The dictionary and seed corpus still come from the sources."""
    d = Path(directory)
    binary = next((p for p in (d / f"fuzz_{target}", d / "fuzz" / f"fuzz_{target}")
                   if p.is_file() and os.access(p, os.X_OK)), None)
    if binary is None:
        raise SetupError(f"--harness-dir {d}: no executable fuzz_{target} in it (nor in its fuzz/)")
    dictionary, seeds = harness_files(source_dir(), target)
    return Harness(target, binary.resolve(), dictionary, seeds)
