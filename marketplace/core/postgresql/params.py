"""A model instance's values as the parameters of a hand-written statement, as
`Field.get_db_prep_save` makes them, without its cost where it changes nothing.

A call writes two rows of about thirty columns each (its invocation and its usage record);
`get_db_prep_save` on every column was a tenth of the web worker's CPU per call in the
profile (bench/profile_invoke.py). For the plain columns (text, integers, booleans, floats,
aware datetimes) PostgreSQL's backend passes the Python value through unchanged, so a value
of exactly the column's type is taken as it is; anything else (a foreign key, a UUID, JSON,
a decimal, a value of another type) goes through the field's own `get_db_prep_save`.
tests/core/test_statement_params.py compares the two on real rows."""

from __future__ import annotations

import datetime
import functools

from django.db import models

# Field classes whose get_db_prep_save returns a value of this exact type (or None) as it is.
_PASSED_THROUGH: tuple[tuple[type, type], ...] = (
    (models.CharField, str),
    (models.TextField, str),
    (models.IntegerField, int),  # and its Positive/Small/Big subclasses
    (models.BooleanField, bool),
    (models.FloatField, float),
    (models.DateTimeField, datetime.datetime),
)
_OVERRIDES = ("get_db_prep_save", "get_db_prep_value", "get_prep_value", "to_python")


def _passed_through(field) -> type | None:
    """The Python type `field` passes through, or None: only for the classes above and their
    subclasses that change none of the conversion methods."""
    for base, kind in _PASSED_THROUGH:
        if (
            isinstance(field, base)
            and not field.is_relation
            and all(getattr(type(field), name) is getattr(base, name) for name in _OVERRIDES)
        ):
            return kind
    return None


@functools.cache
def _converters(model, names: tuple[str, ...] | None, operations) -> tuple:
    """(attname, field, the type passed through or None, what wraps it) per field. An
    integer is wrapped as the backend's `adapt_integerfield_value` wraps it (psycopg's
    Int2/Int4/Int8, so a prepared statement gets the column's type)."""
    fields = (
        model._meta.concrete_fields
        if names is None
        else tuple(model._meta.get_field(name) for name in names)
    )
    integer_types = getattr(operations, "integerfield_type_map", {})
    converters = []
    for field in fields:
        kind = _passed_through(field)
        wrap = integer_types.get(field.get_internal_type()) if kind is int else None
        converters.append((field.attname, field, kind, wrap))
    return tuple(converters)


def statement_params(instance, connection, names: tuple[str, ...] | None = None) -> list:
    """The values of `instance`'s concrete fields (or the fields `names`), in order, as
    parameters for `connection`."""
    params = []
    append = params.append
    for attname, field, kind, wrap in _converters(type(instance), names, type(connection.ops)):
        value = getattr(instance, attname)
        if value is None and kind is not None:
            append(None)
        elif (
            kind is not None
            and type(value) is kind
            and (kind is not datetime.datetime or value.tzinfo is not None)
        ):
            append(value if wrap is None else wrap(value))
        else:
            append(field.get_db_prep_save(value, connection))
    return params
