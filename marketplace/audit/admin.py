from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is written by the application's services and by nothing else, and
    no one changes or deletes it (the database refuses it too, see migration 0002)."""

    list_display = ("at", "action", "actor_name", "via", "key_prefix", "ip", "team_slug")
    list_filter = ("action", "via")
    search_fields = ("actor_name", "target_repr", "target_id", "team_slug", "request_id", "ip")
    date_hierarchy = "at"
    ordering = ("-at",)
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
