from __future__ import annotations

import logging
from collections import Counter

from celery import shared_task

from . import provisioning, sso
from .models import ExternalIdentity

logger = logging.getLogger(__name__)


@shared_task(name="marketplace.accounts.tasks.recheck_signed_on_users", ignore_result=True)
def recheck_signed_on_users() -> dict:
    """Every OIDC_REFRESH_SECONDS (beat): re-check each active signed-on user with the
    provider, so a leaver's sessions and keys end within that interval."""
    if not sso.enabled():
        return {}
    outcomes: Counter = Counter()
    for external in ExternalIdentity.objects.select_related("user").filter(user__is_active=True):
        outcomes[provisioning.recheck(external)] += 1
    if outcomes:
        logger.info("signed-on users re-checked: %s", dict(outcomes))
    return dict(outcomes)
