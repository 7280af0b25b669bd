"""docs/ stays in sync with the code: every op, config key, counter, check name and
mutant the core knows is documented, every ```mmr example parses, and README and docs/
never point outside the repository.

The names come from the C++ sources (the parser's op table, the counter registry) or
from mmrace._core (the check registry), never from a list kept here, so a new op or mutant
without its documentation fails this file."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "cpp_core" / "src"
PAGES = ["README.md", "format.md", "schedules.md", "checks.md", "strategies.md", "mutants.md",
         "cli.md", "python.md"]


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def source(rel: str) -> str:
    return (SRC / rel).read_text(encoding="utf-8")


def backticked(text: str) -> set[str]:
    """Every word that appears as `word` (alone in its backticks) in text."""
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", text))


def user_markdown() -> list[Path]:
    """README.md, docs/*.md and the READMEs of the subfolders."""
    files = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    files += sorted(p for p in ROOT.glob("*/README.md") if p.parent.name != "docs")
    return files


def test_every_page_exists_and_the_index_links_it():
    index = doc("README.md")
    for page in PAGES:
        assert (DOCS / page).is_file(), page
        if page != "README.md":
            assert f"]({page})" in index, f"docs/README.md does not link {page}"


# --- nothing points outside the repository -------------------------------------------


