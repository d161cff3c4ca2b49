"""Test-wide settings."""

import os

from hypothesis import HealthCheck, settings

# CI runs the property tests on a fixed sequence of examples (reproducible runs); locally they
# explore new examples each time. HYPOTHESIS_PROFILE overrides either.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Real PostgreSQL and Kafka for the tests marked ``integration``, wherever they live.
pytest_plugins = ["tests.services"]
