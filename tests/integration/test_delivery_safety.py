"""Outbound safety with real processes: refused at configuration, and again at connect time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from switchboard.embedded_redis import free_port
from tests.integration.delivery_helpers import deliveries
from tests.integration.stacks import ADMIN, Api, OwnStack, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Receiver


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Api, OwnStack]]:
    """A web process with no allowlist, one that lets loopback through, and a worker and a
    scheduler with no allowlist: what was configured through the second is refused when
    the worker connects."""
    require_redis()
    with own_stack(tmp_path_factory.mktemp("guarded") / "stack.log") as own:
        strict_port = free_port()
        strict = own.env(SWITCHBOARD_OUTBOUND_ALLOWLIST="")
        own.start("web", strict, port=strict_port)
        own.start("web")  # the loopback allowlist of the test stack
        own.start("worker", strict)
        own.start("scheduler", strict)
        own.wait_ready()
        yield Api(f"http://127.0.0.1:{strict_port}", ADMIN), own.api, own


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.7/hook",
        "http://10.255.1.1:8443/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://localhost:9000/hook",  # a name that resolves to loopback
        "http://0.0.0.0/",
    ],
)
def test_internal_urls_are_refused_at_configuration(
    guarded: tuple[Api, Api, OwnStack], url: str
) -> None:
    strict, _, _ = guarded
    bot_id: str = strict.bot(name="safe")["id"]
    answer = strict.post(f"/v1/bots/{bot_id}/channels/webhook", json={"webhookUrl": url})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == "webhookUrl" and error["code"] == "unsafe_url"
    assert "outbound safety" in error["message"]


def test_a_url_changed_to_an_internal_one_is_refused(guarded: tuple[Api, Api, OwnStack]) -> None:
    strict, allowing, _ = guarded
    bot_id: str = allowing.bot(name="safe")["id"]
    created = allowing.post(
        f"/v1/bots/{bot_id}/channels/webhook", json={"webhookUrl": "http://127.0.0.1:9/hook"}
    )
    assert created.status_code == 201, created.text
    channel = created.json()["id"]
    answer = strict.patch(
        f"/v1/bots/{bot_id}/channels/webhook/{channel}",
        json={"webhookUrl": "http://169.254.169.254/"},
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "webhookUrl"


def test_the_worker_checks_again_at_connect_time(
    guarded: tuple[Api, Api, OwnStack], receiver: Receiver
) -> None:
    _, allowing, _ = guarded
    channel = allowing.echo_channel(receiver.url, retrySchedule=[0, 0.05])
    assert allowing.send(channel, "probe", "hi").status_code == 202

    (item,) = wait_until(
        lambda: deliveries(allowing, endpointId=channel["id"], status="dead"), what="dead"
    )
    assert receiver.hits == []
    for attempt in item["attempts"]:
        assert attempt["error"].startswith("refused by outbound safety: resolves to 127.0.0.1")
        assert "statusCode" not in attempt


def test_the_allowlist_lets_through_what_it_names(guarded: tuple[Api, Api, OwnStack]) -> None:
    _, allowing, _ = guarded
    bot_id: str = allowing.bot(name="safe")["id"]
    for url in ("http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/"):
        answer = allowing.post(f"/v1/bots/{bot_id}/channels/webhook", json={"webhookUrl": url})
        assert answer.status_code == 201, answer.text
    refused = allowing.post(
        f"/v1/bots/{bot_id}/channels/webhook", json={"webhookUrl": "http://10.0.0.1/"}
    )
    assert refused.status_code == 422