@pytest.mark.parametrize("path", user_markdown(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_outside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "shared/DESIGN" not in text
    assert "DESIGN.md" not in text
    assert not re.search(r"DESIGN §\d", text), "a reference to DESIGN's sections"


@pytest.mark.parametrize("path", user_markdown(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        resolved = (path.parent / file_part).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} leaves the repository"
        assert resolved.exists(), f"{path.name}: broken link {target}"


def anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown page."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("path", user_markdown(), ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_into_docs_exist(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+\.md)#([^)\s]+)\)", text):
        page, anchor = target
        resolved = (path.parent / page).resolve()
        assert anchor in anchors(resolved.read_text(encoding="utf-8")), \
            f"{path.name}: no heading for {page}#{anchor}"


# --- the format: ops and config keys -------------------------------------------------


def registry() -> str:
    return (ROOT / "cpp_core" / "include" / "mmrace" / "ops.hpp").read_text(encoding="utf-8")


def parser_ops() -> list[str]:
    """The op keywords of the op registry (MMRACE_OPS in mmrace/ops.hpp), which the
    parser's op table is derived from."""
    table = registry().split("#define MMRACE_OPS(X)", 1)[1].split("\n\n", 1)[0]
    ops = re.findall(r"X\((\w+), (?:user|kthread),", table)
    assert len(ops) >= 20
    return ops


def config_keys() -> list[str]:
    text = source("program/mmr_parse.cpp")
    m = re.search(r'kKeys\[\] = \{("strategy"[^}]*)\}', text)
    assert m, "the config keys were not found in mmr_parse.cpp"
    return re.findall(r'"(\w+)"', m.group(1))


@pytest.mark.parametrize("op", parser_ops())
def test_every_op_is_documented(op):
    text = doc("format.md")
    assert op in backticked(text), f"op {op} is not in docs/format.md"
    assert re.search(rf"^\| `{op}` \|", text, re.M), f"op {op} has no row in an op table"


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_is_documented(key):
    text = doc("format.md")
    assert re.search(rf"^\| `{key}` \|", text, re.M), f"config key {key} has no row"


def test_every_vocabulary_word_is_documented():
    """mmap flags, advice, gup/pin flags, uffd modes, strategies, geometries."""
    text = doc("format.md")
    lexer = source("program/mmr_lexer.hpp")
    words = set(re.findall(r'\{"(\w+)",\s*(?:MAPF|MREMAPF|GUPF|Advice|UffdMode|Strategy|Geometry)',
                           lexer))
    assert len(words) >= 20
    missing = sorted(w for w in words if not re.search(rf"\b{w}\b", text))
    assert not missing, f"not in docs/format.md: {missing}"


def test_format_bounds_match_the_lexer():
    lexer = source("program/mmr_lexer.hpp")
    text = doc("format.md")
    assert "kMaxThreads = 64" in lexer and "| 64 |" in text
    assert "kMaxPages = 1ull << 20" in registry() and "1048576" in text
    assert "kMaxPctDepth = 1024" in registry() and "1 to 1024" in text
    assert "kMaxOpsPerThread = 1u << 16" in lexer and "65536" in text


# --- counters and checks -------------------------------------------------------------


def test_every_counter_is_documented():
    registry = source("mm/counters.hpp").split("#define MMRACE_COUNTERS(X)", 1)[1]
    names = re.findall(r"X\((\w+)\)", registry.split("enum class Counter", 1)[0])
    assert len(names) >= 40
    text = doc("strategies.md")
    missing = [n for n in names if f"`{n}`" not in text]
    assert not missing, f"counters missing from docs/strategies.md: {missing}"


def test_the_check_table_is_the_cores():
    """docs/checks.md's table has one row per check of MMRACE_CHECKS, in its order, with
    the verdict and the description the core keeps with the name."""
    from mmrace import _core

    checks = _core.checks()
    assert {"invariant", "use_after_free", "leak", "linearizability", "lockdep",
            "deadlock", "budget"} <= {c["name"] for c in checks}
    table = doc("checks.md").split("## The checks", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| ([^|]*?) \|", table, re.M)
    assert rows == [(c["name"], c["verdict"], c["description"]) for c in checks]


def test_no_check_is_named_outside_the_registry():
    """Every check the sources report is a Check:: of the registry: no check name is a
    string literal any more."""
    from mmrace import _core

    names = {c["name"] for c in _core.checks()}
    for path in SRC.rglob("*.[ch]pp"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r'\b(?:violation|bad)\("', text), path
        assert not re.search(r'fail\((?:rt::)?Verdict::\w+, "', text), path
        assert set(re.findall(r"\bCheck::(\w+)", text)) <= names | {"none"}, path


def test_every_verdict_is_documented():
    from mmrace import _core

    text = doc("checks.md")
    for v in _core.verdict_names():
        assert f"| `{v}` |" in text, v


# --- mutants ---------------------------------------------------------------------------


def test_every_mutant_is_documented():
    from mmrace import _core

    names = _core.mutant_names()
    text = doc("mutants.md")
    for name in names:
        assert f"`{name}`" in text, f"mutant {name} is not in docs/mutants.md"


def test_built_column_matches_the_core():
    """The whole-list table says yes exactly for the mutants the core can switch on."""
    import mmrace
    from mmrace import _core

    rows = dict(re.findall(r"^\| `(\w+)` \| [^|]+ \| (yes|no) \|$", doc("mutants.md"), re.M))
    assert set(rows) == set(_core.mutant_names())
    for name, said in rows.items():
        prog = mmrace.parse(f"mmrace 1\nconfig strategy=classic mutants={name}\n")
        try:
            _core.check_built(prog)
            built = True
        except mmrace.NotBuilt:
            built = False
        except ValueError:  # built, for another strategy
            built = True
        assert built == (said == "yes"), f"{name}: docs say built={said}"


def test_check_column_matches_the_catalogue():
    """The built and planned tables name, for every mutant, the check the catalogue
    expects (one vocabulary: the check registry's names)."""
    from mmrace import _core

    row = r"^\| `(\w+)` \| [^|]+ \| [^|]+ \| `(\w+)`[^|]* \|"  # mutant, reference, strategies, check
    rows = dict(re.findall(row, doc("mutants.md"), re.M))
    assert rows == {m["name"]: m["check"] for m in _core.mutant_catalogue()}


def test_every_reproducer_is_documented():
    text = doc("mutants.md")
    for path in sorted((ROOT / "examples" / "mutants").glob("*.mmr")):
        assert f"examples/mutants/{path.name}" in text, path.name


# --- examples --------------------------------------------------------------------------


def mmr_blocks() -> list[tuple[str, int, str]]:
    out = []
    for page in PAGES:
        text = doc(page)
        for m in re.finditer(r"^```mmr\n(.*?)^```", text, re.S | re.M):
            out.append((page, text[: m.start()].count("\n") + 2, m.group(1)))
    return out


def test_format_has_examples():
    assert sum(1 for page, _, _ in mmr_blocks() if page == "format.md") >= 2


@pytest.mark.parametrize("page,line,text", mmr_blocks(),
                         ids=[f"{p}:{n}" for p, n, _ in mmr_blocks()])
def test_mmr_examples_parse_and_run(page, line, text):
    import mmrace
    from mmrace import _core

    prog = mmrace.parse(text, f"docs/{page}:{line}")
    assert mmrace.parse(prog.to_mmr()) == prog
    _core.check_built(prog)  # every example needs only what is built
    res = mmrace.run(prog)
    assert res.verdict == "ok", res.message


def test_design_example_in_format_is_the_example_file():
    """format.md's first example is examples/design_example.mmr, comments aside."""
    import mmrace

    first = mmr_blocks()[0]
    assert first[0] == "format.md"
    example = (ROOT / "examples" / "design_example.mmr").read_text(encoding="utf-8")
    assert mmrace.parse(first[2]) == mmrace.parse(example)
