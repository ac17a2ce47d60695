"""Django admin for hosted data: collections and their index are read here (changes go
through the API, which keeps usage and the audit trail in step); an operator sets one
namespace's quota on its usage row."""

from __future__ import annotations

from django.contrib import admin

from .models import Collection, TeamDataUsage


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "read_acl", "created_at")
    list_filter = ("read_acl",)
    search_fields = ("name", "team__slug")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TeamDataUsage)
class TeamDataUsageAdmin(admin.ModelAdmin):
    list_display = ("team", "bytes_used", "quota_bytes")
    search_fields = ("team__slug",)
    fields = ("team", "bytes_used", "quota_bytes")
    readonly_fields = ("team", "bytes_used")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
