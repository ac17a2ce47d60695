from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from .models import Role
from .scopes import ALL_MODELS, BILLING_READ, CATALOG_WRITE, DATA_READ, DATA_WRITE, FULL_ACCESS


class SignUpForm(forms.Form):
    username = forms.CharField(
        max_length=39,
        help_text="Your namespace: lowercase letters, digits and hyphens, e.g. ada-lovelace.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class TeamCreateForm(forms.Form):
    slug = forms.CharField(
        label="Team name in URLs",
        max_length=39,
        help_text="Lowercase letters, digits and hyphens, e.g. acme-research.",
    )
    name = forms.CharField(label="Display name", max_length=100, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class TeamUpdateForm(forms.Form):
    name = forms.CharField(label="Display name", max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=39)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


class KeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What or who uses it, e.g. 'prod web app'.")
    team = forms.ChoiceField(help_text="Calls made with the key are billed to this namespace.")
    # The default key calls any model its namespace may call: a first key that only got a
    # name must work with every snippet on the site.
    access = forms.ChoiceField(
        choices=[
            ("call", "Call any model"),
            ("full", "Full access"),
            ("restricted", "Restricted"),
        ],
        initial="call",
        widget=forms.RadioSelect,
    )
    model_patterns = forms.CharField(
        label="Models it may call",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "algo://acme/*\nalgo://acme/sentiment/1.*"}
        ),
        help_text="Restricted keys only: one algo:// pattern per line.",
    )
    allow_publish = forms.BooleanField(label="May publish and manage models", required=False)
    allow_billing = forms.BooleanField(label="May read usage and billing reports", required=False)
    data_access = forms.ChoiceField(
        label="Hosted data and connected buckets",
        choices=[("", "No access"), ("read", "Read only"), ("write", "Read and write")],
        required=False,
        initial="",
        help_text="data:// collections and s3:// connectors of the key's namespace.",
    )
    allow_nothing = forms.BooleanField(
        label="Yes, create a key that can do nothing yet",
        required=False,
        help_text="A restricted key with no model and no permission answers every call with "
        "an AuthorizationError until it is replaced.",
    )
    project = forms.CharField(
        max_length=64,
        required=False,
        help_text="Optional cost centre label; usage reports group by it.",
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False)

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [
            (t.slug, f"{t.slug} (personal)" if t.is_personal else t.slug) for t in teams
        ]

    def clean(self):
        data = super().clean()
        if data.get("access") == "restricted" and not self.scopes() and not data["allow_nothing"]:
            self.add_error(
                "allow_nothing",
                "This key could call no model and do nothing else: add a model pattern, tick "
                "a permission, choose “Call any model”, or confirm that you want it so.",
            )
        return data

    def scopes(self) -> list[str]:
        data = self.cleaned_data
        if data.get("access") == "full":
            return list(FULL_ACCESS)
        if data.get("access") == "call":
            return [ALL_MODELS]
        scopes = [
            line.strip() for line in data.get("model_patterns", "").splitlines() if line.strip()
        ]
        if data.get("allow_publish"):
            scopes.append(CATALOG_WRITE)
        if data.get("allow_billing"):
            scopes.append(BILLING_READ)
        if data.get("data_access") == "read":
            scopes.append(DATA_READ)
        elif data.get("data_access") == "write":
            scopes.extend([DATA_READ, DATA_WRITE])
        return scopes

    def expires_at(self):
        days = self.cleaned_data.get("expires")
        return timezone.now() + timedelta(days=int(days)) if days else None
