"""The dashboard in-process: login and its session cookie, CSRF on every action, the pages,
and the actions (enable, disable, replay one, selected, or all of an endpoint)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from flask import url_for
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from broker import overview
from broker.auth import admin_tokens
from broker.core import ids, keys
from tests.conversations import park_head
from tests.receivers import ReceiverFactory, always
from tests.web_app import ADMIN, ADMIN_TOKEN, WebApp, api_error, web_app


@pytest.fixture
def web() -> Iterator[WebApp]:
    """The app with one attempt per delivery: a failure is a dead letter at once."""
    with web_app(retry_schedule=(0.0,)) as made:
        yield made


#: What a browser sends with a form: it asks for HTML by name.
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def csrf_of(answer: TestResponse) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', answer.get_data(as_text=True))
    assert found, answer.get_data(as_text=True)
    return found.group(1)


def log_in(client: FlaskClient, token: str = ADMIN_TOKEN, next_page: str = "") -> TestResponse:
    form = client.get("/dashboard/login")
    return client.post(
        "/dashboard/login",
        data={"token": token, "csrf": csrf_of(form), "next": next_page},
        headers=BROWSER,
    )


def signed_in(web: WebApp) -> str:
    """Sign the test client in; returns the session's CSRF token."""
    assert log_in(web.client).status_code == 303
    return csrf_of(web.client.get("/dashboard"))


def dead_letters(web: WebApp, make_receiver: ReceiverFactory, conversations: int) -> dict[str, str]:
    """One dead letter per conversation, on a channel whose endpoint answers 500."""
    channel = web.channel(webhookUrl=make_receiver(always(500, body=b"db down")).url)
    for n in range(conversations):
        web.say(channel, f"u{n}", "hi")
    web.deliver_due()
    assert web.redis.zcard(keys.DEAD) == conversations
    return channel


def test_without_a_login_pages_send_to_the_login_form(web: WebApp) -> None:
    answer = web.client.get("/dashboard/dead-letters?page=2", headers=BROWSER)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/dashboard/login?next=/dashboard/dead-letters?page%3D2"
    form = web.client.get(answer.headers["Location"])
    assert form.status_code == 200 and 'name="token"' in form.get_data(as_text=True)
    # A script (the page's own polling, a probe) is told, not sent to a form.
    for path in ("/dashboard", "/dashboard/live"):
        api_error(web.client.get(path), 401, "unauthorized")
    assert 'value="/dashboard/dead-letters?page=2"' in form.get_data(as_text=True)


def test_a_login_sets_a_secure_session_cookie_and_goes_where_it_was_asked(web: WebApp) -> None:
    answer = log_in(web.client, next_page="/dashboard/deliveries")
    assert answer.status_code == 303 and answer.headers["Location"] == "/dashboard/deliveries"
    (cookie,) = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("sb_session=")]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age=43200"):
        assert flag in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert ADMIN_TOKEN not in cookie and len(session_id) >= 40
    assert web.redis.exists(keys.dashboard_session(ids.token_hash(session_id)))
    assert web.client.get("/dashboard").status_code == 200


def test_over_https_the_cookie_is_secure() -> None:
    with web_app(public_url="https://sb.example") as web:
        (cookie,) = [
            c for c in log_in(web.client).headers.getlist("Set-Cookie") if "sb_session" in c
        ]
        assert "Secure" in cookie


def test_a_wrong_token_or_a_forged_form_gets_the_login_form_again(web: WebApp) -> None:
    answer = log_in(web.client, token="not-the-token")
    assert answer.status_code == 401
    assert "that admin token is not valid" in answer.get_data(as_text=True)
    forged = FlaskClient(web.app)  # no login cookie: the form was not ours
    answer = forged.post(
        "/dashboard/login", data={"token": ADMIN_TOKEN, "csrf": "x" * 43}, headers=BROWSER
    )
    assert answer.status_code == 403
    assert not any("sb_session" in c for c in answer.headers.getlist("Set-Cookie"))


