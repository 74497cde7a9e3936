"""The offloading integration over the API: the health check, the endpoint, read and remove."""

from __future__ import annotations

import pytest

from broker.core import clock
from broker.delivery import endpoint_store
from tests.receivers import Answer, Behaviour, Receiver, ReceiverFactory, always, closed_url
from tests.web_app import ADMIN, WebApp, api_error

HEALTHY = always(200, body=b'{"status": "ok"}', headers={"Content-Type": "application/json"})


@pytest.fixture
def agent_server(make_receiver: ReceiverFactory) -> Receiver:
    """The offloading integration's endpoint: it passes the health check."""
    return make_receiver(HEALTHY)


def test_configuring_runs_the_health_check_and_makes_an_endpoint(
    web: WebApp, agent_server: Receiver
) -> None:
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/offloading"

    answer = web.client.put(
        path,
        json={"apiUrl": agent_server.url, "verifyToken": "s3cret tok of the desk"},
        headers=ADMIN,
    )

    assert answer.status_code == 200, answer.get_json()
    saved = answer.get_json()
    assert set(saved) == {
        "botId",
        "apiUrl",
        "verifyToken",
        "endpointId",
        "signingSecret",
        "retrySchedule",
        "connectTimeout",
        "totalTimeout",
        "createdAt",
        "updatedAt",
    }
    assert saved["apiUrl"] == agent_server.url and saved["verifyToken"] == "s3cret tok of the desk"
    assert saved["endpointId"] == f"off_{bot['id']}"
    assert saved["signingSecret"].startswith("whsec_")
    (hit,) = agent_server.hits
    assert hit.path == "/hook?challenge.verifyToken=s3cret+tok+of+the+desk"
    assert hit.headers["user-agent"].startswith("Switchboard-Webhooks/")
    endpoint = web.client.get(f"/v1/endpoints/{saved['endpointId']}", headers=ADMIN).get_json()
    assert (endpoint["kind"], endpoint["botId"], endpoint["url"]) == (
        "offloading",
        bot["id"],
        agent_server.url,
    )
    listed = web.client.get("/v1/endpoints", headers=ADMIN).get_json()["items"]
    assert saved["endpointId"] in [e["id"] for e in listed]
    assert web.client.get(path, headers=ADMIN).get_json() == saved


def test_saving_again_keeps_the_signing_secret(web: WebApp, agent_server: Receiver) -> None:
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/offloading"
    first = web.client.put(
        path, json={"apiUrl": agent_server.url, "verifyToken": "verify-token-aaaaa"}, headers=ADMIN
    ).get_json()
    again = web.client.put(
        path,
        json={"apiUrl": agent_server.url + "?x=1", "verifyToken": "verify-token-bbbbb"},
        headers=ADMIN,
    ).get_json()
    assert again["signingSecret"] == first["signingSecret"]
    assert again["createdAt"] == first["createdAt"]
    assert (again["apiUrl"], again["verifyToken"]) == (
        agent_server.url + "?x=1",
        "verify-token-bbbbb",
    )
    assert agent_server.hits[-1].path == "/hook?x=1&challenge.verifyToken=verify-token-bbbbb"


