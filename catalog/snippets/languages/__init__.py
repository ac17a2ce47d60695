"""One module per snippet language, each a subclass of `catalog.snippets.Language`; catalog's
AppConfig.ready() adds them to `catalog.snippets.languages`."""
