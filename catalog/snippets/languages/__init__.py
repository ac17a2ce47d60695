"""One module per snippet language; each registers itself with `@register`. Every module in
this package is imported by `catalog.snippets.languages()` on first use."""
