"""A read of one row by its primary key, with its select_related rows, whose SQL Django
compiles once per process instead of on every run.

Django compiles a queryset's SQL each time it runs it; for a select_related read of several
joined tables that is most of the read's CPU (a worker's read of a queued call, with its
model, owner, version, build and key, was about half of the worker's CPU per call). The SQL
does not change between runs, only the key: `CompiledRead` keeps the compiled statement and
the compiler that knows its columns, runs the statement on a prepared cursor (so PostgreSQL
plans it once per connection too) and builds the objects as Django's own iterable does."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

# Stands in for the key while the queryset is compiled; found again in the parameters.
_PLACEHOLDER = uuid.UUID("6d617263-6f6d-7069-6c65-64726561646b")


class CompiledRead:
    """`read(key)` runs `queryset(key)` (a queryset of `model` filtered on its primary key,
    with select_related, unordered) and returns its one object or None, compiling the
    queryset once per database alias. The primary key must be a UUIDField."""

    def __init__(self, model: type[Model], queryset: Callable[[uuid.UUID], QuerySet]):
        self._model = model
        self._queryset = queryset
        self._compiled: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def __call__(self, key) -> Model | None:
        alias = router.db_for_read(self._model)
        compiled = self._compiled.get(alias) or self._compile(alias)
        sql, params, key_at, compiler, pk_field = compiled
        connection = connections[alias]
        params = list(params)
        params[key_at] = pk_field.get_db_prep_value(pk_field.to_python(key), connection)
        with connection.prepared_cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            return None
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        (row,) = compiler.results_iter(results=[rows[:1]])
        instance = klass_info["model"].from_db(alias, init_list, row[start:end])
        for populator in get_related_populators(klass_info, select, alias):
            populator.populate(row, instance)
        return instance

    def _compile(self, alias: str) -> tuple:
        with self._lock:
            if alias in self._compiled:
                return self._compiled[alias]
            template = self._queryset(_PLACEHOLDER).using(alias)
            compiler = template.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            pk_field = template.model._meta.pk
            placeholder = pk_field.get_db_prep_value(_PLACEHOLDER, connections[alias])
            positions = [i for i, value in enumerate(params) if value == placeholder]
            if len(positions) != 1 or compiler.annotation_col_map:
                raise ValueError("a compiled read filters on its primary key once, unannotated")
            compiled = (sql, tuple(params), positions[0], compiler, pk_field)
            self._compiled[alias] = compiled
            return compiled
