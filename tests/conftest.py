"""Test-wide settings: Hypothesis profiles, the CRM export the ``crm_data`` tests read, and the
real services of the ``integration`` tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from worker.testdata.bank_churn import BANK_CHURN_DATA_ENV, bank_churn_dir
from worker.testdata.crm_export import CRM_DATA_ENV, crm_data_dir

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")

# --------------------------------------------------------------------------- Hypothesis
#
# Profiles (select one with HYPOTHESIS_PROFILE=<name>; the default is "ci" when CI is set,
# "explore" otherwise):
#
#   ci       reproducible: derandomised, so every CI run tries the same examples and a red CI
#            run is red again on a re-run; a failure prints its @reproduce_failure blob.
#            (Derandomised runs use no example database: they need none to repeat.)
#   explore  the local default: random examples, new ones on every run (100 per test), so
#            running the tests keeps looking for failures CI's fixed sequence never tries.
#   nightly  like explore with 20 times the examples, up to 2,000 per test (a test that sets
#            its own max_examples for CI's budget gets 20 times that, up to 2,000): for a
#            scheduled CI job (HYPOTHESIS_PROFILE=nightly) or a local hunt.
#
# explore and nightly save every failing example they find in .hypothesis/examples
# (git-ignored) and replay it first on the next run, so a failure found by chance stays found
# until it is fixed; a scheduled job can keep that directory between runs (cache or artifact).
EXAMPLES = DirectoryBasedExampleDatabase(
    Path(__file__).resolve().parents[1] / ".hypothesis" / "examples"
)
# From Hypothesis's own defaults, not from whatever profile it loaded itself (under CI it loads
# a derandomised one, which "explore" must not inherit).
_common = {
    "parent": settings.get_profile("default"),
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}
settings.register_profile("ci", derandomize=True, print_blob=True, **_common)
_explore = {"derandomize": False, "database": EXAMPLES, **_common}
settings.register_profile("explore", max_examples=100, **_explore)
settings.register_profile("nightly", max_examples=2_000, **_explore)
settings.register_profile("dev", parent=settings.get_profile("explore"))  # the former name
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "explore")
settings.load_profile(PROFILE)


def _nightly_examples(item: pytest.Item) -> None:
    """Under nightly, give a test that sets its own ``@settings(max_examples=N)`` 20 times N
    (up to the profile's 2,000). A value given in the decorator wins over any profile, so
    without this those tests would run no more examples at night than in CI. Hypothesis reads
    a test's settings from ``_hypothesis_internal_use_settings`` when the test runs; if a
    release renames it, this raises (AttributeError) rather than quietly exploring less."""
    test = getattr(item, "obj", None)
    test = getattr(test, "__func__", test)  # a method's function
    if getattr(test, "is_hypothesis_test", False) is not True:
        return
    own = test._hypothesis_internal_use_settings
    nightly = settings.get_profile("nightly").max_examples
    wanted = min(nightly, own.max_examples * nightly // settings.get_profile("ci").max_examples)
    if own.max_examples < wanted:
        test._hypothesis_internal_use_settings = settings(own, max_examples=wanted)


# --------------------------------------------------------------------------- CRM export
#
# Tests that read the public CRM export (../shared/data/crm next to the repository, or
# $REVINTEL_CRM_DATA; worker.testdata.crm_export.crm_data_dir finds it) carry the marker
# ``crm_data`` or use the fixture ``crm_export_dir`` (which adds the marker). Where the export
# is absent they skip, saying so, in a developer's clone; under CI (CI=true) they fail, so a
# CI without the data (or a broken lookup) cannot pass by skipping them.


def crm_export_or_skip() -> Path:
    """The export's directory; skips the test when it is absent, fails it under CI."""
    found = crm_data_dir()
    if found is not None:
        return found
    configured = os.environ.get(CRM_DATA_ENV)
    where = f"${CRM_DATA_ENV}={configured}" if configured else "../shared/data/crm"
    message = f"CRM export not found at {where} (no sales_pipeline.csv)"
    if IN_CI:
        pytest.fail(
            f"{message}; CI requires ../shared/data/crm (or ${CRM_DATA_ENV} pointing at it)",
            pytrace=False,
        )
    pytest.skip(f"{message}; put it there or set ${CRM_DATA_ENV}")


@pytest.fixture(scope="session")
def crm_export_dir() -> Path:
    """The CRM export's directory (see crm_export_or_skip)."""
    return crm_export_or_skip()


def bank_churn_or_skip() -> Path:
    """The bank churn sample's directory (../shared/data/bank_churn or
    $REVINTEL_BANK_CHURN_DATA); skips the test when it is absent, fails it under CI."""
    found = bank_churn_dir()
    if found is not None:
        return found
    configured = os.environ.get(BANK_CHURN_DATA_ENV)
    where = f"${BANK_CHURN_DATA_ENV}={configured}" if configured else "../shared/data/bank_churn"
    message = f"bank churn sample not found at {where} (no customers.csv)"
    if IN_CI:
        pytest.fail(
            f"{message}; CI requires ../shared/data/bank_churn "
            f"(or ${BANK_CHURN_DATA_ENV} pointing at it)",
            pytrace=False,
        )
    pytest.skip(f"{message}; put it there or set ${BANK_CHURN_DATA_ENV}")


@pytest.fixture(scope="session")
def bank_churn_data() -> Path:
    """The bank churn sample's directory (see bank_churn_or_skip)."""
    return bank_churn_or_skip()


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROFILE == "nightly":
            _nightly_examples(item)
        names = getattr(item, "fixturenames", ())
        if "crm_export_dir" in names:
            item.add_marker(pytest.mark.crm_data)
        if "bank_churn_data" in names:
            item.add_marker(pytest.mark.bank_churn_data)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture is set up (no database is created for a test that cannot run)."""
    if item.get_closest_marker("crm_data") is not None:
        crm_export_or_skip()
    if item.get_closest_marker("bank_churn_data") is not None:
        bank_churn_or_skip()


# --------------------------------------------------------------------------- services

# Real PostgreSQL and Kafka for the tests marked ``integration``, wherever they live.
pytest_plugins = ["tests.services"]
