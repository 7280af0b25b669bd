"""The pytest plugin (_mmrace_pytestplugin, entry point pytest11): its options, marker,
fixture, report section and saved reproducers, each seen from a pytest run of its own."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import mmrace

pytest_plugins = ["pytester"]

MUTANTS = Path(__file__).resolve().parent.parent / "examples" / "mutants"
LOCK_ORDER = MUTANTS / "khugepaged_hotplug_lock_order.mmr"  # fails under some random seeds

def test_pytest_loads_the_plugin_from_its_entry_point_without_importing_mmrace(pytester):
    pytester.makepyfile("""
        import sys
        def test_plugin(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("mmrace")
            assert "mmrace" not in sys.modules and "hypothesis" not in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


MARKED = """
import pytest

def test_unmarked(mmrace_config):
    assert (mmrace_config.strategy, mmrace_config.mutants) == UNMARKED

@pytest.mark.mmrace(strategy="pervma", mutants=["pervma_fork_no_vma_write_lock"])
def test_marked(mmrace_config):
    assert mmrace_config.strategy == "pervma"
    assert mmrace_config.mutants == ("pervma_fork_no_vma_write_lock",)

@pytest.mark.mmrace(mutants="spf_no_pmd_recheck")  # a mutant brings its strategy
def test_mutant_only(mmrace_config):
    assert (mmrace_config.strategy, mmrace_config.mutants) == ("spf", ("spf_no_pmd_recheck",))

@pytest.mark.mmrace(strategy="classic")
def test_strategy_only(mmrace_config):
    assert (mmrace_config.strategy, mmrace_config.mutants) == ("classic", UNMARKED[1])
"""


def test_the_fixture_gives_classic_and_no_mutant_by_default_and_the_markers_values(pytester):
    pytester.makepyfile("UNMARKED = ('classic', ())\n" + MARKED)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=4)


def test_the_options_set_the_fixture_and_the_marker_wins_over_them(pytester):
    pytester.makepyfile("UNMARKED = ('spf', ('dirty_cow', 'gup_vmas_after_retry'))\n" + MARKED)
    result = pytester.runpytest("--strict-markers", "--mmrace-strategy", "spf",
                                "--mmrace-mutant", "dirty_cow",
                                "--mmrace-mutant", "gup_vmas_after_retry")
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize("args,message", [
    (["--mmrace-strategy", "spff"], "--mmrace-strategy/--mmrace-mutant: unknown strategy 'spff'"),
    (["--mmrace-mutant", "dirty_cwo"], "unknown mutant 'dirty_cwo'"),
    (["--mmrace-mutant", "stackrot"], "stackrot"),  # in the catalogue, not built
    (["--mmrace-strategy", "classic", "--mmrace-mutant", "spf_no_pmd_recheck"],
     "spf_no_pmd_recheck"),  # a mutant of another strategy
    (["--mmrace-profile", "mmrace-cii"],
     "--mmrace-profile mmrace-cii: no such Hypothesis profile "
     "(mmrace's: mmrace-dev, mmrace-ci, mmrace-nightly)"),
], ids=["strategy", "mutant", "unbuilt", "other-strategy", "profile"])
def test_a_bad_option_is_a_usage_error_naming_it(pytester, args, message):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_a_bad_marker_is_a_usage_error_naming_the_test(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.mmrace(strategy="spf", mutants=["dirty_cwo"])
        def test_marked(mmrace_config):
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_marked: @pytest.mark.mmrace: unknown mutant 'dirty_cwo'*"])


def test_the_profile_option_loads_the_hypothesis_profile(pytester):
    pytester.makepyfile("""
        from hypothesis import settings
        def test_profile():
            assert settings.get_current_profile_name() == "mmrace-ci"
            assert settings.default.derandomize and settings.default.database is None
    """)
    pytester.runpytest_subprocess("--mmrace-profile", "mmrace-ci").assert_outcomes(passed=1)


def test_a_failed_check_gets_the_reproducer_section_and_the_replay_script(pytester):
    pytester.makepyfile(f"""
        import mmrace
        from mmrace.testing import check

        def test_lock_order():
            check(mmrace.parse_file({str(LOCK_ORDER)!r}), mmrace.Random(13))
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(r"-+ mmrace reproducer -+", out)
    expected = mmrace.run(mmrace.parse_file(LOCK_ORDER), mmrace.Random(13)).reproducer
    section = out[out.index("mmrace reproducer"):]
    assert "verdict lock_order (lockdep) at step" in section
    assert "cat > repro.mmr <<'EOF'\n" + expected + "EOF\nmmrace run repro.mmr" in section
    assert "reproducer(s) saved" not in out  # no DIR given


def test_reproducers_are_saved_to_dir_and_replay_their_failures(pytester, tmp_path):
    # test_seeds: seeds 13, 38, 39, ... fail; the section and the file give the run of
    # the example Hypothesis reports, its last (shrunk) one, not the first one it found.
    pytester.makepyfile(f"""
        import pytest
        from hypothesis import given, settings, strategies as st
        import mmrace
        from mmrace.testing import check

        PROGRAM = mmrace.parse_file({str(LOCK_ORDER)!r})

        @pytest.mark.parametrize("seed", [13, 1])
        def test_lock_order(seed):
            check(PROGRAM, mmrace.Random(seed))

        def test_wrapped():  # the VerdictError is the cause of what the test raised
            try:
                check(PROGRAM, mmrace.Random(39))
            except mmrace.VerdictError as e:
                raise RuntimeError("the harness gave up") from e

        @settings(max_examples=300, derandomize=True, database=None)
        @given(st.integers(0, 99))
        def test_seeds(seed):
            check(PROGRAM, mmrace.Random(seed))
    """)
    out_dir = tmp_path / "repros"
    result = pytester.runpytest("--mmrace-reproducers", str(out_dir))
    result.assert_outcomes(failed=3, passed=1)  # seed 1 does not fail
    shrunk = int(re.search(r"test_seeds\(\nE?\s+seed=(\d+),", result.stdout.str()).group(1))
    files = sorted(out_dir.iterdir())
    assert [re.sub(r"-[0-9a-f]{8}\.mmr$", "", f.name) for f in files] == [
        "test_lock_order_13-lockdep", "test_seeds-lockdep", "test_wrapped-lockdep"]
    for seed, f in zip((13, shrunk, 39), files):
        res = mmrace.run(mmrace.parse_file(LOCK_ORDER), mmrace.Random(seed))
        assert f.read_text() == res.reproducer
        assert f.name.endswith(f"-{res.trace_hash[:8]}.mmr")
        replay = mmrace.run(mmrace.parse_file(f))
        assert (replay.verdict, replay.trace_hash) == (res.verdict, res.trace_hash)
        assert f"replay: mmrace run {f}" in result.stdout.str()
    summary = [line for line in result.outlines if line.startswith("mmrace: ")]
    assert len(summary) == 1 and summary[0].startswith("mmrace: 3 reproducer(s) saved: ")
    assert sorted(summary[0].split(": ", 2)[2].split(", ")) == list(map(str, files))
