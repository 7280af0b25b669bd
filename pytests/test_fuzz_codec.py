"""The fuzz targets' decoder and encoder from Python (issue 17): _core.fuzz_decode turns
any input into a reproducer that replays it, and _core.fuzz_encode turns it back."""
import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from mmrace import _core

PROGRAM_TARGETS = ["program", "spf", "pervma", "gup"]
ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_targets_are_the_five_harnesses():
    assert _core.fuzz_targets() == ["program", "spf", "pervma", "gup", "mmr_parser"]


@settings(max_examples=60, deadline=None)
@given(target=st.sampled_from(PROGRAM_TARGETS), data=st.binary(max_size=300))
def test_any_input_decodes_and_its_reproducer_encodes_back_to_itself(target, data):
    text = _core.fuzz_decode(target, data)
    assert _core.parse(text).to_mmr() == text
    again = _core.fuzz_encode(target, text)
    assert _core.fuzz_decode(target, again) == text


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=200))
def test_decoding_with_a_mutant_switches_it_on_in_the_same_program(data):
    plain = _core.fuzz_decode("spf", data)
    mutated = _core.fuzz_decode("spf", data, ["spf_no_seqcount_check"])
    assert "mutants=spf_no_seqcount_check" in mutated
    strip = lambda t: [l for l in t.splitlines() if not l.startswith(("config", "schedule"))]
    assert strip(plain) == strip(mutated)


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "mutants").glob("*.mmr")), ids=lambda p: p.stem)
def test_every_catalogue_reproducer_is_a_program_input_that_still_finds_its_mutant(path):
    text = path.read_text()
    program = _core.parse(text)
    mutants = [m for m in text.split("mutants=")[1].split()[0].split(",")]
    data = _core.fuzz_encode("program", text)
    decoded = _core.fuzz_decode("program", data, mutants)
    assert _core.run(_core.parse(decoded), trace=False)["verdict"] != "ok"
    assert _core.run(program, trace=False)["trace_hash"] == _core.run(_core.parse(decoded), trace=False)["trace_hash"]


def test_bad_targets_mutants_and_programs_are_value_errors_naming_them():
    with pytest.raises(ValueError, match="'nope'"):
        _core.fuzz_decode("nope", b"")
    with pytest.raises(ValueError, match="'no_such_mutant'"):
        _core.fuzz_decode("spf", b"", ["no_such_mutant"])
    with pytest.raises(ValueError, match="pervma"):
        _core.fuzz_decode("spf", b"", ["pervma_fork_no_vma_write_lock"])
    dirty_cow = (ROOT / "examples" / "mutants" / "dirty_cow.mmr").read_text()
    with pytest.raises(ValueError, match="no files"):
        _core.fuzz_encode("spf", dirty_cow.replace("strategy=classic mutants=dirty_cow", "strategy=spf"))
    with pytest.raises(ValueError, match="only file is F0 pages=1"):
        _core.fuzz_encode("gup", dirty_cow)


def test_the_parser_target_takes_text():
    text = (ROOT / "examples" / "fork_cow.mmr").read_text()
    assert _core.fuzz_decode("mmr_parser", text.encode()) == _core.parse(text).to_mmr()
    with pytest.raises(ValueError, match=":1:"):
        _core.fuzz_decode("mmr_parser", b"\x00garbage")
