from __future__ import annotations

import pytest

from .world import NOW


@pytest.fixture
def fixed_now(monkeypatch):
    """The pages and the API ask timezone.now(); the generated calls are relative to NOW."""
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW
