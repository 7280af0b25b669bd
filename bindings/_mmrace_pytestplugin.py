"""The pytest plugin of mmrace, registered through the `pytest11` entry point.

A top-level module, not part of the mmrace package, so that pytest loads it without
importing mmrace (and its C++ extension and Hypothesis) in test runs that never use it:
mmrace is imported only when an option asks for it, the fixture is used, or a test
already raised one of its errors.

    --mmrace-strategy S        the strategy the mmrace_config fixture gives (default classic,
                               or the strategy of the first mutant)
    --mmrace-mutant M          a mutant the fixture gives (repeatable)
    --mmrace-profile NAME      load a Hypothesis profile: mmrace-dev, mmrace-ci, mmrace-nightly
    --mmrace-reproducers DIR   save each failing test's reproducer as
                               DIR/<test name>-<check>-<trace hash>.mmr

    @pytest.mark.mmrace(strategy="spf", mutants=["spf_no_pmd_recheck"])
    def test_spf(mmrace_config): ...    # the marker wins over the options

A failing test whose failure carries an mmrace.VerdictError (raised by
mmrace.testing.check, or Hypothesis' final falsifying example, or anywhere in its chain
of causes) gets a report section "mmrace reproducer": the verdict, the .mmr text and the
command that replays it.  docs/python.md#the-pytest-plugin.
"""
from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SECTION = "mmrace reproducer"
DEFAULT_STRATEGY = "classic"
_SAVED = "mmrace_reproducers"  # the report attribute listing the files saved for it


@dataclass(frozen=True)
class MmraceConfig:
    """What the mmrace_config fixture gives: the resolved strategy and mutants."""

    strategy: str
    mutants: tuple[str, ...]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mmrace", "mmrace (a model checker for Linux mm)")
    group.addoption("--mmrace-strategy", metavar="S",
                    help="the fault strategy the mmrace_config fixture gives: classic, spf "
                         "or pervma (default: the first mutant's, else classic)")
    group.addoption("--mmrace-mutant", metavar="M", action="append", default=[],
                    help="a mutant the mmrace_config fixture gives (repeatable)")
    group.addoption("--mmrace-profile", metavar="NAME",
                    help="load a Hypothesis settings profile (mmrace-dev, mmrace-ci, "
                         "mmrace-nightly, or any registered one)")
    group.addoption("--mmrace-reproducers", metavar="DIR",
                    help="save each failing test's reproducer to DIR as "
                         "<test name>-<check>-<trace hash>.mmr")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mmrace(strategy=None, mutants=()): the strategy and mutants the "
                   "mmrace_config fixture gives this test (over --mmrace-strategy and "
                   "--mmrace-mutant)")
    strategy, mutants = config.getoption("mmrace_strategy"), config.getoption("mmrace_mutant")
    if strategy is not None or mutants:
        _resolve(strategy, mutants, "--mmrace-strategy/--mmrace-mutant", pytest.UsageError)
    profile = config.getoption("mmrace_profile")
    if profile is not None:
        _load_profile(profile)


def _load_profile(name: str) -> None:
    """Load a Hypothesis profile, the mmrace ones registered first."""
    import mmrace.testing  # noqa: F401  (registers the mmrace-* profiles)
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    try:
        settings.load_profile(name)
    except InvalidArgument:
        raise pytest.UsageError(f"--mmrace-profile {name}: no such Hypothesis profile "
                                f"(mmrace's: {', '.join(mmrace.testing.PROFILES)})") from None


def _resolve(strategy: str | None, mutants: list[str] | tuple[str, ...], where: str,
             error: type[Exception]) -> MmraceConfig:
    """The strategy and mutants, checked as a program's config line is: each mutant
    known, built and for the strategy.  A missing strategy is the first mutant's (its
    catalogue strategy; "all" is classic).  Raises `error` naming `where` and the value."""
    from mmrace import _core, api

    mutants = tuple(mutants)
    if not all(isinstance(m, str) for m in mutants):
        raise error(f"{where}: mutants must be names, got {mutants!r}")
    if strategy is None:
        strategy = _strategy_of(mutants[0]) if mutants else DEFAULT_STRATEGY
    config = " ".join([f"strategy={strategy}"] + [f"mutants={','.join(mutants)}"] * bool(mutants))
    try:
        prog = api.parse(f"mmrace 1\nconfig {config}\nprocess P0\nthread P0.T0\n  exit\n")
        _core.check_built(prog)
    except (ValueError, NotImplementedError) as e:
        raise error(f"{where}: {str(e).split(': ', 1)[-1]}") from None
    return MmraceConfig(strategy, mutants)


