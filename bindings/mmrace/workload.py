"""The workload shape: racing multi-threaded programs from the core's generator.

    from mmrace import _core, workload
    d = workload.shape(strategy="spf", mutants=["spf_no_pmd_recheck"])
    text = workload.workload(7, strategy="spf")        # the .mmr text of seed 7
    _core.explore(None, workload=d, policies=["pct"], max_seconds=10)

``shape()`` checks its arguments and returns the dict the bindings take as ``workload=``
(``_core.generate(source, "workload", workload=d)``, ``_core.explore(None, workload=d)``):
the program of seed s is drawn in C++ from SplitMix64Choices(s), with no Python per
program.  A feature that is off draws nothing (docs/generator.md).
"""
from __future__ import annotations

from collections.abc import Iterable

from mmrace import _core

__all__ = ["AIMS", "FEATURES", "STRATEGIES", "GEOMETRIES", "VMA_LOCK", "aim", "shape", "strategy_for",
           "workload"]

# Every feature switch of WorkloadShape (cpp_core/src/program/generate/workload.hpp).
FEATURES = ("fork", "gup", "peek_poke", "mremap", "mprotect", "dontneed", "pageout", "collapse",
            "uffd", "files", "shmem", "thp", "reclaim", "smaps", "khugepaged", "sysfs",
            "cpu_hotplug", "debugger", "kvm", "purge", "bursts", "counters")
STRATEGIES = ("classic", "spf", "pervma")
GEOMETRIES = ("small", "x86")
VMA_LOCK = ("swapin", "file", "uffd")

_CATALOGUE = {row["name"]: row for row in _core.mutant_catalogue()}


def _names(what: str, value: object, allowed: Iterable[str]) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{what}={value!r}: expected a list of names")
    allowed = tuple(allowed)
    out = []
    for name in value:
        if name not in allowed:
            raise ValueError(f"{what}: unknown name {name!r} (one of {', '.join(allowed)})")
        if name not in out:
            out.append(name)
    return out


def _range(what: str, value: object, least: int, most: int) -> list[int]:
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
          and least <= value[0] <= value[1] <= most)
    if not ok:
        raise ValueError(f"{what}={value!r}: expected (lo, hi) with {least} <= lo <= hi <= {most}")
    return [value[0], value[1]]


def _mutants(strategy: str, mutants: object) -> list[str]:
    names = _names("mutants", mutants, _CATALOGUE)
    for name in names:
        row = _CATALOGUE[name]
        if not row["built"]:
            raise ValueError(f"mutants: {name!r} is not built yet")
        if row["strategies"] != "all" and strategy not in row["strategies"].split(","):
            raise ValueError(f"mutants: {name!r} is for strategy {row['strategies']}, not {strategy}")
    return names


def shape(strategy: str = "classic", mutants: Iterable[str] = (), threads: tuple[int, int] = (2, 4),
          ops: tuple[int, int] = (3, 10), pages: int = 16, features: Iterable[str] | None = None,
          geometry: str = "small", vma_lock: Iterable[str] = (),
          simplest_first: bool = False, swarm: bool = True) -> dict:
    """The `workload=` dict of a shape, every argument checked (ValueError naming the bad one).

    threads: the first process's threads (lo, hi); ops: each thread's ops (lo, hi); pages:
    the contested window; features: the names of FEATURES to switch on (None: all of
    them); vma_lock: the fault cases pervma takes under the VMA lock; simplest_first: every
    choice simplest at 0 (for a shrinker; False draws the seeds' usual texts); swarm:
    each program keeps each of those features with probability 1/2 (swarm testing: a
    feature that crowds out another's race is absent from half the programs), else every
    program has them all.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry={geometry!r}: expected one of {', '.join(GEOMETRIES)}")
    if not isinstance(pages, int) or isinstance(pages, bool) or not 1 <= pages <= 64:
        raise ValueError(f"pages={pages!r}: expected an int in [1, 64]")
    for name, value in (("simplest_first", simplest_first), ("swarm", swarm)):
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r}: expected a bool")
    locks = _names("vma_lock", vma_lock, VMA_LOCK)
    if locks and strategy != "pervma":
        raise ValueError(f"vma_lock={','.join(locks)} is for strategy pervma, not {strategy}")
    return {
        "strategy": strategy,
        "geometry": geometry,
        "mutants": _mutants(strategy, mutants),
        "vma_lock": locks,
        "threads": _range("threads", threads, 1, 8),
        "ops": _range("ops", ops, 1, 64),
        "pages": pages,
        "features": list(FEATURES) if features is None else _names("features", features, FEATURES),
        "simplest_first": simplest_first,
        "swarm": swarm,
    }


def workload(seed: int, **shape_kwargs) -> str:
    """The .mmr text of seed `seed`'s workload in shape(**shape_kwargs)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"seed={seed!r}: expected an int in [0, 2**64)")
    return _core.generate(seed, "workload", workload=shape(**shape_kwargs))


# Workloads aimed at a mutant's subsystem: the features (and sizes) that build its race,
# as a kernel developer would aim a hunt at the code a patch touches (`mmrace hunt
# --features`).  Every feature on dilutes these races: fork, counters' lost stores and a
# stale TLB for pervma_fork_no_vma_write_lock; a shmem THP retracted under gup_fast for
# khugepaged_retract_no_ipi.  A mutant not named here races in the full workload.
AIMS: dict[str, dict] = {
    "pervma_fork_no_vma_write_lock": {"features": ("fork", "counters"), "threads": (3, 4)},
    "khugepaged_retract_no_ipi": {"features": ("kvm", "collapse", "shmem", "thp")},
    "spf_no_seqcount_check": {"features": ("mprotect", "mremap", "dontneed"),
                              "threads": (3, 4), "ops": (8, 10)},
    "spf_no_pmd_recheck": {"features": ("collapse", "thp", "khugepaged"),
                           "threads": (3, 4), "ops": (8, 10)},
    "dirty_cow": {"features": ("debugger", "dontneed", "purge", "files")},
    # A child's read-only pin of a page it shares after fork, its munmap, then the
    # parent's write: every other feature's ops dilute that chain (about 41,000 runs
    # with all of them, about 1,000 with these two).
    "cow_reuse_after_ro_gup": {"features": ("fork", "gup")},
}


def aim(mutant: str) -> dict:
    """shape() keyword arguments aimed at `mutant` (AIMS), or {} for the full workload."""
    if mutant not in _CATALOGUE:
        raise ValueError(f"unknown mutant {mutant!r}")
    return {k: v for k, v in AIMS.get(mutant, {}).items()}


def strategy_for(mutant: str) -> str:
    """The strategy a workload for `mutant` runs: its catalogue's first ('all': classic)."""
    if mutant not in _CATALOGUE:
        raise ValueError(f"unknown mutant {mutant!r}")
    strategies = _CATALOGUE[mutant]["strategies"]
    return "classic" if strategies == "all" else strategies.split(",")[0]
