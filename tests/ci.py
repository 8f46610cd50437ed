"""What a test does when something it needs is missing: skip here, fail in CI."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(message: str, what: str = "a missing tool or service") -> None:
    """Skip the test with `message`, or fail it under CI=true, where nothing may be missing."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: {what} is a failure, not a skip)")
    pytest.skip(message)
