"""mmrace fuzz: run libFuzzer or AFL++ on a harness, and turn what they find into .mmr.

The harness is built on first use from the sources shipped in the package
(mmrace.fuzz_build), the engine runs until the time is spent or it finds a crash
(mmrace.fuzz_engine), and each crash file is decoded by the harness's own decoder
(_core.fuzz_decode) into the .mmr program that replays the same run, saved next to it.
The replay is checked in a separate process (`mmrace run`), so a crash of the model
itself cannot take this command down.  `mmrace fuzz convert` does the decoding alone.
"""
from __future__ import annotations

import argparse
import difflib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mmrace import _core, fuzz_build, fuzz_engine
from mmrace.cmd_hunt import positive

DEFAULT_SECONDS = 60.0
DEFAULT_OUT = "mmrace-fuzz"
DEFAULT_CONVERT_TARGET = "program"
REPLAY_TIMEOUT_S = 120
# The fixed-shape harnesses run one strategy: a mutant of another one cannot show there.
TARGET_STRATEGY = {"spf": "spf", "pervma": "pervma"}
PARSER_TARGET = "mmr_parser"  # its findings are texts that do not print back to themselves


def _engine_seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 0 < value < 1 << 31:  # libFuzzer takes -seed=0 for "pick one"
        raise argparse.ArgumentTypeError(f"expected a seed in [1, 2^31), got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    f = sub.add_parser(
        "fuzz", help="run libFuzzer or AFL++ on a harness; findings become .mmr files",
        description="Build the harness fuzz_TARGET for the engine if it is missing or stale "
        "(in $XDG_CACHE_HOME/mmrace/fuzz), run the engine until the time is spent or it finds "
        "a crash, and convert each crash file to the .mmr program that replays it.  Exit 0 "
        "nothing found, 1 found, 2 usage error or engine missing, 3 the harness did not "
        "build, 130 interrupted.  `mmrace fuzz convert FILE` converts one file.")
    f.add_argument("--engine", choices=fuzz_build.ENGINES, help="the fuzzer (required)")
    f.add_argument("--target", metavar="T",
                   help="the harness: program, spf, pervma, gup or mmr_parser (required)")
    f.add_argument("--mutant", action="append", default=[], metavar="M",
                   help="switch a mutant on (repeatable; `mmrace mutants` lists them)")
    f.add_argument("--seconds", type=positive(float, "number of seconds"),
                   default=DEFAULT_SECONDS, help=f"time budget (default {DEFAULT_SECONDS:g})")
    f.add_argument("--jobs", type=positive(int, "number of processes"), default=1,
                   metavar="J", help="parallel fuzzers: libFuzzer -fork=J, AFL++ one -M and "
                   "J-1 -S instances (default 1)")
    f.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"corpus, crashes, .mmr files and logs (default ./{DEFAULT_OUT})")
    f.add_argument("--seed", type=_engine_seed, metavar="N",
                   help="the engine's random seed (libFuzzer -seed, AFL++ -s; default: random)")
    f.add_argument("--no-counters", action="store_true",
                   help="switch the interleaving counters off (MMRACE_FUZZ_COUNTERS=0): code "
                   "coverage only")
    f.add_argument("--no-seeds", action="store_true",
                   help="start from an empty corpus, not the seed corpus made from the "
                   "catalogue's reproducers")
    f.add_argument("--sanitize", action="store_true",
                   help="build and run the harness under ASan+UBSan")
    f.add_argument("--harness-dir", metavar="DIR",
                   help="run the fuzz_T built in DIR (a CMake build's fuzz/, an OSS-Fuzz $OUT) "
                   "for this engine instead of building one")
    f.add_argument("--json", action="store_true",
                   help="print one JSON object; the engine's output goes to its log only")
    f.set_defaults(func=cmd_fuzz)
    conv = f.add_subparsers(dest="fuzz_command", metavar="convert")
    c = conv.add_parser("convert", help="convert a crash or corpus file to .mmr",
                        description="Decode a fuzz input (a crash or corpus file) with the "
                        "target's decoder and print the .mmr program that replays the same run.")
    c.add_argument("file", metavar="FILE", help="the crash or corpus file")
    c.add_argument("--target", dest="convert_target", default=DEFAULT_CONVERT_TARGET,
                   metavar="T", help=f"the harness the file is an input of (default "
                   f"{DEFAULT_CONVERT_TARGET})")
    c.add_argument("--mutant", dest="convert_mutant", action="append", default=[],
                   metavar="M", help="the mutants the run had on (repeatable)")
    c.add_argument("-o", "--out", dest="convert_out", metavar="OUT",
                   help="write the .mmr here (default: print it)")
    c.set_defaults(func=cmd_convert)


