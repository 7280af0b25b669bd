"""mmrace mutants: the mutant catalogue (docs/mutants.md) with each one's reproducer."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from mmrace import _core


def add_parser(sub: Any) -> None:
    m = sub.add_parser("mutants", help="list the mutants: historical bugs on a switch",
                       description="The mutant catalogue: name, upstream reference, the seed "
                       "it comes from, strategies, the check expected to catch it, whether "
                       "it is built, and its reproducer's path and text.")
    m.add_argument("--json", action="store_true", help="print a JSON list, texts included")
    m.set_defaults(func=cmd_mutants)


def reproducer_dir() -> Path:
    """Where the reproducers are: the package's mutants/ (installed by CMake from
    examples/mutants), else examples/mutants of the source tree the package runs from."""
    here = Path(__file__).resolve().parent
    installed = here / "mutants"
    return installed if installed.is_dir() else here.parent.parent / "examples" / "mutants"


def _row(entry: dict) -> dict:
    """One catalogue entry with its origin seeds, reproducer path, text and seed."""
    path = reproducer_dir() / f"{entry['name']}.mmr"
    text = path.read_text(encoding="utf-8") if path.is_file() else None
    sched = re.search(r"^schedule (.*)$", text or "", re.M)
    seed = re.search(r"\bseed=(\d+)", sched.group(1)) if sched else None
    return {**entry,
            "origin": re.findall(r"\b\d{3}\b", entry["reference"].split("seed", 1)[-1])
            if "seed" in entry["reference"] else [],
            "seed": int(seed.group(1)) if seed else None,
            "schedule": sched.group(1) if sched else None,
            "reproducer": str(path) if text is not None else None, "text": text}


def cmd_mutants(args: argparse.Namespace) -> int:
    rows = [_row(e) for e in _core.mutant_catalogue()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        built = "built" if r["built"] else "not built yet"
        print(f"{r['name']}: {built}; {r['reference']}; strategies {r['strategies']}; "
              f"check {r['check']}")
        print(f"  {r['summary']}")
        if r["reproducer"]:
            print(f"  reproducer {r['reproducer']} (mmrace run replays it):")
            print("    " + r["text"].rstrip("\n").replace("\n", "\n    "))
    return 0
