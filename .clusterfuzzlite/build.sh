#!/bin/bash -eu
# ClusterFuzzLite/OSS-Fuzz build step: the base image runs $SRC/build.sh with $CC, $CXX,
# $CFLAGS, $CXXFLAGS (the sanitizer and coverage flags of the job), $LIB_FUZZING_ENGINE,
# $SRC and $OUT set.  The harnesses' own build script does the work, so that a local
# build (pytests/test_clusterfuzzlite.py) and the infrastructure's build are one script.
# The repository is $SRC/mmrace in the image; run by hand, it is this file's parent.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -f "$here/../fuzz/build.sh" ]; then
  repo=$(cd "$here/.." && pwd)
else
  repo=$SRC/mmrace
fi
cd "$repo"
exec bash -eu fuzz/build.sh  # -eu: the flags of its #! line, which `bash FILE` ignores
