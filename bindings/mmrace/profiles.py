"""The Hypothesis settings profiles of mmrace, registered on import (mmrace.testing
imports this module): "mmrace-dev", "mmrace-ci" and "mmrace-nightly".

    from hypothesis import settings
    import mmrace.testing
    settings.load_profile("mmrace-ci")      # or: pytest --mmrace-profile mmrace-ci

docs/python.md#hypothesis-profiles gives the numbers and why.
"""
from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

# deadline=None everywhere: a run's length depends on the program and the interleaving
# (a fork copies page tables, the linearizability oracle searches), so one example taking
# ten times another is expected, not a sign of a flaky test.
#
# too_slow and large_base_example are suppressed: a drawn workload is hundreds of small
# choices (threads, ops, addresses, features), made by the C++ generator through
# Hypothesis, so generation is slower and bigger than Hypothesis' defaults expect of a
# simple value; neither says anything about the test.
_SUPPRESS = (HealthCheck.too_slow, HealthCheck.large_base_example)

# Each derives from Hypothesis' "default" profile, not from the one loaded at import:
# under CI=true Hypothesis loads its own "ci" profile (derandomize, no database), which
# would otherwise leak into mmrace-dev and mmrace-nightly.
_BASE = settings.get_profile("default")

PROFILES = {
    # At a desk: a quick answer, failures remembered in .hypothesis/ and tried first on
    # the next run.
    "mmrace-dev": settings(_BASE, max_examples=100, deadline=None, suppress_health_check=_SUPPRESS,
                           print_blob=True),
    # CI: the same examples on every run (derandomize), so a red build is the code's
    # doing, never the seed's; no database, as a CI machine starts clean (share failures
    # across a fleet with RedisExampleDatabase instead: docs/python.md).
    "mmrace-ci": settings(_BASE, max_examples=500, deadline=None, suppress_health_check=_SUPPRESS,
                          derandomize=True, database=None, print_blob=True),
    # Nightly: ten times CI's examples, fresh randomness each night, and the explain
    # phase, which says which parts of the minimal example matter.  Failures go to the
    # local database, so the next run (and the developer) replays them first.
    "mmrace-nightly": settings(_BASE, max_examples=5000, deadline=None,
                               suppress_health_check=_SUPPRESS, print_blob=True,
                               phases=tuple(Phase)),
}

for _name, _profile in PROFILES.items():
    settings.register_profile(_name, _profile)
