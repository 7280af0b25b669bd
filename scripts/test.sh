#!/usr/bin/env bash
# The whole suite: the C++ tests, the C++ tests again under ASan+UBSan, then pytest
# against the installed package.  Installs what it needs on a fresh machine.
#
#   bash scripts/test.sh         everything (what CI runs)
#   bash scripts/test.sh quick   the C++ tests and pytest, without the sanitizer build
#
# Python packages go into the active virtualenv ($VIRTUAL_ENV), else into .venv (made if
# missing; VENV=DIR picks another).  Debian packages (GoogleTest, g++, redis-server, clang,
# libclang-rt-14-dev, afl++, zip) are installed with
# apt-get when run as root or with password-less sudo; otherwise the script names the
# missing ones and stops before building anything.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
MODE=${1:-all}
case "$MODE" in
  all|quick) ;;
  *) echo "usage: bash scripts/test.sh [quick]" >&2; exit 2 ;;
esac

# --- Debian packages -------------------------------------------------------------------
have_pkg() {  # a Debian package, or (without dpkg) the file that shows it is there
  if command -v dpkg >/dev/null 2>&1; then dpkg -s "$1" >/dev/null 2>&1; else [ -e "$2" ]; fi
}
missing=()
have_pkg libgtest-dev /usr/include/gtest/gtest.h || missing+=(libgtest-dev)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
have_pkg redis-server /usr/bin/redis-server || missing+=(redis-server)
# The fuzz engines, for the smoke of `mmrace fuzz` (pytests/test_fuzz_engines.py): clang
# with its libFuzzer runtime, and AFL++.
have_pkg clang /usr/bin/clang++ || missing+=(clang)
have_pkg libclang-rt-14-dev /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a \
  || missing+=(libclang-rt-14-dev)
have_pkg afl++ /usr/bin/afl-fuzz || missing+=(afl++)
have_pkg zip /usr/bin/zip || missing+=(zip)  # fuzz/build.sh zips the seed corpora
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
  else
    echo "scripts/test.sh: missing system packages: ${missing[*]}" >&2
    echo "  install them first, e.g.: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Python: the active virtualenv, else .venv -----------------------------------------
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  VENV=$VIRTUAL_ENV
else
  VENV=${VENV:-.venv}
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
echo "== Python: $PY"
"$PY" -m pip install -q cmake ninja
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"

# --- C++ -------------------------------------------------------------------------------
# Release: the tests need no debug info, and it keeps build/ small.
echo "== C++ tests"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/ci -j "$JOBS"
ctest --test-dir build/ci -j "$JOBS" --output-on-failure

if [ "$MODE" = all ]; then
  # -g1: line tables for the sanitizers' reports, without full debug info.
  echo "== C++ tests under ASan+UBSan"
  cmake -S . -B build/ci-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
    -DMMRACE_SANITIZE=address,undefined -DMMRACE_BENCH=OFF >/dev/null
  cmake --build build/ci-asan -j "$JOBS"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/ci-asan -j "$JOBS" --output-on-failure
fi

# --- pytest against the installed package ------------------------------------------------
echo "== pytest"
"$PY" -m pip install -q ".[test]"
set +e
"$PY" -m pytest -q -p no:cacheprovider
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