def test_a_platform_with_its_own_ways_is_taken(web: WebApp, make_receiver: ReceiverFactory) -> None:
    """Extra fields beside "status", a short token of the platform's choosing, and a URL that
    already carries a challenge: the challenge sent is the token given, once."""
    server = make_receiver(always(200, body=b'{"status": "ok", "version": "2.1"}'))
    bot = web.bot()
    answer = web.client.put(
        f"/v1/bots/{bot['id']}/offloading",
        json={"apiUrl": server.url + "?challenge.verifyToken=old&x=1", "verifyToken": "vt-1"},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.get_json()
    assert server.hits[-1].path == "/hook?x=1&challenge.verifyToken=vt-1"


def _answering(status: int, body: bytes, **headers: str) -> Behaviour:
    return lambda hit: Answer(status, body=body, headers=headers)


@pytest.mark.parametrize(
    ("behaviour", "quoted"),
    [
        (_answering(500, b"database down"), "500 'database down'"),
        (_answering(200, b'{"status": "maintenance"}'), "maintenance"),
        (_answering(200, b"ok"), "200 'ok'"),
        (_answering(302, b"", Location="http://127.0.0.1:1/"), "302"),
        (_answering(403, b'{"error": "bad verify token"}'), "bad verify token"),
    ],
)
def test_a_failed_health_check_is_422_with_the_answer(
    web: WebApp, make_receiver: ReceiverFactory, behaviour: Behaviour, quoted: str
) -> None:
    bot = web.bot()
    server = make_receiver(behaviour)
    answer = web.client.put(
        f"/v1/bots/{bot['id']}/offloading",
        json={"apiUrl": server.url, "verifyToken": "verify-token-ttttt"},
        headers=ADMIN,
    )
    assert quoted in api_error(answer, 422, "validation_failed", "apiUrl")
    api_error(web.client.get(f"/v1/bots/{bot['id']}/offloading", headers=ADMIN), 404, "not_found")
    api_error(web.client.get(f"/v1/endpoints/off_{bot['id']}", headers=ADMIN), 404, "not_found")


def test_an_endpoint_that_does_not_answer_is_422(web: WebApp) -> None:
    bot = web.bot()
    answer = web.client.put(
        f"/v1/bots/{bot['id']}/offloading",
        json={"apiUrl": closed_url(), "verifyToken": "verify-token-ttttt"},
        headers=ADMIN,
    )
    assert "connection refused" in api_error(answer, 422, "validation_failed", "apiUrl")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"apiUrl": "http://10.1.2.3/agent", "verifyToken": "verify-token-ttttt"},
            "unsafe_url",
            "apiUrl",
        ),
        (
            {"apiUrl": "file:///etc/passwd", "verifyToken": "verify-token-ttttt"},
            "unsafe_url",
            "apiUrl",
        ),
        ({"apiUrl": "http://127.0.0.1:9/"}, "validation_failed", "verifyToken"),
        ({"verifyToken": "verify-token-ttttt"}, "validation_failed", "apiUrl"),
        ({"apiUrl": "http://127.0.0.1:9/", "verifyToken": ""}, "validation_failed", "verifyToken"),
    ],
)
def test_a_bad_configuration_is_422_naming_the_field(
    web: WebApp, body: dict[str, str], code: str, field: str
) -> None:
    bot = web.bot()
    api_error(
        web.client.put(f"/v1/bots/{bot['id']}/offloading", json=body, headers=ADMIN),
        422,
        code,
        field,
    )


def test_removing_the_integration_removes_its_endpoint(web: WebApp, agent_server: Receiver) -> None:
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/offloading"
    web.client.put(
        path, json={"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt"}, headers=ADMIN
    )
    assert web.client.delete(path, headers=ADMIN).status_code == 204
    api_error(web.client.get(path, headers=ADMIN), 404, "not_found")
    api_error(web.client.delete(path, headers=ADMIN), 404, "not_found")
    api_error(web.client.get(f"/v1/endpoints/off_{bot['id']}", headers=ADMIN), 404, "not_found")


def test_rotating_the_secret_keeps_the_old_one_signing_for_a_day(
    web: WebApp, agent_server: Receiver
) -> None:
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/offloading"
    api_error(web.client.post(f"{path}/rotate-secret", headers=ADMIN), 404, "not_found")
    saved = web.client.put(
        path, json={"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt"}, headers=ADMIN
    ).get_json()

    rotated = web.client.post(f"{path}/rotate-secret", headers=ADMIN)

    assert rotated.status_code == 200
    secret = rotated.get_json()["signingSecret"]
    assert secret.startswith("whsec_") and secret != saved["signingSecret"]
    assert web.client.get(path, headers=ADMIN).get_json()["signingSecret"] == secret
    endpoint = endpoint_store.load(web.redis, saved["endpointId"])
    assert endpoint.signing_secrets(clock.now()) == [secret, saved["signingSecret"]]
    assert endpoint.signing_secrets(clock.now() + 25 * 3600) == [secret]


def test_deleting_the_bot_removes_its_integration(web: WebApp, agent_server: Receiver) -> None:
    bot = web.bot()
    web.client.put(
        f"/v1/bots/{bot['id']}/offloading",
        json={"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt"},
        headers=ADMIN,
    )
    assert web.client.delete(f"/v1/bots/{bot['id']}", headers=ADMIN).status_code == 204
    api_error(web.client.get(f"/v1/endpoints/off_{bot['id']}", headers=ADMIN), 404, "not_found")


def test_removing_a_channel_removes_what_its_conversations_queued_for_the_desk(
    web: WebApp, agent_server: Receiver
) -> None:
    bot = web.bot()
    web.client.put(
        f"/v1/bots/{bot['id']}/offloading",
        json={"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt"},
        headers=ADMIN,
    )
    channel = web.channel(bot["id"])
    for n in range(20):
        web.say(channel, f"user-{n}", "hi")  # a `messages` event each, that no worker takes
    desk = f"/v1/deliveries?endpointId=off_{bot['id']}"
    listed = web.client.get(desk, headers=ADMIN).get_json()
    assert listed["total"] == 20 and {i["status"] for i in listed["items"]} == {"queued"}

    answer = web.client.delete(
        f"/v1/bots/{bot['id']}/channels/webhook/{channel['id']}", headers=ADMIN
    )

    assert answer.status_code == 204
    assert web.client.get(desk, headers=ADMIN).get_json()["total"] == 0
    assert [k for k in web.redis.scan_iter("sb:{c:*", count=1000) if ":idem:" not in k] == []
    assert web.client.get(f"/v1/endpoints/off_{bot['id']}", headers=ADMIN).status_code == 200


