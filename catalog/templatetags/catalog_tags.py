import json

from django import template
from django.utils.safestring import mark_safe

from catalog.rendering import render_markdown
from catalog.search.highlight import highlight as mark_matches

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    return mark_safe(render_markdown(text))  # noqa: S308 - sanitised by nh3


@register.filter
def as_json(value) -> str:
    """A JSON value as people write it (not Python's repr); a text value as is."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


@register.filter
def highlight(text: str, query: str) -> str:
    """The text, escaped, with the words the search query matched in <mark>."""
    return mark_matches(text, query)
