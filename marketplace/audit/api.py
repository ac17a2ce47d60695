"""GET /v1/teams/{team}/audit: a team's audit trail, for its owners and admins."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from marketplace.accounts.principals import Principal
from marketplace.core.api import Pagination

from . import exports, selectors


class TargetOutput(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField()
    name = serializers.CharField()


class AuditEventOutput(serializers.Serializer):
    """The shape of marketplace.audit.exports.event_record (also each item of the JSON
    export); a test keeps the two the same."""

    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    action = serializers.CharField()
    actor = serializers.CharField(allow_null=True, help_text="The user name, kept if deleted")
    via = serializers.ChoiceField(choices=["session", "key", "system", "anonymous"])
    key_prefix = serializers.CharField(allow_null=True)
    ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    team = serializers.CharField(allow_null=True)
    target = TargetOutput()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    request_id = serializers.CharField(allow_null=True)


FILTER_PARAMETERS = [
    OpenApiParameter(
        "action", str, description='An action ("key.revoked") or a group ("key": all key events)'
    ),
    OpenApiParameter("actor", str, description="The acting user's name"),
    OpenApiParameter("start", OpenApiTypes.DATE, description="From this day (UTC), included"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="To this day (UTC), included"),
    OpenApiParameter("target", str, description="Part of the target's name, its id or type"),
    OpenApiParameter("via", str, enum=["session", "key", "system", "anonymous"]),
]


class TeamAuditApi(APIView):
    # Set here for the schema too: drf-spectacular documents the page envelope.
    pagination_class = Pagination

    @extend_schema(
        parameters=FILTER_PARAMETERS,
        responses=AuditEventOutput(many=True),
        summary="A team's audit trail, newest first (owners and admins)",
        tags=["teams"],
    )
    def get(self, request, team):
        principal = Principal.from_request(request)
        team_obj = selectors.audit_team_get(principal, team)
        events = selectors.events_filtered(selectors.team_events(team_obj), request.query_params)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(events, request, self)
        return paginator.get_paginated_response([exports.event_record(e) for e in page])
