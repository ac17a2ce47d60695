"""Queued calls whose message a dead worker took with it.

A worker acknowledges a call's message only when the call is over (`acks_late`), so a worker
killed while it held messages it had not yet claimed (prefetched, or waiting for a thread)
leaves those calls `queued` with their messages unacknowledged: Redis hands them out again
only after its visibility timeout (an hour), and the reaper fails them only after
GATEWAY_QUEUED_LIMIT_SECONDS. So every worker of calls, when its consumer starts (and starts
again after a broker outage), publishes the calls still queued on its queues once more. The
duplicate of a message that was not lost costs a read: `execute_queued` claims only a queued
call, and the other copy finds it claimed and stops."""

from __future__ import annotations

import logging
import threading

from celery import bootsteps
from django.conf import settings
from django.db import connection
from django.db.models import Q

from .lifecycle import DISPATCHED, submit
from .models import Invocation, InvocationStatus

logger = logging.getLogger(__name__)

HARDWARE_QUEUE_PREFIX = "hw-"


def queued_calls_on(queues: list[str]):
    """The calls waiting on any of `queues` (`lifecycle.queue_of` read backwards)."""
    hardware = [
        q.removeprefix(HARDWARE_QUEUE_PREFIX) for q in queues if q.startswith(HARDWARE_QUEUE_PREFIX)
    ]
    on_queues = Q(backend=DISPATCHED, hardware_class__in=hardware)
    if settings.GATEWAY_ASYNC_QUEUE in queues:
        on_queues |= ~Q(backend=DISPATCHED)
    return Invocation.objects.filter(on_queues, status=InvocationStatus.QUEUED)


def queued_calls_republish(queues: list[str]) -> int:
    """Publish every call queued on `queues` again; returns how many."""
    published = 0
    for invocation in queued_calls_on(queues).only("pk", "backend", "hardware_class").iterator():
        submit(invocation)
        published += 1
    if published:
        logger.warning(
            "published %d queued calls again on %s, in case a lost worker held them",
            published,
            ", ".join(queues),
        )
    return published


class RepublishQueuedCalls(bootsteps.StartStopStep):
    """A step of every worker's consumer (added in GatewayConfig.ready): each time the
    consumer starts, at the worker's start and again after it reconnected to a broker that
    was down, a worker that consumes a queue of calls publishes that queue's waiting calls
    again, in a thread, so it starts taking messages at once. After the reconnection it
    also recovers what a broker that keeps nothing on disk forgot: its queued messages, and
    the bindings without which the calls published meanwhile were routed nowhere."""

    # After the consumer has declared its queues (and so their bindings) again.
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c) -> None:
        queues = sorted(q.name for q in c.app.amqp.queues.consume_from.values())
        calls_queues = [
            q
            for q in queues
            if q.startswith(HARDWARE_QUEUE_PREFIX) or q == settings.GATEWAY_ASYNC_QUEUE
        ]
        if calls_queues:
            threading.Thread(
                target=_republish, args=(calls_queues,), name="marketplace-redelivery", daemon=True
            ).start()


def _republish(queues: list[str]) -> None:
    try:
        queued_calls_republish(queues)
    except Exception:  # the worker runs on; the reaper still ends what is never run
        logger.warning("could not publish the queued calls again", exc_info=True)
    finally:
        connection.close()
