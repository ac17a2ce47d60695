from django.apps import AppConfig


class DataConfig(AppConfig):
    name = "data"
    label = "data"
    verbose_name = "Hosted data"

    def ready(self):
        # Imported here: the S3 backend imports boto3, which only a configured store needs
        # at run time, and both read settings that exist once Django is set up.
        from .storage import local, s3, storages  # noqa: PLC0415

        storages.add("local", local.LocalStorage.from_settings)
        storages.add("s3", s3.S3Storage.from_settings)
