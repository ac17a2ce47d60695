import json

from django import template
from django.utils.safestring import mark_safe

from catalog.demo.examples import demo_examples
from catalog.models import Model, Visibility
from catalog.rendering import render_markdown
from catalog.search.highlight import highlight as mark_matches
from catalog.task_icons import task_icon_svg

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


@register.simple_tag
def task_icon(task: str, size: int = 14):
    """The task's own inline SVG icon (catalog/task_icons.py)."""
    return task_icon_svg(task, size=size)


@register.filter
def price_per_call(royalty) -> str:
    """A version's royalty per call as a card shows it: "0.0001 cr/call", or "" for none."""
    if not royalty:
        return ""
    return f"{plain_decimal(royalty)} cr/call"


@register.simple_tag
def demo_example(name: str):
    """One of the recorded examples (catalog/demo/examples.toml), for the home and docs
    pages: `{% demo_example "quickstart" as ex %}` then ex.curl, ex.result_json, ..."""
    return demo_examples()[name]


@register.simple_tag
def example_curl(example, base_url: str) -> str:
    return example.curl(base_url)


@register.filter
def plain_decimal(value) -> str:
    """A Decimal without trailing zeros or an exponent: 0.000100 → "0.0001"."""
    if value is None or value == "":
        return ""
    return f"{value.normalize():f}"


@register.simple_tag
def example_model_url(example) -> str:
    """The page of the model an example calls, or "" when this server has no such public
    model (the demo catalogue is not loaded everywhere): no link then, never a dead one."""
    model = Model.objects.filter(
        owner__slug=example.owner, slug=example.name_slug, visibility=Visibility.PUBLIC
    ).first()
    return model.url if model is not None else ""
