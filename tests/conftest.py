"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The third-party fixture collection beside the checkout (../shared/fixtures), read in place."""
    if not (SHARED_FIXTURES / "README.md").is_file():
        pytest.skip(
            f"third-party fixtures not found at {SHARED_FIXTURES}; "
            "check out the shared/ folder beside the project to run this test"
        )
    return SHARED_FIXTURES
