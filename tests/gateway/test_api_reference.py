"""/v1/docs is a page of the site (its header, navigation and a way back to the docs), and the
call endpoints' examples in the schema are the public models' own sample inputs and recorded
answers, never a private model's."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Model
from tests.catalog.factories import BuildFactory, ModelFactory, VersionFactory

pytestmark = pytest.mark.django_db


def test_the_api_reference_is_inside_the_sites_frame():
    response = Client().get("/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="swagger-ui"' in page and "swagger-ui-bundle.js" in page
    assert 'href="/docs/" data-back-to-docs' in page  # the way back
    assert 'href="/explore/"' in page  # the site's own navigation


def test_call_examples_are_the_models_own_samples_and_answers():
    iris = ModelFactory(slug="iris", visibility="public")
    VersionFactory(
        model=iris,
        number="2.0.0",
        build=BuildFactory(
            model=iris,
            sample_input={"sepal_length": 5.1, "petal_width": 0.2},
            sample_output={"class": "setosa"},
        ),
    )
    Model.objects.filter(pk=iris.pk).update(calls_30d=10)
    words = ModelFactory(slug="words", visibility="public")
    VersionFactory(
        model=words,
        build=BuildFactory(model=words, sample_input="hello there", sample_output={"n": 2}),
    )
    secret = ModelFactory(slug="secret", visibility="private")
    VersionFactory(
        model=secret,
        visibility="private",
        build=BuildFactory(model=secret, sample_input={"classified": True}),
    )
    schema = Client().get("/v1/schema?format=json").json()
    operation = schema["paths"]["/v1/algo/{owner}/{name}/{version}"]["post"]
    content = operation["requestBody"]["content"]
    json_examples = content["application/json"]["examples"]
    assert json_examples[iris.full_name]["value"] == {"sepal_length": 5.1, "petal_width": 0.2}
    assert content["text/plain"]["examples"][words.full_name]["value"] == "hello there"
    answers = operation["responses"]["200"]["content"]["application/json"]["examples"]
    assert answers[iris.full_name]["value"]["result"] == {"class": "setosa"}
    # The most called model names the path's example.
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "path"}
    assert parameters["name"]["example"] == "iris" and parameters["version"]["example"] == "2.0.0"
    assert "classified" not in str(schema) and secret.full_name not in str(schema)


def test_the_call_endpoints_answers_are_examples_too():
    iris = ModelFactory(slug="iris", visibility="public")
    VersionFactory(
        model=iris, build=BuildFactory(model=iris, sample_input={"x": 1}, sample_output={"y": 2})
    )
    schema = Client().get("/v1/schema?format=json").json()
    responses = schema["paths"]["/v1/algo/{owner}/{name}"]["post"]["responses"]
    for status in ("202", "4XX", "503", "504"):
        assert "request_id" in responses[status]["content"]["application/json"]["example"]
