from __future__ import annotations

from . import context


class AuditContextMiddleware:
    """Makes the current request known to the audit trail while it is handled (see
    marketplace.audit.context), and forgets it afterwards."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = context.bind(request)
        try:
            return self.get_response(request)
        finally:
            context.unbind(token)
