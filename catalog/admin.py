from django.contrib import admin

from .models import Build, Model, Version, Webhook, WebhookDelivery


class VersionInline(admin.TabularInline):
    model = Version
    extra = 0
    can_delete = False
    fields = ("major", "minor", "patch", "visibility", "royalty_per_call", "published_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ("slug", "owner", "title", "visibility", "runtime", "task", "updated_at")
    list_filter = ("visibility", "runtime", "task")
    search_fields = ("slug", "title", "owner__slug", "tags")
    inlines = [VersionInline]
    readonly_fields = ("created_at", "updated_at")


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    """Builds are made by uploads and run by workers; here they are only inspected."""

    list_display = (
        "model",
        "short_hash",
        "status",
        "runtime",
        "attempts",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "runtime")
    search_fields = ("model__slug", "package_hash")
    readonly_fields = [f.name for f in Build._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Version)
class VersionAdmin(admin.ModelAdmin):
    list_display = ("model", "number", "visibility", "royalty_per_call", "published_at")
    list_filter = ("visibility",)
    search_fields = ("model__slug", "model__owner__slug")
    readonly_fields = [f.name for f in Version._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("owner", "url", "events", "active", "created_at")
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("webhook", "event", "attempts", "last_status", "delivered_at", "created_at")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
