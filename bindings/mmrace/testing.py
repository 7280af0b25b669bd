"""mmrace.testing: checking programs from tests."""
from mmrace.explore import ExploreInterrupted, ExploreReport, Finding, explore  # noqa: F401
