"""/v1/me, /v1/teams, /v1/teams/{team}/members, /v1/keys and /v1/sso/group-mappings."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.api import Pagination
from marketplace.core.errors import AuthorizationError

from . import provisioning, selectors, services
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
    require_sso = serializers.BooleanField()


class TeamCreateInput(serializers.Serializer):
    slug = serializers.CharField(max_length=39)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class TeamUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    require_sso = serializers.BooleanField(
        required=False, help_text="Members sign in with company sign-on only (no password)."
    )


class GroupMappingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    group = serializers.CharField()
    team = serializers.CharField(source="team.slug")
    role = serializers.CharField()
    created_at = serializers.DateTimeField()


class GroupMappingInput(serializers.Serializer):
    group = serializers.CharField(max_length=255)
    team = serializers.CharField(max_length=39)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


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
        data = _valid(TeamUpdateInput, request)
        require_sso = data.pop("require_sso", None)
        if data:
            services.team_update(actor=request.user, team=team_obj, **data)
        if require_sso is not None:
            provisioning.team_require_sign_on(
                actor=request.user, team=team_obj, required=require_sso
            )
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


class MemberDeprovisionApi(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Lock out a member who signs in through company sign-on (owners and admins)",
        description="Ends their sessions, revokes every API key they made and removes their "
        "memberships of mapped teams, at once. Only platform staff unlock the account.",
        tags=["teams"],
    )
    def post(self, request, team, username):
        require_account_management(request)
        team_obj = selectors.team_for_member(request.user, team)
        provisioning.deprovision_member(actor=request.user, team=team_obj, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _require_staff(request) -> None:
    require_account_management(request)
    if not request.user.is_staff:
        raise AuthorizationError("Only platform staff manage sign-on group mappings")


class GroupMappingListApi(APIView):
    @extend_schema(
        responses=GroupMappingOutput(many=True),
        summary="Sign-on groups mapped to teams and roles (platform staff)",
        tags=["sso"],
    )
    def get(self, request):
        _require_staff(request)
        return Response(GroupMappingOutput(selectors.group_mappings(), many=True).data)

    @extend_schema(
        request=GroupMappingInput,
        responses={201: GroupMappingOutput},
        summary="Map a provider group to a team and role (platform staff)",
        tags=["sso"],
    )
    def post(self, request):
        _require_staff(request)
        data = _valid(GroupMappingInput, request)
        mapping = provisioning.mapping_create(
            actor=request.user, group=data["group"], team_slug=data["team"], role=data["role"]
        )
        return Response(GroupMappingOutput(mapping).data, status=status.HTTP_201_CREATED)


class GroupMappingDetailApi(APIView):
    @extend_schema(responses={204: None}, summary="Remove a group mapping", tags=["sso"])
    def delete(self, request, mapping_id):
        _require_staff(request)
        provisioning.mapping_delete(
            actor=request.user, mapping=selectors.group_mapping_get(mapping_id)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
