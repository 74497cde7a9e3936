"""Celery sends task events and worker heartbeats, so that Flower follows a deployment."""

from __future__ import annotations

import pytest
from celery import Celery

from broker.core.settings import Settings
from workers import worker
from workers.celery_app import make_celery


def test_workers_send_task_events_and_the_ingress_sends_none() -> None:
    conf = make_celery(Settings()).conf
    assert conf.worker_send_task_events is True
    assert conf.task_send_sent_event is False


def test_workers_keep_celery_s_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(Celery, "worker_main", lambda app, argv: started.append(argv))
    monkeypatch.setattr(worker, "check_broker", lambda app: None)
    with pytest.raises(SystemExit) as ended:
        worker.run(Settings())
    assert ended.value.code == 1  # it stopped without being told to: a failure
    (argv,) = started
    assert "--without-heartbeat" not in argv