def _targets() -> list[str]:
    if not hasattr(_core, "fuzz_targets"):
        raise fuzz_build.SetupError("this mmrace was built without the fuzz bindings "
                                    "(_core.fuzz_targets); reinstall it from a source tree "
                                    "that has them")
    return list(_core.fuzz_targets())


def _check_target(target: str | None, flag: str) -> str:
    known = _targets()
    if target not in known:
        near = difflib.get_close_matches(target or "", known, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ValueError(f"{flag} {target}: unknown target{hint}; one of {', '.join(known)}")
    return target


def _check_mutants(mutants: list[str], target: str, flag: str) -> None:
    """Each mutant exists, is built, and can show in the target's strategy."""
    catalogue = {e["name"]: e for e in _core.mutant_catalogue()}
    for m in mutants:
        if m not in catalogue:
            near = difflib.get_close_matches(m, list(catalogue), n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ValueError(f"{flag} {m}: unknown mutant ({hint}`mmrace mutants` lists them)")
        e = catalogue[m]
        if not e["built"]:
            raise ValueError(f"{flag} {m}: the mutant is in the catalogue but not built yet")
        strategies = e["strategies"].split(",")
        wanted = TARGET_STRATEGY.get(target)
        if wanted and "all" not in strategies and wanted not in strategies:
            raise ValueError(f"{flag} {m}: a mutant of {e['strategies']}; target {target} "
                             f"runs {wanted}")


def _decode(target: str, data: bytes, mutants: list[str]) -> str:
    return _core.fuzz_decode(target, data, mutants)


def _replay(path: Path) -> dict:
    """`mmrace run PATH --json` in a child process: a model crash stays there."""
    try:
        p = subprocess.run([sys.executable, "-m", "mmrace", "run", str(path), "--json"],
                           capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"verdict": None, "check": None, "replay_error": "the replay timed out"}
    try:
        out = json.loads(p.stdout)
        return {"verdict": out["verdict"], "check": out["check"], "replay_error": None}
    except (ValueError, KeyError):
        err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        return {"verdict": None, "check": None, "replay_error": err}


def _convert_finding(crash: Path, target: str, mutants: list[str]) -> dict:
    entry: dict[str, Any] = {"crash": str(crash), "reproducer": None, "verdict": None,
                             "check": None, "replay_error": None}
    if target == PARSER_TARGET:  # the input is the .mmr text whose parse went wrong
        mmr = crash.with_name(crash.name + ".mmr")
        mmr.write_bytes(crash.read_bytes())
        entry.update(reproducer=str(mmr), verdict="round_trip", check="format")
        return entry
    try:
        text = _decode(target, crash.read_bytes(), mutants)
    except Exception as e:  # the decoder is total: this is a bug, but keep the crash file
        entry["replay_error"] = f"not converted: {type(e).__name__}: {e}"
        return entry
    mmr = crash.with_name(crash.name + ".mmr")
    mmr.write_text(text, encoding="utf-8")
    entry["reproducer"] = str(mmr)
    entry.update(_replay(mmr))
    return entry


def _options(args: argparse.Namespace, out: Path) -> fuzz_engine.Options:
    env = {"MMRACE_MUTANTS": ",".join(args.mutant),
           "MMRACE_FUZZ_COUNTERS": "0" if args.no_counters else "1"}
    return fuzz_engine.Options(seconds=args.seconds, jobs=args.jobs, out=out, env=env,
                               seed=args.seed, use_seeds=not args.no_seeds,
                               echo=not args.json)


def _usage(message: str) -> int:
    from mmrace.cli import EXIT_USAGE
    print(f"mmrace fuzz: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_fuzz(args: argparse.Namespace) -> int:
    from mmrace.cli import EXIT_INTERRUPTED, EXIT_MODEL_ERROR, EXIT_OK, EXIT_VERDICT
    try:
        if args.engine is None or args.target is None:
            missing = " and ".join(f for f, v in (("--engine", args.engine),
                                                  ("--target", args.target)) if v is None)
            raise ValueError(f"{missing} required (e.g. mmrace fuzz --engine libfuzzer "
                             "--target spf), or `mmrace fuzz convert FILE`")
        target = _check_target(args.target, "--target")
        _check_mutants(args.mutant, target, "--mutant")
        tc = fuzz_build.toolchain(args.engine)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        say = None if args.json else (lambda line: print(f"mmrace fuzz: {line}",
                                                          file=sys.stderr, flush=True))
        harness = (fuzz_build.prebuilt(args.harness_dir, target) if args.harness_dir else
                   fuzz_build.build(args.engine, target, args.sanitize, notify=say))
    except (ValueError, fuzz_build.SetupError) as e:
        return _usage(str(e))
    except OSError as e:
        return _usage(f"{e.filename}: {e.strerror}")
    except fuzz_build.BuildError as e:
        print(f"mmrace fuzz: {e}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    except KeyboardInterrupt:
        print("mmrace fuzz: interrupted while building", file=sys.stderr)
        return EXIT_INTERRUPTED
    o = _options(args, out)
    # Ctrl-C must reach us even when we were started with SIGINT ignored (a background
    # job of a script): the engines are stopped and what they found is still reported.
    old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        outcome = (fuzz_engine.run_libfuzzer(harness, o) if args.engine == "libfuzzer"
                   else fuzz_engine.run_afl(harness, tc, o))
    finally:
        signal.signal(signal.SIGINT, old_handler)
    found = [_convert_finding(c, target, args.mutant) for c in outcome.crashes]
    _report(args, target, outcome, found)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if not found and _engine_failed(outcome):
        return EXIT_MODEL_ERROR
    return EXIT_VERDICT if found else EXIT_OK


def _engine_failed(o: fuzz_engine.Outcome) -> bool:
    """An engine that ended on its own with an error and no crash file: it could not run
    the harness (its log says why)."""
    return not o.interrupted and any(rc != 0 for rc in o.exit_codes)


def _report(args: argparse.Namespace, target: str, o: fuzz_engine.Outcome,
            found: list[dict]) -> None:
    first = found[0] if found else None
    if args.json:
        print(json.dumps({
            "found": bool(found), "reproducer": first and first["reproducer"],
            "seconds": round(o.seconds, 3),
            "execs_per_s": None if o.execs_per_s is None else round(o.execs_per_s, 1),
            "engine": args.engine, "target": target, "mutants": args.mutant,
            "counters": not args.no_counters, "seed": args.seed, "jobs": args.jobs,
            "interrupted": o.interrupted, "findings": found,
            "logs": [str(p) for p in o.logs]}, indent=1))
        return
    rate = "" if o.execs_per_s is None else f", {o.execs_per_s:,.0f} execs/s"
    mutants = f", mutants {','.join(args.mutant)}" if args.mutant else ""
    state = "interrupted" if o.interrupted else ("found" if found else "nothing found")
    print(f"mmrace fuzz: {state}: {args.engine} on fuzz_{target}{mutants}, "
          f"{o.seconds:.1f}s{rate}, {args.jobs} job(s); logs {', '.join(map(str, o.logs))}")
    for f in found:
        what = f"{f['verdict']} ({f['check']})" if f["verdict"] else f["replay_error"]
        print(f"  crash {f['crash']}: {what}")
        if f["reproducer"]:
            print(f"  saved {f['reproducer']}\n  replay: mmrace run {f['reproducer']}")
        if f["verdict"] == "ok":
            print("  warning: the .mmr replays to verdict ok: the crash did not reproduce "
                  "through the decoder")
    if not found and _engine_failed(o):
        print(f"  the engine exited with {o.exit_codes} and no crash file: see its log",
              file=sys.stderr)


def cmd_convert(args: argparse.Namespace) -> int:
    from mmrace.cli import EXIT_OK
    try:
        target = _check_target(args.convert_target, "--target")
        _check_mutants(args.convert_mutant, target, "--mutant")
        data = Path(args.file).read_bytes()
        text = _decode(target, data, args.convert_mutant)
        if args.convert_out:
            Path(args.convert_out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except (ValueError, fuzz_build.SetupError) as e:
        return _usage(f"convert: {e}")
    except OSError as e:
        return _usage(f"convert: {e.filename}: {e.strerror}")
    return EXIT_OK
