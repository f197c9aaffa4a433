"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real Unity recordings, beside the checkout when present (never on a user's machine).
REAL_DEMOS = REPO_ROOT.parent / "shared" / "real-demos"


@pytest.fixture
def real_demos_dir() -> Path:
    """The folder of real Unity `.demo` files; skips the test when it is absent."""
    if not REAL_DEMOS.is_dir():
        pytest.skip("real Unity recordings (../shared/real-demos) are not available")
    return REAL_DEMOS