def test_a_client_that_does_not_ask_for_html_gets_login_refusals_as_json(web: WebApp) -> None:
    form = web.client.get("/dashboard/login")
    wrong = {"token": "not-the-token", "csrf": csrf_of(form)}
    api_error(web.client.post("/dashboard/login", data=wrong), 401, "unauthorized")
    forged = FlaskClient(web.app)
    answer = forged.post("/dashboard/login", data={"token": ADMIN_TOKEN, "csrf": "x" * 43})
    api_error(answer, 403, "forbidden")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/v1/bots",
        "/dashboard\nX",
        "/dashboard\r\nSet-Cookie: x=1",
        "/dashboard\x00",
    ],
)
def test_a_login_never_sends_elsewhere(web: WebApp, target: str) -> None:
    assert log_in(web.client, next_page=target).headers["Location"] == "/dashboard"


def test_the_admin_bearer_header_opens_it_without_a_session(web: WebApp) -> None:
    answer = web.client.get("/dashboard", headers=ADMIN)
    assert answer.status_code == 200 and "Sign out" not in answer.get_data(as_text=True)
    api_error(
        web.client.get("/dashboard", headers={"Authorization": "Bearer no"}), 401, "unauthorized"
    )


def parked_turns(web: WebApp, conversations: int) -> dict[str, str]:
    """One dead letter of turns per conversation: its message's turn failed for good."""
    channel = web.channel()
    for n in range(conversations):
        web.send(channel, f"u{n}", f"poison {n}")
        key = web.conversation_key(channel, f"u{n}")
        park_head(web.redis, web.settings, key, RuntimeError(f"boom {n}"))
    assert web.redis.zcard(keys.DEAD_TURNS) == conversations
    return channel


def test_dead_letters_of_turns_are_replayed_one_or_selected_and_discarded(web: WebApp) -> None:
    channel = parked_turns(web, 4)
    csrf = signed_in(web)
    page = web.client.get("/dashboard/dead-turns").get_data(as_text=True)
    parked = web.redis.zrange(keys.DEAD_TURNS, 0, -1)
    assert all(d in page for d in parked) and "RuntimeError: boom 0" in page
    # Two parked in one millisecond are in the order of their random ids.
    listed = web.client.get("/v1/turn-dead-letters", headers=ADMIN).get_json()["items"]
    text_of = {dead["id"]: dead["item"]["text"] for dead in listed}
    assert "Failed turns" in web.client.get("/dashboard").get_data(as_text=True)

    answer = web.client.post(f"/dashboard/dead-turns/{parked[0]}/replay", data={"csrf": csrf})
    assert answer.headers["Location"] == "/dashboard/dead-turns?done=turns_replayed&n=1&m=1"
    assert "back in their conversation" in web.client.get(answer.headers["Location"]).get_data(
        as_text=True
    )
    answer = web.client.post(
        "/dashboard/dead-turns", data={"csrf": csrf, "action": "replay", "ids": parked[1:3]}
    )
    assert answer.headers["Location"] == "/dashboard/dead-turns?done=turns_replayed&n=2&m=2"
    replayed = [m["text"] for n in range(4) for m in web.inbox(channel, f"u{n}")]
    assert sorted(replayed) == sorted(text_of[dead] for dead in parked[:3])
    answer = web.client.post(
        "/dashboard/dead-turns",
        data={"csrf": csrf, "action": "discard", "ids": [parked[3], parked[0]]},
    )
    assert answer.headers["Location"] == "/dashboard/dead-turns?done=turns_discarded&n=1&m=2"
    assert web.redis.zcard(keys.DEAD_TURNS) == 0
    assert "No dead letters of turns" in web.client.get("/dashboard/dead-turns").get_data(
        as_text=True
    )
    for path in ("/dashboard/dead-turns", f"/dashboard/dead-turns/{parked[0]}/replay"):
        api_error(web.client.post(path, data={"csrf": "wrong"}), 403, "forbidden")


