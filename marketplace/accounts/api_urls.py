from django.urls import path

from . import api

urlpatterns = [
    path("me", api.MeApi.as_view(), name="api-me"),
    path("teams", api.TeamListApi.as_view(), name="api-teams"),
    path("teams/<slug:team>", api.TeamDetailApi.as_view(), name="api-team"),
    path("teams/<slug:team>/members", api.MemberListApi.as_view(), name="api-team-members"),
    path(
        "teams/<slug:team>/members/<slug:username>",
        api.MemberDetailApi.as_view(),
        name="api-team-member",
    ),
    path(
        "teams/<slug:team>/members/<slug:username>/deprovision",
        api.MemberDeprovisionApi.as_view(),
        name="api-team-member-deprovision",
    ),
    path("sso/group-mappings", api.GroupMappingListApi.as_view(), name="api-sso-mappings"),
    path(
        "sso/group-mappings/<str:mapping_id>",
        api.GroupMappingDetailApi.as_view(),
        name="api-sso-mapping",
    ),
    path("keys", api.KeyListApi.as_view(), name="api-keys"),
    path("keys/<str:key_id>", api.KeyDetailApi.as_view(), name="api-key"),
]
