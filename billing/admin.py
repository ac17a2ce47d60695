"""Django admin for prices and budgets. Prices are history: the admin adds new ones through
the same rules as the API (never in the past, never a duplicate start) and cannot change or
delete any. Budgets and their alerts are read here; teams set budgets on their own pages."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from marketplace.core.errors import InputError

from .budgets import services
from .models import Budget, BudgetAlert, ComputePrice


class ComputePriceForm(forms.ModelForm):
    effective_from = forms.DateTimeField(
        required=False, help_text="UTC. Empty: now. Never in the past."
    )

    class Meta:
        model = ComputePrice
        fields = ("hardware_class", "price_per_second", "effective_from", "note")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            hardware_class, price, effective_from, note = services.price_validate(
                hardware_class=data.get("hardware_class", ""),
                price_per_second=data.get("price_per_second"),
                effective_from=data.get("effective_from"),
                note=data.get("note", ""),
            )
        except InputError as error:
            field = next(iter(error.fields or {}), None)
            message = error.message.split(": ", 1)[-1]
            raise ValidationError({field: message} if field in self.fields else message) from None
        if ComputePrice.objects.filter(
            hardware_class=hardware_class, effective_from=effective_from
        ).exists():
            raise ValidationError(
                {"effective_from": f"{hardware_class} already has a price starting then"}
            )
        data.update(
            hardware_class=hardware_class,
            price_per_second=price,
            effective_from=effective_from,
            note=note,
        )
        return data


@admin.register(ComputePrice)
class ComputePriceAdmin(admin.ModelAdmin):
    form = ComputePriceForm
    list_display = ("hardware_class", "price_per_second", "effective_from", "created_by", "note")
    list_filter = ("hardware_class",)
    ordering = ("hardware_class", "-effective_from")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        price = services.price_set(
            actor=request.user,
            hardware_class=data["hardware_class"],
            price_per_second=data["price_per_second"],
            effective_from=data["effective_from"],
            note=data["note"],
        )
        obj.pk = price.pk
        obj.created_by = price.created_by
        obj.created_at = price.created_at


class BudgetAlertInline(admin.TabularInline):
    model = BudgetAlert
    extra = 0
    can_delete = False
    fields = ("month", "threshold", "spent", "created_at", "notified_at")
    readonly_fields = fields
    ordering = ("-month", "threshold")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Read-only: a budget is changed by its team's owners and admins, whose page and API
    also send the alerts a change makes due."""

    list_display = ("team", "project", "monthly_amount", "thresholds", "hard_cap", "updated_at")
    list_filter = ("hard_cap",)
    search_fields = ("team__slug", "project")
    inlines = [BudgetAlertInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    list_display = ("budget", "month", "threshold", "spent", "created_at", "notified_at")
    list_filter = ("month", "threshold")
    search_fields = ("budget__team__slug", "budget__project")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
