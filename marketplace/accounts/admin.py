from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils import timezone

from .models import ApiKey, Membership, Team, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "date_joined", "last_login")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_personal", "created_at")
    list_filter = ("is_personal",)
    search_fields = ("slug", "name")
    inlines = [MembershipInline]
    readonly_fields = ("is_personal", "personal_owner")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("team", "user", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("team__slug", "user__username")
    autocomplete_fields = ("team", "user")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by their owners (pages, API, create_api_key); here they can be
    inspected and revoked. The secret is not stored, so there is nothing to show."""

    list_display = (
        "prefix",
        "name",
        "team",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "team__slug", "created_by__username")
    readonly_fields = (
        "id",
        "prefix",
        "secret_hash",
        "team",
        "created_by",
        "created_at",
        "last_used_at",
    )
    fields = (
        "id",
        "name",
        "prefix",
        "team",
        "created_by",
        "scopes",
        "project",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "secret_hash",
    )
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)
