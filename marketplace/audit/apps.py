from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "marketplace.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        # Imported here: it imports models, which Django loads after every apps.py. Importing it
        # connects the receivers that record account changes and log-ins.
        from . import signals  # noqa: F401, PLC0415
