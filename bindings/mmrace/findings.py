"""Saving a finding's reproducer: DIR/<check>-<short hash>.mmr, never over another file.

The name is the check (or the verdict, for a check-less failure) and the first 10 hex
digits of the SHA-256 of the text, so the same reproducer saved twice gets the same
name and is written once.  Files are opened with O_CREAT|O_EXCL (Python's mode "x"):
two hunts, or two jobs, writing into one directory never overwrite each other, and a
file that holds other text under the same name (a hash collision of 40 bits) gets a
"-2", "-3", ... suffix instead.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

__all__ = ["save"]


def _stem(check: str | None, verdict: str, text: str) -> str:
    label = re.sub(r"[^A-Za-z0-9_]+", "_", check or verdict) or "failure"
    return f"{label}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def save(directory: str | Path, check: str | None, verdict: str, text: str) -> Path:
    """Writes `text` to a new file in `directory` (created if missing) and returns its
    path; a file that already holds exactly `text` is returned as it is.  Raises
    OSError when the directory cannot be created or written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    stem = _stem(check, verdict, text)
    for n in range(1, 1000):
        path = d / (f"{stem}.mmr" if n == 1 else f"{stem}-{n}.mmr")
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
            return path
        except FileExistsError:
            if path.read_text(encoding="utf-8", errors="replace") == text:
                return path
    raise OSError(f"{d}: 999 files named {stem}*.mmr hold other reproducers")
