from django.conf import settings

from .sandbox import find_bubblewrap


def sandbox(request):
    return {
        "sandbox_off": settings.SANDBOX == "off",
        "sandbox_warning": _sandbox_warning(request),
    }


def _sandbox_warning(request) -> str:
    """What staff must know on every page: tenant code runs unconfined, or cannot run."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return ""
    if settings.SANDBOX == "off":
        return (
            "SANDBOX=off: models and builds run without a sandbox, with this host's "
            "network and files. Only for code you trust."
        )
    found, message = find_bubblewrap()
    if found is None:
        return f"No sandbox works on this host, so no model is built or run: {message}"
    return ""
