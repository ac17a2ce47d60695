from django import forms

from .models import ReadAcl


class CollectionCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Letters, digits, '_', '-' or '.'; e.g. training-sets."
    )
    read_acl = forms.ChoiceField(
        label="Who may read it", choices=ReadAcl.choices, initial=ReadAcl.MY_ALGORITHMS
    )


class CollectionAclForm(forms.Form):
    read_acl = forms.ChoiceField(label="Who may read it", choices=ReadAcl.choices)


class DirectoryCreateForm(forms.Form):
    name = forms.CharField(max_length=255, label="New folder")


class ConnectorForm(forms.Form):
    name = forms.CharField(
        max_length=63, help_text="What callers write after s3://, e.g. s3://NAME/path."
    )
    bucket = forms.CharField(max_length=63)
    endpoint_url = forms.CharField(
        label="Endpoint URL",
        max_length=300,
        required=False,
        help_text="Empty for AWS; e.g. https://minio.example.com for another S3-compatible store.",
    )
    region = forms.CharField(max_length=32, initial="us-east-1")
    prefix = forms.CharField(
        max_length=300, required=False, help_text="Only keys under this prefix are reachable."
    )
    access_key_id = forms.CharField(label="Access key ID", max_length=128)
    secret = forms.CharField(
        label="Secret access key",
        max_length=256,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again.",
    )

    def __init__(self, *args, editing: bool = False, hint: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["secret"].required = False
            self.fields[
                "secret"
            ].help_text = f"Now {hint or 'set'}. Leave empty to keep it; it is never shown again."
