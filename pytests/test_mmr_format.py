"""The .mmr format through the Python API: round trips, malformed input, junk input."""
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmrace
from mmrace.strategies import MUTANTS, mmr_programs

# Two cores: keep every property modest.
MODEST = settings(max_examples=200, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DESIGN_EXAMPLE = """mmrace 1
config strategy=pervma geometry=small mutants=pervma_fork_no_vma_write_lock
file F0 pages=2
process P0
thread P0.T0
  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed
  write 0x100008 7
  fork P1
thread P0.T1
  write 0x101000 9
process P1 forked
thread P1.T0
  read 0x100008
schedule replay 0 0 1 1 0 2
"""


def test_design_example_round_trips():
    prog = mmrace.parse(DESIGN_EXAMPLE)
    assert prog.to_mmr() == DESIGN_EXAMPLE
    assert prog.thread_names == ["P0.T0", "P0.T1", "P1.T0"]
    assert prog.thread_count == 3


def test_other_spellings_print_canonically():
    loose = ("# comment\r\nmmrace 1\r\nprocess P0\r\nthread P0.T0\r\n"
             "\tmmap 0x0100000 flags=fixed,anon,private prot=wr pages=04\r\n")
    assert mmrace.parse(loose).to_mmr() == (
        "mmrace 1\nconfig strategy=classic geometry=small\nprocess P0\nthread P0.T0\n"
        "  mmap 0x100000 pages=4 prot=rw flags=private,anon,fixed\n")
    assert mmrace.parse(loose) == mmrace.parse(mmrace.parse(loose).to_mmr())


def test_every_catalogue_mutant_is_accepted():
    text = f"mmrace 1\nconfig strategy=classic geometry=small mutants={','.join(MUTANTS)}\n"
    assert mmrace.parse(text).to_mmr() == text


@MODEST
@given(mmr_programs(runnable=False))
def test_parse_then_to_mmr_is_the_identity_on_canonical_text(text):
    prog = mmrace.parse(text)
    assert prog.to_mmr() == text
    assert mmrace.parse(prog.to_mmr()) == prog


def in_thread(ops: str) -> str:
    """Three header lines: an op is on line 4 and starts at column 3."""
    return f"mmrace 1\nprocess P0\nthread P0.T0\n{ops}\n"


# (id, text, line, col, words the message must contain)
MALFORMED = [
    ("empty", "", 1, 1, "empty input"),
    ("version", "mmrace 2\n", 1, 8, "unsupported version '2'"),
    ("unknown-op", in_thread("  mmapp 0x1000 pages=1"),
     4, 3, "unknown op 'mmapp' (did you mean 'mmap'?)"),
    ("bad-number", in_thread("  write 0x100000 x7"), 4, 18, "expected a number, got 'x7'"),
    ("number-out-of-range", in_thread("  write 0x100000 18446744073709551616"), 4, 18,
     "number out of range"),
    ("uppercase-address", in_thread("  read 0x1000A0"), 4, 8, "lowercase"),
    ("address-without-0x", in_thread("  read 4096"), 4, 8, "expected an address"),
    ("address-beyond-user-space", in_thread("  read 0x800000000000"), 4, 8, "user address space"),
    ("unaligned-page", in_thread("  munmap 0x1001 pages=1"),
     4, 10, "address 0x1001 is not page aligned"),
    ("unaligned-word", in_thread("  read 0x100004"), 4, 8, "not 8-byte aligned"),
    ("pages-zero", in_thread("  munmap 0x100000 pages=0"), 4, 25, "at least 1"),
    ("pages-absurd", in_thread("  munmap 0x100000 pages=1048577"), 4, 25, "too large"),
    ("op-outside-thread", "mmrace 1\nprocess P0\n  read 0x1000\n", 3, 3, "outside a thread"),
    ("process-without-thread", "mmrace 1\nprocess P0\n", 2, 9, "has no threads"),
    ("thread-of-unknown-process", "mmrace 1\nprocess P0\nthread P9.T0\n",
     3, 8, "unknown process 'P9'"),
    ("duplicate-thread", "mmrace 1\nprocess P0\nthread P0.T0\nthread P0.T0\n", 4, 8,
     "duplicate thread name 'P0.T0' (first declared at line 3)"),
    ("duplicate-process", "mmrace 1\nprocess P0\nthread P0.T0\nprocess P0\n", 4, 9,
     "duplicate process name 'P0'"),
    ("duplicate-file", "mmrace 1\nfile F pages=1\nfile F pages=1\n",
     3, 6, "duplicate file name 'F'"),
    ("unknown-mutant",
     "mmrace 1\nconfig strategy=pervma geometry=small mutants=pervma_fork_no_vma_lock\n", 2, 47,
     "unknown mutant 'pervma_fork_no_vma_lock' (did you mean 'pervma_fork_no_vma_write_lock'?)"),
    ("unknown-config-key", "mmrace 1\nconfig strategy=spf stratgy=x\n",
     2, 21, "unknown config key 'stratgy'"),
    ("pool-size-zero", "mmrace 1\nconfig folios=0\n", 2, 15, "folios must be at least 1"),
    ("pool-size-absurd", "mmrace 1\nconfig swap_slots=1048577\n", 2, 19,
     "swap_slots '1048577' is too large (0 to 1048576)"),
    ("unknown-handle", in_thread("  unpin H3"), 4, 9, "unknown handle 'H3'"),
    ("handle-past-last-pin", in_thread("  pin 0x1000 pages=1\n  dma_read H1 0"),
     5, 12, "unknown handle 'H1'"),
    ("dma-past-pin", in_thread("  pin 0x1000 pages=1\n  dma_read H0 4096"),
     5, 15, "past the end of H0"),
    ("kthread-op-in-process-thread", in_thread("  collapse P0 0x100000"), 4, 3, "is a kthread op"),
    ("process-op-in-kthread", "mmrace 1\nkthread K\n  read 0x1000\n", 3, 3, "is a process op"),
    ("fork-of-unforked", in_thread("  fork P1") + "process P1\nthread P1.T0\n",
     4, 8, "not declared forked"),
    ("never-forked", "mmrace 1\nprocess P0\nthread P0.T0\nprocess P1 forked\nthread P1.T0\n", 4, 9,
     "never forked"),
    ("mremap-fixed-without-to",
     in_thread("  mremap 0x1000 pages=1 new_pages=1 flags=maymove,fixed"), 4, 56, "missing to="),
    ("schedule-not-last", "mmrace 1\nschedule random seed=1\nprocess P0\n",
     3, 1, "nothing may follow"),
    ("nul-byte", in_thread("  re\0d 0x1000"), 4, 3, "unknown op 're\\x00d'"),
]


@pytest.mark.parametrize("text,line,col,words", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_input_names_line_and_column(text, line, col, words):
    with pytest.raises(ValueError) as info:
        mmrace.parse(text)
    message = str(info.value)
    assert message.startswith(f"<string>:{line}:{col}: "), message
    assert words in message, message


def test_parse_file_reports_its_file_name(tmp_path):
    f = tmp_path / "bad.mmr"
    f.write_text(in_thread("  read 0x100004"))
    with pytest.raises(ValueError, match=re.escape(f"{f}:4:8: ")):
        mmrace.parse_file(f)


def check_parse_or_value_error(text: str) -> None:
    try:
        prog = mmrace.parse(text)
    except ValueError as e:
        assert re.match(r"^<string>:\d+:\d+: \S", str(e)), str(e)
        return
    assert mmrace.parse(prog.to_mmr()) == prog


@MODEST
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash(data):
    check_parse_or_value_error(data.decode("latin-1"))
    check_parse_or_value_error("mmrace 1\n" + data.decode("utf-8", errors="replace"))


@MODEST
@given(st.text(max_size=2000))
def test_arbitrary_text_never_crashes(text):
    check_parse_or_value_error(text)
    check_parse_or_value_error("mmrace 1\nprocess P0\nthread P0.T0\n  " + text)


@MODEST
@given(mmr_programs(runnable=False), st.data())
def test_damaged_programs_parse_or_raise_value_error(text, data):
    # A damaged valid program reaches deeper than junk: most lines still make sense.
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 12))
    junk = data.draw(st.sampled_from(["", " ", "\n", "=", ",", "0x", "H9", "\t", "\0", "\r\n"]))
    check_parse_or_value_error(text[:at] + junk + text[at + cut:])


def test_binary_files_raise_value_error(tmp_path):
    f = tmp_path / "junk.mmr"
    f.write_bytes(b"mmrace 1\n\xff\xfe\x00garbage\n")
    with pytest.raises(ValueError, match=re.escape(f"{f}:2:1: ")):
        mmrace.parse_file(f)


def test_the_strategies_draw_from_the_whole_mutant_catalogue():
    from mmrace import _core
    from mmrace.strategies import MUTANTS
    assert MUTANTS == tuple(_core.mutant_names())
    assert len(MUTANTS) == 21 and "pervma_fork_no_vma_write_lock" in MUTANTS
