#!/usr/bin/env python3
"""Regenerate the fuzz targets' seed corpora (fuzz/corpus/<target>/) through the encoder.

    python fuzz/make_seeds.py          # needs mmrace installed (pip install .)

- program: every reproducer of the mutant catalogue (examples/mutants/*.mmr), with its
  schedule: without its mutant each runs to ok, with it each is a finding at once.
- spf, pervma, gup: the programs of fuzz/seeds/<target>/*.mmr, written in the target's
  fixed shape (mmrace/fuzz.hpp) around the races of that target's mutants.
- mmr_parser: every .mmr file under examples/ and fuzz/seeds/, as text.

A file the encoder cannot express is an error naming the op or bound (exit 1).
"""
import pathlib
import shutil
import sys

from mmrace import _core

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def sources(target: str) -> list[pathlib.Path]:
    if target == "program":
        return sorted((ROOT / "examples" / "mutants").glob("*.mmr"))
    if target == "mmr_parser":
        return sorted(ROOT.glob("examples/**/*.mmr")) + sorted(ROOT.glob("fuzz/seeds/**/*.mmr"))
    return sorted((ROOT / "fuzz" / "seeds" / target).glob("*.mmr"))


def main() -> int:
    for target in _core.fuzz_targets():
        out = CORPUS / target
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for src in sources(target):
            text = src.read_text()
            try:
                data = text.encode() if target == "mmr_parser" else _core.fuzz_encode(target, text)
            except ValueError as e:
                print(f"{src.relative_to(ROOT)}: {target}: {e}", file=sys.stderr)
                return 1
            name = src.stem if target != "mmr_parser" else str(src.relative_to(ROOT)).replace("/", "_")
            (out / name).write_bytes(data)
        print(f"{target}: {len(list(out.iterdir()))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
