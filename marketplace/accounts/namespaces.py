"""How Algorithmia's clients may write a namespace's name.

A namespace slug is lowercase letters, digits and hyphens (`models.NAMESPACE_SLUG_PATTERN`).
Algorithmia's clients accept only word characters before the first slash of `owner/name`
(the Python client parses `(?:algo://|/|)(\\w+/.+)`), so `acme-research/topic-classifier`
raises `ValueError: Invalid algorithm URI` in the client before anything is sent. Every
namespace is therefore also reachable by its client alias: its slug with each `-` written
`_` (`acme_research/topic-classifier`).

The alias is unambiguous because no slug holds `_`: the sign-up and team forms and services
refuse it (`NAMESPACE_SLUG_PATTERN`), and so does the database (the check constraint
`team_slug_is_a_namespace_slug`, migration accounts/0006), whatever path writes the row. So
`slug_from_client_name(client_alias(slug)) == slug` for every slug, and two namespaces
never share an alias.

Only the owner is aliased: a model's name may hold both `-` and `_` (`topic-classifier` and
`topic_classifier` can be two models), and the clients accept any name after the slash.
"""

from __future__ import annotations


def client_alias(slug: str) -> str:
    """The name Algorithmia's clients accept for the namespace `slug`."""
    return slug.replace("-", "_")


def slug_from_client_name(name: str) -> str:
    """The namespace slug that `name` (a slug, or its client alias) stands for."""
    return name.replace("_", "-")