def _strategy_of(mutant: str) -> str:
    """A mutant's catalogue strategy (the first of its list; "all" is classic), or
    DEFAULT_STRATEGY for an unknown name, which the parser then reports."""
    from mmrace import _core

    rows = {r["name"]: r["strategies"] for r in _core.mutant_catalogue()}
    first = rows.get(mutant, "all").split(",")[0]
    return DEFAULT_STRATEGY if first == "all" else first


@pytest.fixture
def mmrace_config(request: pytest.FixtureRequest) -> MmraceConfig:
    """The test's strategy and mutants: its mmrace marker's, else the command line's,
    else classic and none."""
    opt = request.config.getoption
    strategy, mutants = opt("mmrace_strategy"), tuple(opt("mmrace_mutant"))
    marker = request.node.get_closest_marker("mmrace")
    where = "--mmrace-strategy/--mmrace-mutant"
    if marker is not None:
        if marker.args or set(marker.kwargs) - {"strategy", "mutants"}:
            pytest.fail(f"{request.node.nodeid}: @pytest.mark.mmrace takes only strategy= "
                        f"and mutants=, got {marker}", pytrace=False)
        if "mutants" in marker.kwargs:
            mutants = marker.kwargs["mutants"]
            mutants = (mutants,) if isinstance(mutants, str) else tuple(mutants)
            strategy = None  # the marker's mutants choose their own strategy
        strategy = marker.kwargs.get("strategy", strategy)
        where = f"{request.node.nodeid}: @pytest.mark.mmrace"
    try:
        return _resolve(strategy, mutants, where, ValueError)
    except ValueError as e:  # the test's error, not a traceback into the plugin
        pytest.fail(str(e), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    if call.excinfo is None or report.when != "call":
        return
    errors = _verdict_errors(call.excinfo.value)
    saved = []
    directory = item.config.getoption("mmrace_reproducers")
    for n, err in enumerate(errors):
        path = _save(Path(directory), item.name, err) if directory else None
        title = SECTION if n == 0 else f"{SECTION} {n + 1}"
        report.sections.append((title, _section(err, path)))
        if path is not None:
            saved.append(str(path))
    setattr(report, _SAVED, saved)


def _verdict_errors(exc: BaseException) -> list:
    """Every mmrace.VerdictError in exc, its exception group members, causes and contexts,
    in that order, each once."""
    if "mmrace.errors" not in sys.modules:
        return []  # nothing raised one: mmrace was never imported
    from mmrace.errors import VerdictError

    found, seen, todo = [], set(), [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, VerdictError):
            found.append(e)
        todo.extend(getattr(e, "exceptions", ()))
        todo.extend((e.__cause__, e.__context__))
    return found


def _save(directory: Path, test_name: str, err) -> Path:
    """Write err's reproducer to DIR/<test name>-<check>-<trace hash>.mmr.  The same
    failure gives the same name and the same text, so a rerun overwrites it in place."""
    directory.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_")
    check = err.check or err.result.verdict
    path = directory / f"{name}-{check}-{err.result.trace_hash[:8]}.mmr"
    path.write_text(err.reproducer)
    return path


def _section(err, path: Path | None) -> str:
    """The report section: the verdict, then the saved file and its replay command, or
    the shell lines that save and replay the reproducer."""
    res = err.result
    check = f" ({res.check})" if res.check else ""
    first = (res.message.splitlines() or [""])[0]  # the oracle's history follows it
    head = f"verdict {res.verdict}{check} at step {res.step}: {first}\n"
    if path is None:
        return head + "\n" + err.replay_script()
    return f"{head}saved to {path}; replay: mmrace run {shlex.quote(str(path))}\n\n{err.reproducer}"


def pytest_terminal_summary(terminalreporter) -> None:
    saved = [p for reports in terminalreporter.stats.values() for r in reports
             for p in getattr(r, _SAVED, ())]
    if saved:
        terminalreporter.write_line(f"mmrace: {len(saved)} reproducer(s) saved: "
                                    + ", ".join(saved))
