"""A catalogue search as the API and the pages ask for it, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field

from marketplace.core.errors import InputError

SORTS = ("relevance", "popular", "recent")
FACETS = ("task", "framework", "license", "owner", "tags")
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class CatalogQuery:
    text: str = ""
    tags: tuple[str, ...] = ()
    task: str = ""
    framework: str = ""
    license: str = ""
    owner: str = ""
    sort: str = "relevance"
    page: int = 1
    page_size: int = 20
    facets: tuple[str, ...] = field(default=FACETS)

    @classmethod
    def from_params(cls, params) -> CatalogQuery:
        for name in ("search", "q", "task", "framework", "license", "owner", "tags", "sort"):
            if "\x00" in (params.get(name) or ""):
                raise InputError(f"{name}: must not contain a NUL character")
        text = (params.get("search") or params.get("q") or "").strip()
        if len(text) > MAX_QUERY_LENGTH:
            raise InputError(f"search: at most {MAX_QUERY_LENGTH} characters")
        sort = (params.get("sort") or "relevance").strip()
        if sort not in SORTS:
            raise InputError(f"sort: one of {', '.join(SORTS)}")
        try:
            page = int(params.get("page") or 1)
            page_size = int(params.get("page_size") or 20)
        except ValueError:
            raise InputError("page and page_size must be whole numbers") from None
        if page < 1 or not 1 <= page_size <= 100:
            raise InputError("page must be 1 or more and page_size between 1 and 100")
        raw_tags = (
            params.getlist("tags") if hasattr(params, "getlist") else [params.get("tags", "")]
        )
        tags = tuple(
            sorted(
                {t.strip().lower() for raw in raw_tags for t in (raw or "").split(",") if t.strip()}
            )
        )
        return cls(
            text=text,
            tags=tags,
            task=(params.get("task") or "").strip(),
            framework=(params.get("framework") or "").strip(),
            license=(params.get("license") or "").strip(),
            owner=(params.get("owner") or "").strip(),
            sort=sort if text or sort != "relevance" else "popular",
            page=page,
            page_size=page_size,
        )


@dataclass
class SearchResult:
    models: list
    count: int
    facets: dict[str, list[dict]]
    engine: str
