from __future__ import annotations

import pytest

from worker.engine import Framework, load_framework


@pytest.fixture(scope="session")
def fw() -> Framework:
    return load_framework()
