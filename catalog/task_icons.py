"""An icon per task, drawn here as inline SVG (24 by 24, stroked with the text colour), so the
home page's task tiles, model cards and model pages tell tasks apart at a glance.

A task is free text in model.toml; known tasks have their own drawing, others get the
drawing of the first keyword their slug contains, and anything else a plain cube."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Each value is the inside of an <svg viewBox="0 0 24 24">: shapes only, no text, no script.
_DRAWINGS = {
    # a label tag with its hole
    "text-classification": '<path d="M3 12V4h8l10 10-7 7L3 12z"/><circle cx="7.5" cy="8" r="1.5"/>',
    # lines of text under a magnifying glass
    "text-analysis": '<path d="M3 5h10M3 9h6M3 13h5"/><circle cx="15" cy="14" r="4"/>'
    '<path d="m18 17 3 3"/>',
    # lines of text and a pencil
    "text-processing": '<path d="M3 6h12M3 11h8M3 16h5"/><path d="m14 20 1-4 6-6 3 3-6 6-4 1z"/>',
    # two speech bubbles
    "translation": '<path d="M3 4h10v7H8l-3 3v-3H3z"/><path d="M13 9h8v7h-2v3l-3-3h-5v-3"/>',
    # lines getting shorter
    "summarization": '<path d="M3 5h18M3 10h14M3 15h9M3 20h4"/>',
    # a four-pointed spark
    "text-generation": '<path d="M12 3c1 5 3 7 8 8-5 1-7 3-8 9-1-6-3-8-8-9 5-1 7-3 8-8z"/>',
    # a picture: frame, sun and a hill
    "image-classification": '<rect x="3" y="4" width="18" height="16" rx="2"/>'
    '<circle cx="9" cy="10" r="2"/><path d="m3 18 6-5 4 3 3-2 5 4"/>',
    # a crop mark
    "image-processing": '<path d="M6 2v16h16"/><path d="M2 6h16v16"/>',
    # a bounding box's corners around a dot
    "object-detection": '<path d="M3 8V3h5M16 3h5v5M21 16v5h-5M8 21H3v-5"/>'
    '<rect x="8" y="8" width="8" height="8" rx="1"/>',
    # a table with a tick
    "tabular-classification": '<rect x="3" y="4" width="18" height="16" rx="1"/>'
    '<path d="M3 9h18M10 9v11"/><path d="m13 15 2 2 4-4"/>',
    # dots and a rising line through them
    "tabular-regression": '<circle cx="6" cy="17" r="1.2"/><circle cx="10" cy="12" r="1.2"/>'
    '<circle cx="15" cy="13" r="1.2"/><circle cx="18" cy="7" r="1.2"/><path d="M3 20 21 4"/>',
    # an arrow out of a point, with two more: a vector
    "feature-extraction": '<circle cx="5" cy="19" r="2"/><path d="M6.5 17.5 19 5M13 5h6v6"/>'
    '<path d="M7 19h8M5 17V9"/>',
    # a wrench
    "utility": '<path d="M15 3a5 5 0 0 0-4.5 7L3 17.5 6.5 21l7.5-7.5A5 5 0 0 0 21 9l-3 3-3-3 3-3'
    ' -3-3z"/>',
    # a sound wave
    "audio": '<path d="M3 12h2M7 8v8M11 4v16M15 8v8M19 10v4M21 12h0"/>',
    # three clusters of dots
    "clustering": '<circle cx="6" cy="7" r="1.5"/><circle cx="9" cy="5" r="1.5"/>'
    '<circle cx="16" cy="16" r="1.5"/><circle cx="19" cy="19" r="1.5"/>'
    '<circle cx="17" cy="6" r="1.5"/><circle cx="6" cy="17" r="1.5"/>',
    # a line chart with a dashed future
    "forecasting": '<path d="M3 3v18h18"/><path d="m6 15 4-4 3 2 3-4"/>'
    '<path d="m16 9 4-3" stroke-dasharray="2 2"/>',
}
# Any other task: the drawing of the first of these words its slug contains.
_KEYWORDS = (
    ("detect", "object-detection"),
    ("segment", "object-detection"),
    ("image", "image-classification"),
    ("vision", "image-classification"),
    ("translat", "translation"),
    ("summar", "summarization"),
    ("generat", "text-generation"),
    ("speech", "audio"),
    ("audio", "audio"),
    ("regress", "tabular-regression"),
    ("forecast", "forecasting"),
    ("time-series", "forecasting"),
    ("cluster", "clustering"),
    ("embed", "feature-extraction"),
    ("feature", "feature-extraction"),
    ("similar", "feature-extraction"),
    ("classif", "tabular-classification"),
    ("tabular", "tabular-classification"),
    ("text", "text-processing"),
    ("nlp", "text-processing"),
    ("util", "utility"),
    ("math", "utility"),
)
# A cube: a task we have no drawing for.
_OTHER = '<path d="m12 3 8 4.5v9L12 21l-8-4.5v-9z"/><path d="m4 7.5 8 4.5 8-4.5M12 12v9"/>'


def task_drawing_name(task: str) -> str:
    """Which drawing the task gets: its own, a keyword's, or "other"."""
    slug = (task or "").strip().lower()
    if slug in _DRAWINGS:
        return slug
    for word, name in _KEYWORDS:
        if word in slug:
            return name
    return "other"


def task_icon_svg(task: str, *, size: int = 18) -> SafeString:
    name = task_drawing_name(task)
    drawing = _DRAWINGS.get(name, _OTHER)
    return format_html(
        '<svg class="task-icon" data-task-icon="{}" width="{}" height="{}" viewBox="0 0 24 24" '
        'fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" '
        'stroke-linejoin="round" aria-hidden="true">{}</svg>',
        name,
        int(size),
        int(size),
        mark_safe(drawing),  # noqa: S308 (constants of this module, never input)
    )