def test_every_action_needs_the_session_s_csrf_token(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    channel = dead_letters(web, make_receiver, 1)
    (delivery_id,) = web.redis.zrange(keys.DEAD, 0, -1)
    csrf = signed_in(web)
    endpoint = channel["id"]
    actions = [
        f"/dashboard/endpoints/{endpoint}/disable",
        f"/dashboard/endpoints/{endpoint}/enable",
        f"/dashboard/deliveries/{delivery_id}/replay",
        "/dashboard/dead-letters/replay",
        "/dashboard/logout",
    ]
    for path in actions:
        for given in ({}, {"csrf": "wrong"}, {"csrf": ""}):
            api_error(web.client.post(path, data={**given, "ids": delivery_id}), 403, "forbidden")
    assert web.redis.zcard(keys.DEAD) == 1
    assert web.client.get("/dashboard").status_code == 200  # still signed in
    answer = web.client.post(f"/dashboard/endpoints/{endpoint}/disable", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["Location"] == "/dashboard?done=disabled"
    assert "Endpoint disabled" in web.client.get(answer.headers["Location"]).get_data(as_text=True)


def test_endpoints_are_disabled_and_enabled_from_the_overview(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    channel = dead_letters(web, make_receiver, 1)
    csrf = signed_in(web)
    page = web.client.get("/dashboard").get_data(as_text=True)
    assert channel["id"] in page and "HTTP 500: db down" in page and "Disable" in page
    web.client.post(f"/dashboard/endpoints/{channel['id']}/disable", data={"csrf": csrf})
    page = web.client.get("/dashboard").get_data(as_text=True)
    assert "disabled by an operator" in page and ">Enable<" in page
    web.client.post(f"/dashboard/endpoints/{channel['id']}/enable", data={"csrf": csrf})
    assert ">Disable<" in web.client.get("/dashboard").get_data(as_text=True)


def test_dead_letters_are_replayed_one_selected_or_all_of_an_endpoint(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    channel = dead_letters(web, make_receiver, 5)
    csrf = signed_in(web)
    page = web.client.get("/dashboard/dead-letters").get_data(as_text=True)
    dead = web.redis.zrange(keys.DEAD, 0, -1)
    assert all(d in page for d in dead) and "HTTP 500: db down" in page

    answer = web.client.post(f"/dashboard/deliveries/{dead[0]}/replay", data={"csrf": csrf})
    assert answer.headers["Location"] == f"/dashboard/deliveries/{dead[0]}?done=replayed&n=1&m=1"
    answer = web.client.post(
        "/dashboard/dead-letters/replay",
        data={
            "csrf": csrf,
            "scope": "selected",
            "ids": dead[1:3],
            "back": "/dashboard/dead-letters",
        },
    )
    assert answer.headers["Location"] == "/dashboard/dead-letters?done=replayed&n=2&m=2"
    assert "2 of 2 delivery(ies) queued again" in web.client.get(
        answer.headers["Location"]
    ).get_data(as_text=True)
    assert web.redis.zrange(keys.DEAD, 0, -1) == dead[3:]
    back = f"/dashboard/dead-letters?endpointId={channel['id']}&done=replayed&n=2&m=2"
    answer = web.client.post(
        "/dashboard/dead-letters/replay",
        data={"csrf": csrf, "scope": "endpoint", "endpointId": channel["id"], "back": back},
    )
    assert web.redis.zcard(keys.DEAD) == 0
    assert answer.headers["Location"] == (
        f"/dashboard/dead-letters?endpointId={channel['id']}&done=replayed&n=2&m=2"
    )
    api_error(
        web.client.post("/dashboard/dead-letters/replay", data={"csrf": csrf, "scope": "endpoint"}),
        422,
        "validation_failed",
        "endpointId",
    )


def test_a_delivery_shows_its_attempts_and_a_conversation_its_transcript(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    channel = dead_letters(web, make_receiver, 1)
    (delivery_id,) = web.redis.zrange(keys.DEAD, 0, -1)
    signed_in(web)
    page = web.client.get(f"/dashboard/deliveries/{delivery_id}").get_data(as_text=True)
    assert "HTTP 500: db down" in page and '<td data-label="Status">500</td>' in page
    assert "ms</td>" in page and ">Replay<" in page
    assert re.search(r'<time datetime="[^"]+Z">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', page)
    page = web.client.get(f"/dashboard/conversations/{channel['botId']}/u0").get_data(as_text=True)
    assert "actor-user" in page and "actor-bot" in page and "You said: hi" in page
    assert web.client.get("/dashboard/deliveries/msg_nope").status_code == 404


def test_a_nul_in_the_transcript_is_shown_escaped(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "u0", "a\x00b <\\x00>")
    signed_in(web)
    page = web.client.get(f"/dashboard/conversations/{channel['botId']}/u0").get_data(as_text=True)
    assert '<p>a<code class="escaped">\\x00</code>b &lt;\\x00&gt;</p>' in page
    assert "\x00" not in page


def test_the_deliveries_listing_marks_failures_only(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    dead_letters(web, make_receiver, 1)
    delivered = web.channel(webhookUrl=make_receiver(always(200)).url)
    web.say(delivered, "u1", "hi")
    web.deliver_due()
    signed_in(web)
    page = web.client.get("/dashboard/deliveries").get_data(as_text=True)
    assert (
        '<td data-label="Last outcome" class="error-text">'
        '<span class="clamp" title="HTTP 500: db down">HTTP 500: db down</span></td>'
    ) in page
    assert '<td data-label="Last outcome">200</td>' in page
    page = web.client.get(f"/dashboard/deliveries?endpointId={delivered['id']}").get_data(
        as_text=True
    )
    assert f'<option value="{delivered["id"]}" selected>' in page
    assert page.count('data-label="Delivery"') == 1
    page = web.client.get("/dashboard/deliveries?endpointId=ch_gone").get_data(as_text=True)
    assert '<option value="ch_gone" selected>ch_gone (removed)</option>' in page


def test_the_pages_load_nothing_from_elsewhere(web: WebApp) -> None:
    signed_in(web)
    for path in ("/dashboard", "/dashboard/dead-letters", "/dashboard/deliveries"):
        page = web.client.get(path).get_data(as_text=True)
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        # The icon is empty and inline ("data:,"): no request for /favicon.ico either.
        assert sources and all(s.startswith("/dashboard") or s == "data:," for s in sources)
    for asset in ("dashboard.js", "dashboard.css"):
        assert web.client.get(f"/dashboard/static/{asset}").status_code == 200


def test_the_charts_data_has_the_samples_and_now(web: WebApp) -> None:
    from broker import history

    signed_in(web)
    assert history.sample(web.redis)
    assert not history.sample(web.redis)  # this interval's sample is taken
    data = web.client.get("/dashboard/live").get_json()
    (sample,) = data["series"]
    assert set(sample) == {"at", "queues", "counters"}
    assert data["now"]["at"] >= sample["at"]
    assert web.client.get(f"/dashboard/live?since={sample['at']}").get_json()["series"] == []


def test_logging_out_or_revoking_the_token_ends_the_session(web: WebApp) -> None:
    csrf = signed_in(web)
    assert web.client.post("/dashboard/logout", data={"csrf": csrf}).status_code == 303
    assert web.client.get("/dashboard", headers=BROWSER).status_code == 303
    api_error(web.client.post("/dashboard/logout", data={"csrf": csrf}), 401, "unauthorized")
    token = admin_tokens.create(web.redis, "ops")
    assert log_in(web.client, token).status_code == 303
    assert web.client.get("/dashboard").status_code == 200
    web.redis.delete(keys.ADMIN_TOKENS)
    assert web.client.get("/dashboard", headers=BROWSER).status_code == 303


def test_pages_may_not_be_framed_nor_kept_by_the_browser(web: WebApp) -> None:
    pages = [web.client.get("/dashboard/login"), web.client.get("/dashboard", headers=ADMIN)]
    for answer in pages:
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
    assert web.client.get("/docs").headers["X-Frame-Options"] == "DENY"


def test_guessing_at_the_login_form_or_with_a_bearer_is_throttled() -> None:
    with web_app(auth_failures=3) as web:
        answers = [log_in(web.client, token=f"guess-{n}") for n in range(4)]
        assert [answer.status_code for answer in answers] == [401, 401, 401, 429]
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60  # the browser's page too
        refused = web.client.get("/dashboard", headers={"Authorization": "Bearer guess"})
        assert refused.status_code == 429
    with web_app(auth_failures=2) as web:
        codes = [
            web.client.get("/dashboard", headers={"Authorization": f"Bearer g{n}"}).status_code
            for n in range(3)
        ]
        assert codes == [401, 401, 429]


def test_a_conversation_on_two_channels_opens_from_its_delivery(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    channel = dead_letters(web, make_receiver, 1)
    other = web.channel(channel["botId"])
    web.say(other, "u0", "hi there")
    (delivery_id,) = web.redis.zrange(keys.DEAD, 0, -1)
    signed_in(web)
    page = web.client.get(f"/dashboard/deliveries/{delivery_id}").get_data(as_text=True)
    link = re.search(r'href="(/dashboard/conversations/[^"]+)"', page)
    assert link is not None and f"channelId={channel['id']}" in link.group(1)
    opened = web.client.get(link.group(1).replace("&amp;", "&"))
    assert opened.status_code == 200 and "You said: hi<" in opened.get_data(as_text=True)
    ambiguous = web.client.get(f"/dashboard/conversations/{channel['botId']}/u0", headers=BROWSER)
    assert ambiguous.status_code == 409 and ambiguous.mimetype == "text/html"
    assert "channel" in ambiguous.get_data(as_text=True)


def test_a_conversation_id_is_one_segment_in_the_dashboard_s_links(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "a/./b", "hi")
    with web.app.test_request_context():
        link = url_for("dashboard.conversation", bot_id=channel["botId"], session_id="a/./b")
    assert link.endswith("/a%2F.%2Fb")
    signed_in(web)
    assert "You said: hi" in web.client.get(link).get_data(as_text=True)


@pytest.mark.parametrize("session_id", [".", ".."])
def test_a_conversation_whose_id_is_a_dot_segment_is_linked_in_the_query(
    web: WebApp, session_id: str
) -> None:
    channel = web.channel()
    web.say(channel, session_id, "hi")
    with web.app.test_request_context():
        link = url_for("dashboard.conversation", bot_id=channel["botId"], session_id=session_id)
    assert link == f"/dashboard/conversations/{channel['botId']}?sessionId={session_id}"
    signed_in(web)
    page = web.client.get(link).get_data(as_text=True)
    assert "You said: hi" in page
    assert f"<h1>Conversation <code><bdi>{session_id}</bdi></code>" in page
    (listed,) = conversation_links(web.client.get("/dashboard/deliveries").get_data(as_text=True))
    assert listed.startswith(f"/dashboard/conversations/{channel['botId']}?")
    assert "You said: hi" in web.client.get(listed).get_data(as_text=True)


def test_a_dashboard_path_no_route_takes_is_a_page_for_a_browser(web: WebApp) -> None:
    signed_in(web)
    for path in ("/dashboard/conversations/", "/dashboard/nowhere"):
        page = web.client.get(path, headers=BROWSER)
        assert page.status_code == 404 and page.mimetype == "text/html"
        script = web.client.get(path)
        assert script.status_code == 404 and script.get_json()["error"]["code"] == "not_found"
    unnamed = web.client.get("/dashboard/conversations/bot_1", headers=BROWSER)
    assert unnamed.status_code == 404 and "name the conversation" in unnamed.get_data(as_text=True)
    elsewhere = web.client.get("/v1/nowhere", headers=BROWSER)
    assert elsewhere.status_code == 404 and elsewhere.get_json()["error"]["code"] == "not_found"


def test_the_overview_says_when_celery_s_broker_refuses_tasks(web: WebApp) -> None:
    signed_in(web)
    assert "broker failing" not in web.client.get("/dashboard").get_data(as_text=True)
    trouble = {"at": "2026-12-01T10:00:00.000Z", "error": "Connection refused"}
    web.redis.set(keys.BROKER_TROUBLE, json.dumps(trouble), ex=60)
    page = web.client.get("/dashboard").get_data(as_text=True)
    assert "scheduler(s); broker failing" in page
    assert "refused a task at 2026-12-01T10:00:00.000Z: Connection refused" in page


def test_the_overview_shows_redis_memory_and_warns_near_its_limit(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in(web)
    page = web.client.get("/dashboard").get_data(as_text=True)
    assert "redis memory" in page and ("no maxmemory set" in page or " of " in page)
    monkeypatch.setattr(overview, "_redis_memory", lambda r: (950 * 2**20, 1000 * 2**20))
    page = web.client.get("/dashboard").get_data(as_text=True)
    tile = page[page.index('title="Redis: ') - 20 : page.index('title="Redis: ')]
    assert 'class="tile bad"' in tile
    assert "Redis: 950.0 MB of 1000.0 MB (95%)." in page and "of 1000.0 MB</span>" in page


def test_many_endpoints_the_overview_shows_those_in_trouble_and_links_the_rest(
    web: WebApp, make_receiver: ReceiverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web.blueprints import dashboard

    monkeypatch.setattr(dashboard, "OVERVIEW_ENDPOINTS", 2)
    monkeypatch.setattr(dashboard, "ENDPOINTS_LISTED", 2)
    healthy = [web.channel(webhookUrl=make_receiver().url)["id"] for _ in range(2)]
    failing = dead_letters(web, make_receiver, 1)["id"]
    signed_in(web)
    page = web.client.get("/dashboard").get_data(as_text=True)
    shown = re.findall(r'<tr id="endpoint-([^"]+)"', page)
    assert shown[0] == failing and len(shown) == 2
    assert "all 3 endpoints" in page
    assert '<td data-label="Last error">\u2013</td>' in page  # a healthy one's, not red
    page = web.client.get("/dashboard/endpoints?limit=2&page=2").get_data(as_text=True)
    assert re.findall(r'<tr id="endpoint-([^"]+)"', page) == [failing]
    assert "page 2 of 2" in page and healthy[0] not in page
    page = web.client.get("/dashboard/deliveries").get_data(as_text=True)
    assert '<input name="endpointId" value="" placeholder="any">' in page


def test_an_endpoint_removed_while_a_page_is_made_is_left_out(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    from broker.delivery import health

    channel = web.channel(webhookUrl=make_receiver().url)
    views = health.views(web.redis, [channel["id"], "ch_gone"])
    assert [view["id"] for view in views] == [channel["id"]]


def conversation_links(page: str) -> list[str]:
    return [
        link.replace("&amp;", "&")
        for link in re.findall(r'href="(/dashboard/conversations/[^"]+)"', page)
    ]


def test_a_draft_conversation_opens_from_its_delivery_and_its_failed_turn(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    url = make_receiver(always(500, body=b"db down")).url
    channel = web.channel(webhookUrl=url, version="DRAFT")
    web.say(channel, "u0", "hi")
    web.deliver_due()
    (delivery_id,) = web.redis.zrange(keys.DEAD, 0, -1)
    web.send(channel, "u1", "poison")
    park_head(web.redis, web.settings, web.conversation_key(channel, "u1"), RuntimeError("x"))
    signed_in(web)
    (from_turn,) = conversation_links(
        web.client.get("/dashboard/dead-turns").get_data(as_text=True)
    )
    assert "version=DRAFT" in from_turn
    assert web.client.get(from_turn).status_code == 200
    page = web.client.get(f"/dashboard/deliveries/{delivery_id}").get_data(as_text=True)
    (from_delivery,) = conversation_links(page)
    opened = web.client.get(from_delivery).get_data(as_text=True)
    assert "You said: hi<" in opened and "· DRAFT ·" in opened
    # Its channel talks to LIVE since: the delivery's link still finds the conversation.
    moved = web.client.patch(
        f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}",
        json={"version": "LIVE"},
        headers=ADMIN,
    )
    assert moved.status_code == 200
    assert "You said: hi<" in web.client.get(from_delivery).get_data(as_text=True)
    api_error(web.client.get(from_delivery.replace("u0", "u9")), 404, "not_found")


def test_enabling_or_disabling_an_endpoint_goes_back_to_the_page_it_was_on(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    for _ in range(3):
        web.channel(webhookUrl=make_receiver().url)
    csrf = signed_in(web)
    page = web.client.get("/dashboard/endpoints?page=2&limit=2").get_data(as_text=True)
    action, back = re.findall(
        r'action="([^"]+/disable)">.*?name="back" value="([^"]*)"', page, re.S
    )[0]
    assert back == "/dashboard/endpoints?page=2&amp;limit=2"
    answer = web.client.post(action, data={"csrf": csrf, "back": back.replace("&amp;", "&")})
    assert answer.headers["Location"] == "/dashboard/endpoints?page=2&limit=2&done=disabled"
    page = web.client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Endpoint disabled" in page and ">Enable<" in page
    action = re.findall(r'action="([^"]+/enable)"', page)[0]
    elsewhere = web.client.post(action, data={"csrf": csrf, "back": "https://evil.example/x"})
    assert elsewhere.headers["Location"] == "/dashboard?done=enabled"


@pytest.mark.parametrize(
    "counts",
    [
        {"n": "<b>all</b> of your", "m": "1"},
        {"n": "1", "m": "every"},
        {"n": "-1", "m": "1"},
        {"n": "1e3", "m": "1"},
        {"n": "\uff11", "m": "1"},  # a full-width digit
        {"n": "1", "m": "1" * 10},
    ],
)
def test_a_notice_says_counts_only(web: WebApp, counts: dict[str, str]) -> None:
    signed_in(web)
    page = web.client.get(
        "/dashboard/dead-letters", query_string={"done": "replayed", **counts}
    ).get_data(as_text=True)
    assert 'class="notice"' not in page and "queued again" not in page
    page = web.client.get("/dashboard/dead-letters?done=replayed&n=2&m=3").get_data(as_text=True)
    assert '<p class="notice" role="status">2 of 3 delivery(ies) queued again.</p>' in page


def test_a_conversation_s_id_is_shown_with_only_what_is_not_printable_escaped(
    web: WebApp,
) -> None:
    from markupsafe import escape

    channel = web.channel()
    shown = {
        "ctl\x01\x07bell": r"'ctl\x01\x07bell'",
        "  ": "'  '",
        "会話-é": "会話-é",
        "会話\x07é": r"'会話\x07é'",
        "a\u202eb": r"'a\u202eb'",
    }
    signed_in(web)
    for session_id, text in shown.items():
        web.say(channel, session_id, "hi")
        with web.app.test_request_context():
            link = url_for("dashboard.conversation", bot_id=channel["botId"], session_id=session_id)
        page = web.client.get(link).get_data(as_text=True)
        assert f"<title>{escape(text)} · Switchboard</title>" in page
        assert f"<h1>Conversation <code><bdi>{escape(text)}</bdi></code>" in page
    listed = web.client.get("/dashboard/deliveries").get_data(as_text=True)
    assert all(f"<bdi>{escape(text)}</bdi></a>" in listed for text in shown.values())


def test_the_pager_links_first_last_and_back_from_past_the_end(
    web: WebApp, make_receiver: ReceiverFactory
) -> None:
    for _ in range(3):
        web.channel(webhookUrl=make_receiver().url)
    signed_in(web)

    def pager(query: str) -> dict[str, str]:
        page = web.client.get(f"/dashboard/endpoints?{query}").get_data(as_text=True)
        nav = page[page.index('<nav class="pages"') :]
        nav = nav[: nav.index("</nav>")]
        found = re.findall(
            r'<a href="/dashboard/endpoints\?page=(\d+)&amp;limit=\d+">([^<]+)</a>', nav
        )
        assert "<span>page " in nav
        return {label: number for number, label in found}

    assert pager("page=99999&limit=1") == {"« first": "1", "← newer": "3"}
    assert pager("page=2&limit=1") == {
        "« first": "1",
        "← newer": "1",
        "older →": "3",
        "last »": "3",
    }
    assert pager("page=1&limit=1") == {"older →": "2", "last »": "3"}
    assert pager("page=5&limit=50") == {"« first": "1", "← newer": "1"}  # a single page


def test_a_delivery_waiting_for_its_retry_is_retried_now(make_receiver: ReceiverFactory) -> None:
    with web_app(retry_schedule=(0.0, 3600.0)) as web:
        channel = web.channel(webhookUrl=make_receiver(always(500, body=b"db down")).url)
        web.say(channel, "u0", "hi")
        web.deliver_due()
        csrf = signed_in(web)
        (item,) = web.client.get("/v1/deliveries", headers=ADMIN).get_json()["items"]
        assert item["status"] == "queued" and "nextAttemptAt" in item
        page = web.client.get(f"/dashboard/deliveries/{item['id']}").get_data(as_text=True)
        assert ">Retry now<" in page and ">Replay<" not in page
        answer = web.client.post(f"/dashboard/deliveries/{item['id']}/replay", data={"csrf": csrf})
        assert answer.headers["Location"] == f"/dashboard/deliveries/{item['id']}?done=retried"
        page = web.client.get(answer.headers["Location"]).get_data(as_text=True)
        assert "Its next attempt is made now." in page and ">Retry now<" not in page
        web.deliver_due()
        assert (
            len(
                web.client.get(f"/v1/deliveries/{item['id']}", headers=ADMIN).get_json()["attempts"]
            )
            == 2
        )
