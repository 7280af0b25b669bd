"""The fuzz engines for real (issue 17): the ClusterFuzzLite build script against a local
$OUT, CI's smoke of each engine on fuzz_program and fuzz_spf with no mutant, and a
libFuzzer run through `mmrace fuzz` that finds a mutant.

Two builds of the core, not three, keep CI's share small: the libFuzzer runs use the
harnesses .clusterfuzzlite/build.sh put in $OUT (`mmrace fuzz --harness-dir`), and the
AFL++ smoke builds its harness the way a user's first `mmrace fuzz` does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mmrace import _core, fuzz_build

ROOT = Path(__file__).resolve().parent.parent
SMOKE_SECONDS = 3
# OSS-Fuzz's flags for its address job, with UBSan's checks beside ASan's and made fatal:
# every libFuzzer run below (the seed corpora, the smoke, the spf mutant) is a run of the
# harnesses under ASan+UBSan.
OSS_FUZZ_FLAGS = ("-O1 -fno-omit-frame-pointer -gline-tables-only -fsanitize=address,undefined "
                  "-fsanitize-address-use-after-scope -fno-sanitize-recover=undefined "
                  "-fsanitize=fuzzer-no-link")

pytestmark = pytest.mark.skipif(not hasattr(_core, "fuzz_targets"),
                                reason="this mmrace has no fuzz bindings")


def mmrace_cli(*args, timeout=1800):
    return subprocess.run([sys.executable, "-m", "mmrace", *args], capture_output=True,
                          text=True, timeout=timeout)


def _engine_or_skip(engine: str) -> None:
    try:
        fuzz_build.toolchain(engine)
    except fuzz_build.SetupError as e:
        pytest.skip(str(e))


def _oss_fuzz_build_missing() -> str | None:
    if not shutil.which("clang++"):
        return "clang++ is not installed: apt-get install clang libclang-rt-14-dev"
    if not (ROOT / "fuzz" / "build.sh").is_file():
        return "fuzz/build.sh (the OSS-Fuzz build the ClusterFuzzLite one calls) is not in the tree"
    return None


@pytest.fixture(scope="module")
def oss_fuzz_out(tmp_path_factory) -> Path:
    """$OUT after .clusterfuzzlite/build.sh ran with clang and libFuzzer."""
    if _oss_fuzz_build_missing():
        pytest.skip(_oss_fuzz_build_missing())
    out, work = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("work")
    env = {**os.environ, "SRC": str(ROOT.parent), "OUT": str(out), "WORK": str(work),
           "CC": "clang", "CXX": "clang++", "CFLAGS": OSS_FUZZ_FLAGS,
           "CXXFLAGS": OSS_FUZZ_FLAGS, "LIB_FUZZING_ENGINE": "-fsanitize=fuzzer"}
    p = subprocess.run(["bash", str(ROOT / ".clusterfuzzlite" / "build.sh")], env=env,
                       capture_output=True, text=True, timeout=3600)
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    return out


@pytest.fixture(scope="module")
def libfuzzer_dir(request) -> Path:
    """Where the libFuzzer harnesses are: $OUT of the ClusterFuzzLite build, else (without
    fuzz/build.sh) the build `mmrace fuzz` makes."""
    _engine_or_skip("libfuzzer")
    if _oss_fuzz_build_missing() is None:
        return request.getfixturevalue("oss_fuzz_out")
    for target in ("program", "spf"):
        fuzz_build.build("libfuzzer", target)
    return fuzz_build.cache_dir("libfuzzer", False) / "fuzz"


def test_build_sh_puts_each_harness_its_seed_corpus_and_the_dict_in_out(oss_fuzz_out):
    # binary inputs have no dictionary: only the parser's target has one
    assert (oss_fuzz_out / "fuzz_mmr_parser.dict").read_text().strip()
    for target in _core.fuzz_targets():
        harness = oss_fuzz_out / f"fuzz_{target}"
        assert harness.is_file() and os.access(harness, os.X_OK), harness
        seeds = oss_fuzz_out / f"fuzz_{target}_seed_corpus.zip"
        with zipfile.ZipFile(seeds) as z:
            assert z.namelist(), f"{seeds} is empty"


def test_a_harness_from_out_runs_its_seed_corpus(oss_fuzz_out, tmp_path):
    with zipfile.ZipFile(oss_fuzz_out / "fuzz_program_seed_corpus.zip") as z:
        z.extractall(tmp_path / "seeds")
    p = subprocess.run([str(oss_fuzz_out / "fuzz_program"), "-runs=300", str(tmp_path / "seeds")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Done 300 runs" in p.stderr


@pytest.mark.parametrize("target", ["program", "spf"])
def test_libfuzzer_smoke_finds_nothing_without_a_mutant(libfuzzer_dir, target, tmp_path):
    p = mmrace_cli("fuzz", "--engine", "libfuzzer", "--target", target, "--harness-dir",
                   str(libfuzzer_dir), "--seconds", str(SMOKE_SECONDS), "--json", "--out",
                   str(tmp_path))
    assert p.returncode == 0, (p.stdout, p.stderr)
    out = json.loads(p.stdout)
    assert out["found"] is False and out["reproducer"] is None
    assert out["execs_per_s"] > 0


@pytest.mark.parametrize("target", ["program", "spf"])
def test_afl_smoke_builds_its_harness_and_finds_nothing_without_a_mutant(target, tmp_path):
    _engine_or_skip("afl")
    p = mmrace_cli("fuzz", "--engine", "afl", "--target", target, "--seconds",
                   str(SMOKE_SECONDS), "--json", "--out", str(tmp_path))
    assert p.returncode == 0, (p.stdout, p.stderr)
    out = json.loads(p.stdout)
    assert out["found"] is False and out["execs_per_s"] > 0
    assert fuzz_build.cache_dir("afl", False).joinpath("fuzz", f"fuzz_{target}").is_file()


def test_libfuzzer_finds_a_spf_mutant_and_its_reproducer_replays(libfuzzer_dir, tmp_path):
    """The whole way through, from the seed corpus (the fixed shape's seeds, none of them
    a finding without the mutant): a crash, its .mmr, the same failure when replayed."""
    p = mmrace_cli("fuzz", "--engine", "libfuzzer", "--target", "spf", "--mutant",
                   "spf_no_pmd_recheck", "--harness-dir", str(libfuzzer_dir), "--seconds", "300",
                   "--seed", "1", "--json", "--out", str(tmp_path))
    assert p.returncode == 1, (p.stdout, p.stderr)
    out = json.loads(p.stdout)
    assert out["found"] is True and out["execs_per_s"] > 0
    finding = out["findings"][0]
    assert Path(finding["crash"]).is_file() and finding["reproducer"] == out["reproducer"]
    assert finding["verdict"] == "violation" and finding["replay_error"] is None
    replay = mmrace_cli("run", out["reproducer"], "--json")
    assert replay.returncode == 1
    run = json.loads(replay.stdout)
    assert (run["verdict"], run["check"]) == (finding["verdict"], finding["check"])
    assert "mutants=spf_no_pmd_recheck" in run["program"]
    # without the mutant the same program and schedule pass
    clean = Path(out["reproducer"]).read_text().replace(" mutants=spf_no_pmd_recheck", "")
    (tmp_path / "clean.mmr").write_text(clean)
    assert mmrace_cli("run", str(tmp_path / "clean.mmr")).returncode == 0
