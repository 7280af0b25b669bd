#!/usr/bin/env bash
# The whole suite: the C++ tests, the C++ tests again under ASan+UBSan, then pytest
# against the installed package.  Installs what it needs (apt, pip) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

need_apt=()
dpkg -s libgtest-dev >/dev/null 2>&1 || need_apt+=(libgtest-dev)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
if ((${#need_apt[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q cmake ninja
export PATH="$PWD/$VENV/bin:$PATH"

echo "== C++ tests"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/ci -j "$JOBS"
ctest --test-dir build/ci -j "$JOBS" --output-on-failure

echo "== C++ tests under ASan+UBSan"
cmake -S . -B build/ci-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DMMRACE_SANITIZE=address,undefined -DMMRACE_BENCH=OFF >/dev/null
cmake --build build/ci-asan -j "$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/ci-asan -j "$JOBS" --output-on-failure

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
