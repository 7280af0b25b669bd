"""The core's generator from Python (issue 15): _core.generate over a seed, a byte string
or a callback, and mmr_programs() as a thin Hypothesis strategy over the callback."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import mmrace
from mmrace import _core, conform
from mmrace.strategies import mmr_programs

MODEST = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
SHAPES = ("valid", "conform", "workload")


def test_choosing_zero_everywhere_gives_the_simplest_program():
    assert _core.generate(lambda n: 0) == "mmrace 1\nconfig strategy=classic geometry=small\n"
    text = _core.generate(lambda n: 0, "conform")
    assert mmrace.parse(text).thread_names == ["P0.T0"]
    assert text.count("\n  ") == 4  # an mmap, then the fewest stores


def test_a_seed_draws_what_the_seeded_generators_drew():
    for seed in range(20):
        assert _core.generate(seed, "workload") == _core.random_workload(seed)
        assert _core.generate(seed, "conform") == conform.random_program(seed)
    assert _core.generate(3) == _core.generate(3) != _core.generate(4)


@MODEST
@given(st.binary(max_size=3000), st.sampled_from(SHAPES))
def test_any_byte_string_decodes_to_a_program_that_parses_back_and_runs(data, shape):
    text = _core.generate(data, shape)
    prog = mmrace.parse(text)
    if shape == "valid":
        assert prog.to_mmr() == text
    res = mmrace.run(prog, schedule=mmrace.Random(len(data)), trace=False)
    assert res.verdict in ("ok", "violation", "deadlock", "lock_order", "budget")


def test_the_callback_answers_each_choice_and_only_in_range():
    asked: list[int] = []
    _core.generate(lambda n: asked.append(n) or n - 1, "conform")
    assert asked and all(n > 1 for n in asked)  # a choice of one costs no call
    with pytest.raises(ValueError, match=r"choose\(\d+\) returned \d+, not in \[0, \d+\)"):
        _core.generate(lambda n: n)
    with pytest.raises(TypeError, match="not an int"):
        _core.generate(lambda n: "0")
    with pytest.raises(ZeroDivisionError):  # what the callback raises propagates
        _core.generate(lambda n: 1 // 0)
    with pytest.raises(ValueError, match="unknown shape 'soak'"):
        _core.generate(0, "soak")


def test_hypothesis_shrinks_along_the_programs_structure():
    s = settings(database=None, max_examples=1000, suppress_health_check=list(HealthCheck))
    forked = find(mmr_programs(), lambda t: "\n  fork " in t, settings=s)
    prog = mmrace.parse(forked)
    assert prog.thread_names == ["P0.T0", "P1.T0"]  # two processes, one thread each
    assert forked.count("\n  ") == 1  # the fork and nothing else
    assert "mutants=" not in forked and "schedule" not in forked


def test_mmr_programs_checks_its_arguments_eagerly():
    with pytest.raises(InvalidArgument, match="max_processes=-1"):
        mmr_programs(max_processes=-1)
    with pytest.raises(InvalidArgument, match="max_threads=0"):
        mmr_programs(max_threads=0)


@MODEST
@given(mmr_programs(max_processes=1, max_kthreads=0, max_ops=2))
def test_mmr_programs_keeps_to_its_bounds(text):
    prog = mmrace.parse(text)
    assert len(prog.thread_names) <= 3
    assert all(not line.startswith("kthread") for line in text.splitlines())


# Every op of docs/format.md.
OPS = [row["name"] for row in _core.op_specs()]


def test_the_valid_shape_draws_every_op_and_the_format_s_edges():
    texts = [_core.generate(seed) for seed in range(300)]
    ops = {line.split()[0] for t in texts for line in t.splitlines() if line.startswith("  ")}
    assert ops == set(OPS)
    words = "".join(texts)
    for word in ("pages=1048576", "18446744073709551615", "schedule pct", "schedule random",
                 "schedule replay", "forked", "geometry=x86", "strategy=pervma", "mutants=",
                 "folios=", "flags=maymove,fixed to=", "file:", "mode=wp", "advice=collapse"):
        assert word in words, word
