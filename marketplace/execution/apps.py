from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "marketplace.execution"
    label = "execution"
    verbose_name = "Execution"
