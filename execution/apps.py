from django.apps import AppConfig

from .backends import backends
from .backends.http import HttpBackend
from .backends.local import LocalBackend


class ExecutionConfig(AppConfig):
    name = "execution"
    label = "execution"
    verbose_name = "Execution"

    def ready(self):
        backends.add("local", LocalBackend())
        backends.add("http", HttpBackend())
