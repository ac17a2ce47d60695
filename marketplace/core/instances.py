"""A new, unsaved model instance without Model.__init__, for the rows every call makes (its
invocation, its usage record): __init__'s field loop and related-object descriptors were a
tenth of the web worker's CPU per call (bench/profile_invoke.py). Only for models without
init signal receivers (tests/gateway/test_invocation_record.py checks the ones it makes)."""

from __future__ import annotations

from django.db.models.base import ModelState


def unsaved(model_class, /, **values):
    """`model_class(**values)`: the fields' defaults, then `values` (a foreign key given as an
    instance sets its id and its cache, as the descriptor would)."""
    instance = model_class.__new__(model_class)
    attributes = instance.__dict__
    cache = {}
    used = 0
    for field in model_class._meta.concrete_fields:
        name, attname = field.name, field.attname
        if name in values:
            used += 1
            value = values[name]
            if name != attname:  # a foreign key, given as an instance
                cache[name] = value
                value = None if value is None else getattr(value, field.target_field.attname)
        elif attname in values:
            used += 1
            value = values[attname]
        else:
            value = field.get_default()
        attributes[attname] = value
    if used != len(values):
        unknown = set(values) - {
            n for f in model_class._meta.concrete_fields for n in (f.name, f.attname)
        }
        raise TypeError(f"{model_class.__name__} has no field {', '.join(sorted(unknown))}")
    state = instance._state = ModelState()
    state.fields_cache.update(cache)
    return instance