def test_other_errors(web: WebApp, agent_server: Receiver) -> None:
    body = {"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt"}
    api_error(
        web.client.put("/v1/bots/bot_nope/offloading", json=body, headers=ADMIN), 404, "not_found"
    )
    api_error(web.client.get("/v1/bots/bot_nope/offloading", headers=ADMIN), 404, "not_found")
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/offloading"
    api_error(web.client.put(path, json=body), 401, "unauthorized")
    api_error(
        web.client.put(path, data="{", content_type="application/json", headers=ADMIN),
        400,
        "bad_request",
    )
    api_error(
        web.client.put(path, data="x", content_type="text/plain", headers=ADMIN),
        415,
        "unsupported_media_type",
    )
    api_error(web.client.post(path, json=body, headers=ADMIN), 405, "method_not_allowed")
    assert agent_server.hits == []


def test_the_integration_takes_its_own_retry_schedule_and_timeouts(
    web: WebApp, agent_server: Receiver
) -> None:
    """As a channel's, by the same names; a PUT that leaves them out goes back to the
    defaults."""
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/offloading"
    own = {"retrySchedule": [0, 60, 3600], "connectTimeout": 1.5, "totalTimeout": 30}

    saved = web.client.put(
        path,
        json={"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt", **own},
        headers=ADMIN,
    )

    assert saved.status_code == 200, saved.get_json()
    assert {name: saved.get_json()[name] for name in own} == own
    assert web.client.get(path, headers=ADMIN).get_json() == saved.get_json()
    endpoint = endpoint_store.load(web.redis, saved.get_json()["endpointId"])
    assert endpoint.schedule(web.settings) == (0, 60, 3600)
    assert endpoint.timeouts(web.settings) == (1.5, 30)
    again = web.client.put(
        path, json={"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt"}, headers=ADMIN
    ).get_json()
    assert (again["retrySchedule"], again["connectTimeout"], again["totalTimeout"]) == (
        list(web.settings.retry_schedule),
        web.settings.connect_timeout,
        web.settings.total_timeout,
    )


@pytest.mark.parametrize(
    ("own", "field"),
    [
        ({"connectTimeout": 5, "totalTimeout": 3}, "connectTimeout"),
        ({"connectTimeout": 11}, "connectTimeout"),  # the default total is 10 s
        ({"retrySchedule": [5, 30]}, "retrySchedule"),
        ({"retrySchedule": []}, "retrySchedule"),
        ({"totalTimeout": 0}, "totalTimeout"),
        ({"connectTimeout": "3"}, "connectTimeout"),
    ],
)
def test_its_own_delivery_settings_are_checked_as_a_channels(
    web: WebApp, agent_server: Receiver, own: dict[str, object], field: str
) -> None:
    bot = web.bot()
    path = f"/v1/bots/{bot['id']}/offloading"
    answer = web.client.put(
        path,
        json={"apiUrl": agent_server.url, "verifyToken": "verify-token-ttttt", **own},
        headers=ADMIN,
    )
    api_error(answer, 422, "validation_failed", field)
    assert agent_server.hits == []  # refused before its health check
    api_error(web.client.get(path, headers=ADMIN), 404, "not_found")


def test_its_deliveries_go_by_its_own_retry_schedule(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    """Its health check passes, its deliveries fail: the next attempt comes by its own
    schedule (an hour, ±20 %), not the default one (5 s)."""
    desk = make_receiver(
        lambda hit: HEALTHY(hit) if hit.method == "GET" else Answer(500, body=b"down")
    )
    bot = web.bot()
    saved = web.client.put(
        f"/v1/bots/{bot['id']}/offloading",
        json={"apiUrl": desk.url, "verifyToken": "verify-token-ttttt", "retrySchedule": [0, 3600]},
        headers=ADMIN,
    )
    assert saved.status_code == 200, saved.get_json()
    web.say(web.channel(bot["id"]), "user-1", "hi")

    web.deliver_due()

    assert [hit.method for hit in desk.hits] == ["GET", "POST"]
    listed = web.client.get(f"/v1/deliveries?endpointId=off_{bot['id']}", headers=ADMIN).get_json()
    (delivery,) = listed["items"]
    wait = clock.parse_iso(delivery["nextAttemptAt"]) - desk.hits[-1].at
    assert 0.8 * 3600 - 5 <= wait <= 1.2 * 3600 + 5
