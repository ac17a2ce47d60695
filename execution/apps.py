from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "execution"
    label = "execution"
    verbose_name = "Execution"
