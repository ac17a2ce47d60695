"""django-filter FilterSets for catalogue reads."""

from __future__ import annotations

import django_filters

from .models import Model


class ModelFilter(django_filters.FilterSet):
    """The catalogue's filters (task, framework, license, owner, tags: docs/api.md). Applied by
    the PostgreSQL search engine to the models a principal may see; `tags` is comma-separated
    and every tag must match."""

    task = django_filters.CharFilter(field_name="task")
    framework = django_filters.CharFilter(field_name="framework")
    license = django_filters.CharFilter(field_name="license")
    owner = django_filters.CharFilter(field_name="owner__slug")
    tags = django_filters.CharFilter(method="filter_tags")

    class Meta:
        model = Model
        fields = ["task", "framework", "license", "owner", "tags"]

    def filter_tags(self, queryset, name, value):
        tags = sorted({t.strip().lower() for t in value.split(",") if t.strip()})
        return queryset.filter(tags__contains=tags) if tags else queryset
