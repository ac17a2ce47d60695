from __future__ import annotations

import hashlib

import factory

from catalog.models import Build, BuildStatus, Model, Version
from tests.factories import TeamFactory


class ModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Model

    owner = factory.SubFactory(TeamFactory)
    slug = factory.Sequence(lambda n: f"model-{n}")
    title = factory.LazyAttribute(lambda m: m.slug.replace("-", " ").title())
    tagline = "A model made by a factory"
    task = "text-classification"
    runtime = "python"


class BuildFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Build

    model = factory.SubFactory(ModelFactory)
    package_hash = factory.Sequence(lambda n: hashlib.sha256(f"package-{n}".encode()).hexdigest())
    status = BuildStatus.SUCCEEDED
    runtime = "python"
    manifest = factory.LazyAttribute(
        lambda b: {"name": b.model.slug, "runtime": "python", "entrypoint": "predict.py:apply"}
    )


class VersionFactory(factory.django.DjangoModelFactory):
    """VersionFactory(number="1.2.3") sets major, minor and patch."""

    class Meta:
        model = Version
        exclude = ("number",)

    model = factory.SubFactory(ModelFactory)
    build = factory.LazyAttribute(lambda v: BuildFactory(model=v.model))
    number = "1.0.0"
    major = factory.LazyAttribute(lambda v: int(v.number.split(".")[0]))
    minor = factory.LazyAttribute(lambda v: int(v.number.split(".")[1]))
    patch = factory.LazyAttribute(lambda v: int(v.number.split(".")[2]))
    visibility = "public"
