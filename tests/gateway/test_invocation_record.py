"""The rows a call writes are written as Django would write them: an instance made without
Model.__init__ (core/instances.py: unsaved) is the one the constructor makes, and the
statement parameters (core/postgresql/params.py) are what Field.get_db_prep_save makes."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models.signals import post_init, pre_init
from django.utils import timezone

from billing.models import UsageRecord
from gateway.models import Invocation
from marketplace.core.instances import unsaved
from marketplace.core.postgresql.params import statement_params
from tests.gateway.conftest import key_client

pytestmark = pytest.mark.slow


def _prepared(instance) -> list:
    return [
        field.get_db_prep_save(getattr(instance, field.attname), connection)
        for field in type(instance)._meta.concrete_fields
    ]


def _same(left: list, right: list) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert type(a) is type(b) and repr(a) == repr(b)


def test_a_calls_rows_have_the_parameters_django_makes(toolbox, owner):
    response = key_client(owner).post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json")
    assert response.status_code == 200, response.content
    invocation = Invocation.objects.get(pk=response["X-Request-ID"])
    record = UsageRecord.objects.get(request_id=invocation.pk)
    for row in (invocation, record):
        _same(statement_params(row, connection), _prepared(row))
    names = ("status", "result", "finished_at", "model_duration", "output_bytes")
    fields = [Invocation._meta.get_field(name) for name in names]
    _same(
        statement_params(invocation, connection, names),
        [f.get_db_prep_save(getattr(invocation, f.attname), connection) for f in fields],
    )


def test_values_of_another_type_go_through_the_field(toolbox, owner, settings):
    settings.USE_TZ = True
    invocation = Invocation.objects.first() or Invocation()
    odd = {
        "input_bytes": True,  # a bool in an integer column
        "depth": "2",  # text in an integer column
        "model_duration": Decimal("0.5"),  # a decimal in a float column
        "stdout": 7,  # a number in a text column
        "cold_start": 1,  # an int in a boolean column
        "input_content_type": None,
        "finished_at": timezone.now(),
        "id": str(uuid.uuid4()),  # a request id as text, in a UUID column
    }
    for name, value in odd.items():
        setattr(invocation, name, value)
    _same(statement_params(invocation, connection), _prepared(invocation))
    invocation.started_at = datetime.datetime(2026, 1, 2, 3, 4, 5)  # naive
    with pytest.warns(RuntimeWarning):
        params = statement_params(invocation, connection)
    assert params[[f.name for f in Invocation._meta.concrete_fields].index("started_at")].tzinfo


def test_a_new_invocation_is_what_its_constructor_makes(toolbox, owner):
    for model in (Invocation, UsageRecord):  # the models unsaved() makes
        assert not pre_init.has_listeners(model) and not post_init.has_listeners(model)
    response = key_client(owner).post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json")
    loaded = Invocation.objects.select_related(
        "model", "version", "build", "caller_team", "caller_user", "api_key"
    ).get(pk=response["X-Request-ID"])
    values = {
        "id": str(uuid.uuid4()),
        "model": loaded.model,
        "version": loaded.version,
        "build": loaded.build,
        "version_label": "1.0.0",
        "caller_team": loaded.caller_team,
        "caller_user": loaded.caller_user,
        "api_key": None,
        "status": "running",
        "parent_id": None,
        "input_data": {"a": 1},
    }
    made, constructed = unsaved(Invocation, **values), Invocation(**values)
    for field in Invocation._meta.concrete_fields:
        if field.name != "created_at":  # timezone.now() for each
            assert getattr(made, field.attname) == getattr(constructed, field.attname), field
    assert made.model is loaded.model and made.caller_team is loaded.caller_team
    assert made.api_key is None and made._state.adding and made._state.db is None
    with pytest.raises(TypeError):
        unsaved(Invocation, no_such_field=1)
