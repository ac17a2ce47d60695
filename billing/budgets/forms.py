"""Forms of the budgets and prices pages. They only shape the input; the services hold the
rules and their refusals are shown next to the field they name."""

from __future__ import annotations

from django import forms


class BudgetForm(forms.Form):
    project = forms.CharField(
        max_length=64,
        required=False,
        help_text="Empty: the whole team. Otherwise the project label of keys or X-Project.",
    )
    monthly_amount = forms.DecimalField(
        label="Monthly amount (credits)", max_digits=20, decimal_places=6
    )
    thresholds = forms.CharField(
        label="Alert thresholds (%)",
        initial="50, 80, 100",
        required=False,
        help_text="Each notifies owners and admins once a month, e.g. 50, 80, 100.",
    )
    hard_cap = forms.BooleanField(
        label="Hard cap: refuse calls with 402 once the budget is spent", required=False
    )
    webhook_url = forms.CharField(
        label="Webhook URL",
        max_length=500,
        required=False,
        help_text="Also POST each alert here, signed with the team's signing secret.",
    )


class PriceForm(forms.Form):
    hardware_class = forms.CharField(max_length=32, initial="cpu")
    price_per_second = forms.DecimalField(
        label="Price per second (credits)", max_digits=20, decimal_places=9
    )
    effective_from = forms.DateTimeField(
        label="Effective from (UTC)",
        required=False,
        help_text="Empty: now. Never in the past: a price never applies to calls already made.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    note = forms.CharField(max_length=200, required=False)
