"""What the apps above the catalogue add to a model's page: the gateway its recent calls, billing
its compute price and, for its owners, what it earned. The catalogue sits below them, so it
does not import them; each adds its facts in its AppConfig.ready(), and the page shows what is
registered under each name (catalog/model.html)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marketplace.core.registry import Registry

from .models import Model, Version

# Called as fact(model, is_member=...): is_member says whether the reader is one of its owners.
ModelPageFact = Callable[..., Any]

model_page_facts: Registry[ModelPageFact] = Registry("model page fact")


def model_page_context(model: Model, *, is_member: bool) -> dict[str, Any]:
    return {name: fact(model, is_member=is_member) for name, fact in model_page_facts.items()}


def model_card_facts(model: Model, version: Version | None) -> dict[str, Any]:
    """What the card at the top of a model's (or a version's) page shows that is not a field
    of the model: tags without duplicates or the task repeated, and the version's README,
    input schema and evaluation metrics as it was published (its build's manifest)."""
    seen = {model.task} if model.task else set()
    tags = []
    for tag in model.tags or []:
        if tag not in seen:
            seen.add(tag)
            tags.append(tag)
    manifest = version.build.manifest if version is not None else {}
    readme = manifest.get("readme")
    return {
        "tags": tags,
        # A version published before the README was kept per build shows the model's.
        "readme": model.readme if readme is None else readme,
        "input_schema": manifest.get("input_schema"),
        "metrics": manifest.get("metrics") or [],
    }
