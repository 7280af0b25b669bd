#!/usr/bin/env bash
# The soak on fresh seeds: the first seed is drawn from the commit under test (its
# hash's first 8 hex digits), so that each commit's soak covers workloads no earlier
# soak ran, as well as the old range (`soak N 0 all`) that has become a regression set.
#   bench/soak_fresh.sh [PROGRAMS=20000] [STRATEGY=all] [SOAK=build/rel/bench/soak]
set -euo pipefail
cd "$(dirname "$0")/.."
programs=${1:-20000}
strategy=${2:-all}
soak=${3:-build/rel/bench/soak}
base=$((16#$(git rev-parse --short=8 HEAD)))
echo "soak $programs $base $strategy  (base from commit $(git rev-parse --short=8 HEAD))"
exec "$soak" "$programs" "$base" "$strategy"
