"""The audit trail's filters, shared by the pages, their CSV/JSON exports and the API, so the
three always select the same events."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from .models import Action, AuditEvent, Via


class AuditEventFilter(django_filters.FilterSet):
    """action: an action ("key.revoked") or what it happened to ("key": every key event);
    actor: a user name; start/end: dates, both included; target: a name, id or type of what
    was acted on (part of its name is enough); via: session, key, system, anonymous; team: a
    team's slug (the platform-wide page only)."""

    action = django_filters.CharFilter(method="filter_action")
    actor = django_filters.CharFilter(field_name="actor_name", lookup_expr="iexact")
    start = django_filters.DateFilter(field_name="at", lookup_expr="date__gte")
    end = django_filters.DateFilter(field_name="at", lookup_expr="date__lte")
    target = django_filters.CharFilter(method="filter_target")
    via = django_filters.ChoiceFilter(choices=Via.choices)
    team = django_filters.CharFilter(field_name="team_slug", lookup_expr="iexact")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "start", "end", "target", "via", "team"]

    def filter_action(self, queryset, name, value):
        value = value.strip().lower()
        if not value:
            return queryset
        if "." in value:
            return queryset.filter(action=value)
        return queryset.filter(action__startswith=f"{value}.")

    def filter_target(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(target_repr__icontains=value) | Q(target_id=value) | Q(target_type=value)
        )


def action_choices() -> list[tuple[str, str]]:
    """For the page's filter: every action, and each group of them ("key": all key events)."""
    groups = sorted({value.split(".", 1)[0] for value in Action.values})
    return [(group, f"All {group} events") for group in groups] + list(Action.choices)
