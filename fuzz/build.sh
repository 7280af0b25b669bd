#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build of mmrace's fuzz harnesses (fuzz/README.md).
# The infrastructure sets $CXX, $CXXFLAGS (sanitizer and coverage flags), $LIB_FUZZING_ENGINE,
# $SRC and $OUT; to try it here:
#   CC=clang CXX=clang++ CXXFLAGS="-fsanitize=address,fuzzer-no-link" \
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer SRC=$PWD/.. OUT=/tmp/out fuzz/build.sh
# It writes $OUT/fuzz_<target>, $OUT/fuzz_<target>_seed_corpus.zip (the committed corpus,
# fuzz/make_seeds.py) and, for the parser, $OUT/fuzz_mmr_parser.dict.
SRC_DIR=${MMRACE_SRC:-$SRC/mmrace}
[ -f "$SRC_DIR/CMakeLists.txt" ] || SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${WORK:-/tmp}/mmrace-fuzz-build

cmake -S "$SRC_DIR" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_CXX_FLAGS="$CXXFLAGS" -DCMAKE_C_FLAGS="${CFLAGS:-}" \
  -DMMRACE_FUZZ=ON -DMMRACE_FUZZ_ENGINE=external -DMMRACE_FUZZ_LINK="$LIB_FUZZING_ENGINE" \
  -DMMRACE_TESTS=OFF -DMMRACE_BENCH=OFF
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}"

mkdir -p "$OUT"
for target in program spf pervma gup mmr_parser; do
  cp "$BUILD/fuzz/fuzz_$target" "$OUT/"
  rm -f "$OUT/fuzz_${target}_seed_corpus.zip"
  (cd "$SRC_DIR/fuzz/corpus/$target" && zip -q -j "$OUT/fuzz_${target}_seed_corpus.zip" ./*)
done
cp "$SRC_DIR/fuzz/mmr_parser.dict" "$OUT/fuzz_mmr_parser.dict"
