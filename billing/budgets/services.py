"""Writes and business rules of billing: compute prices (platform admins) and budgets (team
owners and admins)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.accounts import policies
from marketplace.accounts.models import Team, User
from marketplace.audit.models import Action
from marketplace.audit.services import audit_record
from marketplace.core.errors import AuthorizationError, ConflictError, InputError
from marketplace.core.outbound import require_public_url

from ..models import Budget, ComputePrice
from . import tasks

HARDWARE_CLASS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PRICE_PLACES = 9
PRICE_MAX_DIGITS = 20
MONEY_PLACES = 6
MONEY_MAX_DIGITS = 20
# A price "from now" reaches the server a moment later; within this much it still means now.
# Anything earlier would reprice calls already made, which a price change never does.
PRICE_CLOCK_TOLERANCE = timedelta(seconds=5)
DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLDS = 10
_http_url = URLValidator(schemes=["http", "https"])


def _decimal(value, *, field: str, places: int, max_digits: int, example: str) -> Decimal:
    """A decimal number given as a Decimal, an integer or a string (never a binary float's
    approximation), within the column's digits, with no more places than it stores."""
    if isinstance(value, bool) or value is None:
        value = ""
    if isinstance(value, float):
        value = repr(value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InputError(
            f"{field}: a decimal number such as {example}", fields={field: ["not a number"]}
        ) from None
    if not number.is_finite():
        raise InputError(f"{field}: a finite number", fields={field: ["not finite"]})
    if abs(number) >= Decimal(10) ** (max_digits - places):
        raise InputError(
            f"{field}: at most {max_digits - places} digits before the decimal point",
            fields={field: ["too large"]},
        )
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise InputError(
            f"{field}: at most {places} decimal places", fields={field: ["too precise"]}
        )
    return number


# -- prices ----------------------------------------------------------------------------------


def price_validate(
    *,
    hardware_class: str,
    price_per_second,
    effective_from: datetime | None = None,
    note: str = "",
    now: datetime | None = None,
) -> tuple[str, Decimal, datetime, str]:
    """The cleaned fields of a new price, or an InputError naming the first wrong one."""
    now = now or timezone.now()
    hardware_class = (hardware_class or "").strip()
    if not HARDWARE_CLASS_PATTERN.match(hardware_class):
        raise InputError(
            "hardware_class: a lowercase name of up to 32 letters, digits, - and _, "
            "starting with a letter (e.g. cpu, gpu-a100)",
            fields={"hardware_class": ["invalid"]},
        )
    price = _decimal(
        price_per_second,
        field="price_per_second",
        places=PRICE_PLACES,
        max_digits=PRICE_MAX_DIGITS,
        example="0.000125",
    )
    if price < 0:
        raise InputError(
            "price_per_second: cannot be negative", fields={"price_per_second": ["negative"]}
        )
    if effective_from is None:
        effective_from = now
    if timezone.is_naive(effective_from):
        raise InputError(
            "effective_from: give a time zone (e.g. 2030-01-01T00:00:00Z)",
            fields={"effective_from": ["naive"]},
        )
    if effective_from < now - PRICE_CLOCK_TOLERANCE:
        raise InputError(
            f"effective_from: {effective_from.isoformat()} is in the past; a price applies "
            "from now or a later time, never to calls already made",
            fields={"effective_from": ["past"]},
        )
    # Within the tolerance "just now" becomes now, so no call already made is repriced.
    effective_from = max(effective_from, now)
    note = (note or "").strip()
    if len(note) > 200:
        raise InputError("note: at most 200 characters", fields={"note": ["too long"]})
    return hardware_class, price, effective_from, note


@transaction.atomic
def price_set(
    *,
    actor: User,
    hardware_class: str,
    price_per_second,
    effective_from: datetime | None = None,
    note: str = "",
) -> ComputePrice:
    """Schedule the per-second price of a hardware class from `effective_from` (default now)
    until the class's next price. Existing prices are never changed: history stays what was
    billed."""
    if not getattr(actor, "is_staff", False):
        raise AuthorizationError("Only platform administrators can set compute prices")
    hardware_class, price, effective_from, note = price_validate(
        hardware_class=hardware_class,
        price_per_second=price_per_second,
        effective_from=effective_from,
        note=note,
    )
    conflict = ConflictError(
        f"{hardware_class} already has a price starting at {effective_from.isoformat()}; "
        "prices are never changed, so schedule the new one at another time"
    )
    if ComputePrice.objects.filter(
        hardware_class=hardware_class, effective_from=effective_from
    ).exists():
        raise conflict
    try:
        with transaction.atomic():
            created = ComputePrice.objects.create(
                hardware_class=hardware_class,
                price_per_second=price,
                effective_from=effective_from,
                created_by=actor,
                note=note,
            )
    except IntegrityError:
        raise conflict from None
    replaced = (
        ComputePrice.objects.filter(
            hardware_class=hardware_class, effective_from__lt=effective_from
        )
        .order_by("-effective_from")
        .first()
    )
    audit_record(
        action=Action.PRICE_CREATED,
        actor=actor,
        target=created,
        before={"price_per_second": replaced.price_per_second} if replaced else None,
        after={
            "hardware_class": hardware_class,
            "price_per_second": price,
            "effective_from": effective_from,
            "note": note,
        },
    )
    return created


# -- budgets ---------------------------------------------------------------------------------


def parse_thresholds(values) -> list[int]:
    try:
        thresholds = sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise InputError("thresholds: whole percentages, e.g. [50, 80, 100]") from None
    if len(thresholds) > MAX_THRESHOLDS or any(not 1 <= t <= 1000 for t in thresholds):
        raise InputError(f"thresholds: at most {MAX_THRESHOLDS} percentages between 1 and 1000")
    return thresholds


def budget_validate(
    *, project: str = "", monthly_amount, thresholds=DEFAULT_THRESHOLDS, webhook_url: str = ""
) -> tuple[str, Decimal, list[int], str]:
    """The cleaned fields of a budget, or an InputError naming the first wrong one."""
    project = (project or "").strip()
    if len(project) > 64:
        raise InputError("project: at most 64 characters", fields={"project": ["too long"]})
    amount = _decimal(
        monthly_amount,
        field="monthly_amount",
        places=MONEY_PLACES,
        max_digits=MONEY_MAX_DIGITS,
        example="250.00",
    )
    if amount <= 0:
        raise InputError(
            "monthly_amount: must be more than zero (delete the budget to have none)",
            fields={"monthly_amount": ["not positive"]},
        )
    if isinstance(thresholds, str):
        thresholds = [t for t in re.split(r"[\s,;%]+", thresholds) if t]
    if thresholds is None or not isinstance(thresholds, list | tuple):
        raise InputError("thresholds: whole percentages, e.g. [50, 80, 100]")
    try:
        thresholds = parse_thresholds(thresholds)
    except InputError as error:
        error.fields = {"thresholds": ["invalid"]}
        raise
    webhook_url = (webhook_url or "").strip()
    if webhook_url:
        if len(webhook_url) > 500:
            raise InputError(
                "webhook_url: at most 500 characters", fields={"webhook_url": ["too long"]}
            )
        try:
            _http_url(webhook_url)
        except ValidationError:
            raise InputError(
                "webhook_url: must be an http(s) URL", fields={"webhook_url": ["invalid"]}
            ) from None
        require_public_url(webhook_url, field="webhook_url")
    return project, amount, thresholds, webhook_url


def budget_set(
    *,
    actor: User,
    team: Team,
    project: str = "",
    monthly_amount,
    thresholds=DEFAULT_THRESHOLDS,
    hard_cap: bool = False,
    webhook_url: str = "",
) -> tuple[Budget, bool]:
    """Create or replace the monthly budget of a team (project "") or of one of its
    projects; returns it and whether it is new.

    The hard cap reads the budget on every call, so raising it lets calls through at once.
    Thresholds the month's spend has already reached under the new figures are alerted now
    (after commit), each still at most once a month."""
    if not policies.can_administer(actor, team):
        raise AuthorizationError(f"Only owners and admins of {team.slug} can change its budgets")
    project, amount, thresholds, webhook_url = budget_validate(
        project=project,
        monthly_amount=monthly_amount,
        thresholds=thresholds,
        webhook_url=webhook_url,
    )
    with transaction.atomic():
        old = Budget.objects.select_for_update().filter(team=team, project=project).first()
        before = _budget_audit_state(old) if old else None
        budget, created = Budget.objects.update_or_create(
            team=team,
            project=project,
            defaults={
                "monthly_amount": amount,
                "thresholds": thresholds,
                "hard_cap": bool(hard_cap),
                "webhook_url": webhook_url,
            },
        )
        tasks.budget_alerts_catch_up(budget)
        if before != _budget_audit_state(budget):
            audit_record(
                action=Action.BUDGET_CHANGED,
                actor=actor,
                target=budget,
                team=team,
                before=before,
                after=_budget_audit_state(budget),
            )
    return budget, created


@transaction.atomic
def budget_delete(*, actor: User, budget: Budget) -> None:
    """Remove a budget, its cap and its alert history; the spend itself is kept."""
    if not policies.can_administer(actor, budget.team):
        raise AuthorizationError(
            f"Only owners and admins of {budget.team.slug} can change its budgets"
        )
    audit_record(
        action=Action.BUDGET_DELETED,
        actor=actor,
        target=budget,
        team=budget.team,
        before=_budget_audit_state(budget),
    )
    budget.delete()


def _budget_audit_state(budget: Budget) -> dict:
    """A budget as the audit trail shows it. Only the webhook's host: a webhook URL's path
    is often its secret (Slack, Teams)."""
    return {
        "project": budget.project,
        "monthly_amount": f"{Decimal(budget.monthly_amount):.{MONEY_PLACES}f}",
        "thresholds": list(budget.thresholds),
        "hard_cap": budget.hard_cap,
        "webhook_host": urlsplit(budget.webhook_url).netloc if budget.webhook_url else None,
    }
