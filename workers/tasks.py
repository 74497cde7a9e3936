"""Celery tasks: the delivery queues the scheduler and the web process hand to workers (due
retries, queues whose worker died, the deliveries of agent actions). Bot turns do not come
as tasks: the turn runners (`workers.turn_runners`) take them off the ready list."""

from __future__ import annotations

from celery import shared_task

from workers.celery_app import DELIVER_TASK
from workers.process import process


@shared_task(name=DELIVER_TASK)
def deliver(queues: list[str]) -> int:
    """Hand delivery queues to this process's delivery loop, and return at once.

    The task does not wait for the attempts; their queues' claims on `sb:due` (not this
    task's acknowledgement) bring them back if the process dies.
    """
    process().deliveries.offer(queues)
    return len(queues)
