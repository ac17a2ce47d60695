"""What the apps above the catalogue add to a model's page: the gateway its recent calls, billing
its compute price and, for its owners, what it earned. The catalogue sits below them, so it
does not import them; each adds its facts in its AppConfig.ready(), and the page shows what is
registered under each name (catalog/model.html)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marketplace.core.registry import Registry

from .models import Model

# Called as fact(model, is_member=...): is_member says whether the reader is one of its owners.
ModelPageFact = Callable[..., Any]

model_page_facts: Registry[ModelPageFact] = Registry("model page fact")


def model_page_context(model: Model, *, is_member: bool) -> dict[str, Any]:
    return {name: fact(model, is_member=is_member) for name, fact in model_page_facts.items()}
