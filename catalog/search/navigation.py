"""Links of a search page: each facet value toggles its filter, the active filters can be
removed one by one, and pages and sorts keep everything else. Built from the validated
CatalogQuery, so a link never carries a parameter twice."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from .queries import CatalogQuery

SINGLE_VALUED = ("task", "framework", "license", "owner")


def query_string(query: CatalogQuery, **changes) -> str:
    query = replace(query, **changes)
    params = [("q", query.text)] if query.text else []
    params += [(name, getattr(query, name)) for name in SINGLE_VALUED if getattr(query, name)]
    if query.tags:
        params.append(("tags", ",".join(query.tags)))
    if query.sort != ("relevance" if query.text else "popular"):
        params.append(("sort", query.sort))
    if query.page > 1:
        params.append(("page", query.page))
    if query.verbatim:
        params.append(("verbatim", 1))
    return "?" + urlencode(params) if params else "?"


@dataclass(frozen=True)
class FacetLink:
    value: str
    count: int
    url: str
    active: bool


@dataclass(frozen=True)
class ActiveFilter:
    name: str
    value: str
    remove_url: str


def facet_links(query: CatalogQuery, facets: dict[str, list[dict]]) -> dict[str, list[FacetLink]]:
    links = {}
    for name, values in facets.items():
        entries = []
        for facet in values:
            value = facet["value"]
            if name == "tags":
                active = value in query.tags
                tags = set(query.tags) ^ {value}
                url = query_string(query, tags=tuple(sorted(tags)), page=1)
            else:
                active = getattr(query, name) == value
                url = query_string(query, **{name: "" if active else value}, page=1)
            entries.append(FacetLink(value, facet["count"], url, active))
        links[name] = entries
    return links


def active_filters(query: CatalogQuery) -> list[ActiveFilter]:
    active = [
        ActiveFilter(name, getattr(query, name), query_string(query, **{name: ""}, page=1))
        for name in SINGLE_VALUED
        if getattr(query, name)
    ]
    active += [
        ActiveFilter(
            "tag", tag, query_string(query, tags=tuple(t for t in query.tags if t != tag), page=1)
        )
        for tag in query.tags
    ]
    return active
