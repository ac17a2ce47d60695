"""/v1/me, /v1/teams, /v1/teams/{team}/members and /v1/keys."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.api import Pagination
from marketplace.core.errors import AuthorizationError

from . import selectors, services
from .models import ApiKey, Role
from .principals import Principal
from .scopes import FULL_ACCESS, is_full_access


def acting_scopes(request) -> list[str]:
    """What the request may do: a key's scopes, or everything for a browser session."""
    if isinstance(request.auth, ApiKey):
        return list(request.auth.scopes)
    return list(FULL_ACCESS)


def require_account_management(request) -> None:
    """Teams, members and keys are managed from a browser session or with a personal
    full-access key, so a narrowly scoped or team key can never mint itself more power."""
    key = request.auth
    if not isinstance(key, ApiKey):
        return
    if not key.team.is_personal or not is_full_access(key.scopes):
        raise AuthorizationError(
            "Managing teams and keys needs a browser session or a personal full-access key"
        )


# -- serializers ---------------------------------------------------------------------------


class TeamOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    is_personal = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    role = serializers.CharField(source="my_role", allow_null=True)
    member_count = serializers.IntegerField()


class TeamCreateInput(serializers.Serializer):
    slug = serializers.CharField(max_length=39)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class TeamUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class MemberOutput(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()
    joined_at = serializers.DateTimeField(source="created_at")


class MemberAddInput(serializers.Serializer):
    username = serializers.CharField(max_length=39)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberUpdateInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class KeyOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    team = serializers.CharField(source="team.slug")
    created_by = serializers.CharField(source="created_by.username")
    scopes = serializers.ListField(child=serializers.CharField())
    project = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField(source="is_active")


class KeyCreatedOutput(KeyOutput):
    secret = serializers.CharField(help_text="The key itself. Shown once, never again.")


class KeyCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    team = serializers.CharField(
        max_length=39, required=False, help_text="Team slug; your personal namespace if omitted"
    )
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=list,
        help_text="algo:// patterns, catalog:write, billing:read. Empty: the key can call nothing.",
    )
    project = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class MeOutput(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.CharField()
    key = KeyOutput(allow_null=True)
    teams = TeamOutput(many=True)


# -- views -------------------------------------------------------------------------------------


class MeApi(APIView):
    @extend_schema(responses=MeOutput, summary="Who am I", tags=["accounts"])
    def get(self, request):
        data = {
            "username": request.user.username,
            "email": request.user.email,
            "key": request.auth if isinstance(request.auth, ApiKey) else None,
            "teams": selectors.teams_for_principal(Principal.from_request(request)),
        }
        return Response(MeOutput(data).data)


class TeamListApi(APIView):
    # Set here for the schema too: drf-spectacular documents the page envelope.
    pagination_class = Pagination

    @extend_schema(responses=TeamOutput(many=True), summary="Your teams", tags=["teams"])
    def get(self, request):
        paginator = self.pagination_class()
        teams = selectors.teams_for_principal(Principal.from_request(request))
        page = paginator.paginate_queryset(teams, request, self)
        return paginator.get_paginated_response(TeamOutput(page, many=True).data)

    @extend_schema(
        request=TeamCreateInput,
        responses={201: TeamOutput},
        summary="Create a team (you become its owner)",
        tags=["teams"],
    )
    def post(self, request):
        require_account_management(request)
        data = _valid(TeamCreateInput, request)
        team = services.team_create(actor=request.user, **data)
        team = selectors.team_for_member(request.user, team.slug)
        return Response(TeamOutput(team).data, status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    @extend_schema(responses=TeamOutput, summary="A team you belong to", tags=["teams"])
    def get(self, request, team):
        team_obj = selectors.team_for_principal(Principal.from_request(request), team)
        return Response(TeamOutput(team_obj).data)

    @extend_schema(
        request=TeamUpdateInput, responses=TeamOutput, summary="Change a team", tags=["teams"]
    )
    def patch(self, request, team):
        require_account_management(request)
        team_obj = selectors.team_for_member(request.user, team)
        services.team_update(actor=request.user, team=team_obj, **_valid(TeamUpdateInput, request))
        return Response(TeamOutput(selectors.team_for_member(request.user, team)).data)

    @extend_schema(responses={204: None}, summary="Delete a team (owners only)", tags=["teams"])
    def delete(self, request, team):
        require_account_management(request)
        services.team_delete(actor=request.user, team=selectors.team_for_member(request.user, team))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListApi(APIView):
    # Set here for the schema too: drf-spectacular documents the page envelope.
    pagination_class = Pagination

    @extend_schema(responses=MemberOutput(many=True), summary="Members of a team", tags=["teams"])
    def get(self, request, team):
        team_obj = selectors.team_for_principal(Principal.from_request(request), team)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.team_memberships(team_obj), request, self)
        return paginator.get_paginated_response(MemberOutput(page, many=True).data)

    @extend_schema(
        request=MemberAddInput,
        responses={201: MemberOutput},
        summary="Add a member (owners and admins)",
        tags=["teams"],
    )
    def post(self, request, team):
        require_account_management(request)
        team_obj = selectors.team_for_member(request.user, team)
        membership = services.membership_add(
            actor=request.user, team=team_obj, **_valid(MemberAddInput, request)
        )
        return Response(MemberOutput(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    @extend_schema(responses=MemberOutput, summary="One member of a team", tags=["teams"])
    def get(self, request, team, username):
        team_obj = selectors.team_for_principal(Principal.from_request(request), team)
        return Response(MemberOutput(selectors.membership_get(team_obj, username)).data)

    @extend_schema(
        request=MemberUpdateInput,
        responses=MemberOutput,
        summary="Change a member's role",
        tags=["teams"],
    )
    def patch(self, request, team, username):
        require_account_management(request)
        team_obj = selectors.team_for_member(request.user, team)
        membership = services.membership_change_role(
            actor=request.user,
            membership=selectors.membership_get(team_obj, username),
            **_valid(MemberUpdateInput, request),
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None}, summary="Remove a member, or leave", tags=["teams"])
    def delete(self, request, team, username):
        require_account_management(request)
        team_obj = selectors.team_for_member(request.user, team)
        services.membership_remove(
            actor=request.user, membership=selectors.membership_get(team_obj, username)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class KeyListApi(APIView):
    # Set here for the schema too: drf-spectacular documents the page envelope.
    pagination_class = Pagination

    @extend_schema(
        responses=KeyOutput(many=True),
        summary="Your keys and the keys of teams you administer",
        tags=["keys"],
    )
    def get(self, request):
        # Who holds which key is read as keys are managed: a narrow or team key may not.
        require_account_management(request)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.api_keys_visible_to(request.user), request, self
        )
        return paginator.get_paginated_response(KeyOutput(page, many=True).data)

    @extend_schema(
        request=KeyCreateInput,
        responses={201: KeyCreatedOutput},
        summary="Create a key; the secret is in this response only",
        tags=["keys"],
    )
    def post(self, request):
        require_account_management(request)
        data = _valid(KeyCreateInput, request)
        team_slug = data.pop("team", None)
        team = selectors.team_for_member(request.user, team_slug) if team_slug else None
        key, secret = services.api_key_create(actor=request.user, team=team, **data)
        body = KeyOutput(key).data | {"secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class KeyDetailApi(APIView):
    @extend_schema(responses=KeyOutput, summary="One key", tags=["keys"])
    def get(self, request, key_id):
        require_account_management(request)
        return Response(KeyOutput(selectors.api_key_get(request.user, key_id)).data)

    @extend_schema(
        responses={200: KeyOutput},
        summary="Revoke a key (it stops working on every server within a second)",
        tags=["keys"],
    )
    def delete(self, request, key_id):
        require_account_management(request)
        key = services.api_key_revoke(
            actor=request.user, key=selectors.api_key_get(request.user, key_id)
        )
        return Response(KeyOutput(key).data)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
