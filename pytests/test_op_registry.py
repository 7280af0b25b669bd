"""The op registry as Python sees it (`_core.op_specs()`, `_core.limits()`,
cpp_core/include/mmrace/ops.hpp): the strategies and conform read their limits and
words from it, and a line built from each row's argument list alone is what the parser
takes and the printer writes back."""
from __future__ import annotations

import mmrace
from mmrace import _core, conform, strategies

SPECS = {row["name"]: row for row in _core.op_specs()}
LIMITS = _core.limits()

# A canonical word for each argument kind, as a test program writes it.  A new kind
# must be added here: the KeyError says which.
EXAMPLE = {
    "page_addr": "0x100000",
    "word_addr": "0x100008",
    "pages": "pages=1",
    "file_pages": "pages=0",
    "new_pages": "new_pages=2",
    "prot": "prot=rw",
    "mmap_flags": "flags=private,anon",
    "advice": "advice=cold",
    "value": "7",
    "value_key": "value=7",
    "count": "3",
    "process": "P0",
    "fork_child": "P1",
    "handle": "H0",
    "dma_offset": "8",
    "uffd_mode": "mode=wp",
    "on_off": "on",
    "file": "F0",
    "page_offset": "2",
}


def op_line(row: dict) -> str:
    """The op with every required argument, in the row's order; optional ones left out."""
    words = [EXAMPLE[a["kind"]] for a in row["args"] if not a["optional"]]
    return " ".join([row["name"], *words])


def test_every_row_has_its_arguments_kinds_and_flags():
    assert list(SPECS)[:2] == ["mmap", "munmap"] and list(SPECS)[-1] == "cpu_hotplug"
    assert all(row["built"] for row in SPECS.values())
    assert {n for n, r in SPECS.items() if not r["modelled"]} == {"sysfs_write", "cpu_hotplug"}
    assert {n for n, r in SPECS.items() if r["kthread"]} == {"collapse", "reclaim", "smaps",
                                                             "cpu_hotplug"}
    pages = SPECS["munmap"]["args"][1]
    assert pages == {"kind": "pages", "key": "pages", "optional": False, "min": 1,
                     "max": LIMITS["max_pages"], "align": 1, "words": []}
    assert SPECS["read"]["args"][0]["align"] == 8
    assert SPECS["read"]["args"][0]["max"] < LIMITS["user_top"]
    assert SPECS["madvise"]["args"][2]["words"] == ["dontneed", "pageout", "hugepage",
                                                    "nohugepage", "collapse", "cold"]
    assert SPECS["exit"]["args"] == []


def test_a_line_built_from_each_row_parses_and_prints_back():
    user = [op_line(r) for n, r in SPECS.items() if not r["kthread"] and n != "pin"]
    kthread = [op_line(r) for r in SPECS.values() if r["kthread"]]
    text = ("mmrace 1\nconfig strategy=classic geometry=small\nfile F0 pages=1\n"
            "process P0\nthread P0.T0\n  " + op_line(SPECS["pin"]) + "\n"
            + "".join(f"  {line}\n" for line in user)
            + "process P1 forked\nthread P1.T0\n  exit\n"
            + "kthread K0\n" + "".join(f"  {line}\n" for line in kthread))
    assert mmrace.parse(text).to_mmr() == text


def test_the_strategies_draw_exactly_the_registrys_ops_with_its_words():
    # mmr_programs() draws through the C++ valid shape, which reads the parser's words.
    texts = [_core.generate(seed) for seed in range(400)]
    lines = [line.split() for t in texts for line in t.splitlines() if line.startswith("  ")]
    assert {words[0] for words in lines} == set(SPECS)
    advice = {w.split("=", 1)[1] for words in lines if words[0] == "madvise"
              for w in words if w.startswith("advice=")}
    assert advice == set(SPECS["madvise"]["args"][2]["words"])
    assert not hasattr(strategies, "USER_TOP") and not hasattr(strategies, "POOLS")


def test_the_limits_are_the_parsers():
    top, page = LIMITS["user_top"], LIMITS["page_size"]
    ok = f"mmrace 1\nprocess P0\nthread P0.T0\n  munmap {top - page:#x} pages=1\n"
    mmrace.parse(ok)
    try:
        mmrace.parse(ok.replace(f"{top - page:#x} pages=1", f"{top - page:#x} pages=2"))
    except ValueError as e:
        assert "ends past the user address space" in str(e)
    else:
        raise AssertionError("a range past user_top parsed")
    for key, default, maximum in LIMITS["pools"]:
        cfg = f"mmrace 1\nconfig strategy=classic geometry=small {key}={maximum}\n"
        assert f"{key}={maximum}" in mmrace.parse(cfg).to_mmr() or maximum == default
        try:
            mmrace.parse(cfg.replace(f"={maximum}", f"={maximum + 1}"))
        except ValueError as e:
            assert "too large" in str(e)
        else:
            raise AssertionError(f"{key}={maximum + 1} parsed")
    assert [p[0] for p in LIMITS["pools"]] == ["folios", "swap_slots", "pgtables"]
    assert conform.PAGE == page
