"""Shared test settings: async tests run on asyncio through anyio's pytest plugin.

Property tests have no per-example deadline (a shared CI machine is slower than a laptop), and in
CI they are derandomised so that a run is reproducible; locally they explore new examples each run.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
