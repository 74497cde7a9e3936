"""The admin commands against the running stack: bots, channels, send, tokens, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.command_line import run_cli, switchboard
from tests.integration.stacks import ADMIN_TOKEN, Api
from tests.receivers import Receiver, ReceiverFactory, always
from tests.redis_databases import db, url


@pytest.fixture
def cli_env(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("SWITCHBOARD_URL", api.base)
    monkeypatch.setenv("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("REDIS_URL", url(db("stack")))
    return api


def test_bots_and_channels_through_the_cli(
    cli_env: Api, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "bots", "create", "--name", "pizza", "--template", "echo")
    assert code == 0
    bot_id = out.strip()
    assert bot_id.startswith("bot_")

    code, out, _ = run_cli(capsys, "bots", "list")
    assert code == 0 and f"{bot_id}  pizza" in out and "1 bot(s)" in out

    code, out, _ = run_cli(capsys, "bots", "publish", bot_id)
    assert code == 0 and "published as LIVE" in out

    code, out, err = run_cli(capsys, "channels", "create", bot_id, "--webhook-url", receiver.url)
    assert code == 0 and "accessToken" in err
    channel = json.loads(out)
    assert channel["accessToken"] and channel["signingSecret"].startswith("whsec_")

    code, out, _ = run_cli(capsys, "channels", "list", bot_id)
    assert code == 0 and f"{channel['id']}  LIVE  {receiver.url}" in out

    code, out, _ = run_cli(capsys, "channels", "rotate-secret", bot_id, channel["id"])
    assert (
        code == 0 and out.strip().startswith("whsec_") and out.strip() != channel["signingSecret"]
    )

    code, out, err = run_cli(
        capsys,
        "send",
        bot_id,
        channel["id"],
        "--intro",
        "--session",
        "u1",
        "--access-token",
        channel["accessToken"],
        "--wait",
        "0.5",
    )
    assert code == 0, err
    assert out.splitlines() == ["bot: Hello! I repeat what you say."]
    code, out, err = run_cli(
        capsys,
        "send",
        bot_id,
        channel["id"],
        "pizza please",
        "--session",
        "u1",
        "--access-token",
        channel["accessToken"],
        "--wait",
        "0.5",
    )
    assert code == 0, err
    assert out.splitlines() == ["bot: You said: pizza please"]

    code, out, _ = run_cli(capsys, "bots", "delete", bot_id)
    assert code == 0 and out.strip() == f"{bot_id}: deleted"
    assert cli_env.get(f"/v1/bots/{bot_id}").status_code == 404
    assert cli_env.get(f"/v1/endpoints/{channel['id']}").status_code == 404
    code, _, err = run_cli(capsys, "bots", "delete", bot_id)
    assert code != 0 and "404 not_found" in err


def test_a_definition_file(
    cli_env: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bot.json"
    path.write_text(
        json.dumps({"startState": "a", "states": [{"id": "a", "messages": [{"text": "hi"}]}]})
    )
    code, out, _ = run_cli(capsys, "bots", "create", "--name", "file", "--definition", str(path))
    assert code == 0
    assert cli_env.get(f"/v1/bots/{out.strip()}").json()["live"]["startState"] == "a"


def test_token_create_for_a_bot_opens_its_agent_route(
    cli_env: Api, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = cli_env.echo_channel(receiver.url)
    code, out, _ = run_cli(
        capsys, "token", "create", "--bot", channel["botId"], "--description", "desk"
    )
    assert code == 0
    token = out.strip()
    assert token.startswith("sbapi_")
    listed = cli_env.get(f"/v1/bots/{channel['botId']}/api-tokens").json()["items"]
    assert [t["description"] for t in listed] == ["desk"]
    refused = cli_env.get("/v1/bots", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    code, out, _ = run_cli(capsys, "token", "list", "--bot", channel["botId"])
    (listed,) = cli_env.get(f"/v1/bots/{channel['botId']}/api-tokens").json()["items"]
    assert code == 0 and f"{listed['id']}" in out and "desk" in out and "1 API token(s)" in out
    code, out, _ = run_cli(capsys, "token", "revoke", "--bot", channel["botId"], listed["id"])
    assert code == 0 and out == f"{listed['id']} revoked\n"
    assert cli_env.get(f"/v1/bots/{channel['botId']}/api-tokens").json()["items"] == []


def test_admin_tokens_are_listed_and_revoked_through_the_cli(
    cli_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """`switchboard token list|revoke`."""
    code, out, _ = run_cli(capsys, "token", "create", "--description", "night shift")
    assert code == 0
    token = out.strip()
    mine = {"Authorization": f"Bearer {token}"}
    assert cli_env.get("/v1/bots", headers=mine).status_code == 200
    code, out, _ = run_cli(capsys, "token", "list")
    assert code == 0 and "night shift" in out and "1 admin token(s)" in out
    assert token not in out
    (listed,) = cli_env.get("/v1/admin-tokens").json()["items"]
    assert listed["id"] in out
    code, out, _ = run_cli(capsys, "token", "revoke", listed["id"])
    assert code == 0 and f"{listed['id']} revoked" in out
    assert cli_env.get("/v1/bots", headers=mine).status_code == 401
    code, _, err = run_cli(capsys, "token", "revoke", listed["id"])
    assert code != 0 and "no admin token" in err


def test_the_web_process_refuses_a_short_admin_token(api: Api) -> None:
    """It does not start at all."""
    done = switchboard(
        "web",
        "--port",
        "1",
        env={**os.environ, "REDIS_URL": url(db("stack")), "SWITCHBOARD_ADMIN_TOKEN": "x" * 31},
        timeout=60,
    )
    assert done.returncode != 0
    assert "SWITCHBOARD_ADMIN_TOKEN must be at least 32 characters long" in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bots", "publish", "bot_nope"], "404 not_found"),
        (
            ["bots", "create", "--name", "x", "--definition", "/no/such/file.json"],
            "cannot read /no/such/file.json",
        ),
        (
            ["channels", "create", "bot_nope", "--webhook-url", "http://127.0.0.1:9/"],
            "404 not_found",
        ),
        (["channels", "list", "bot_nope"], "404 not_found"),
        (["channels", "rotate-secret", "bot_nope", "ch_nope"], "404 not_found"),
        (["send", "bot_nope", "ch_nope", "hi"], "--access-token"),
        (["send", "bot_nope", "ch_nope", "--access-token", "t"], "--intro"),
        (["token", "create", "--bot", "bot_nope"], "no bot 'bot_nope'"),
        (["token", "create", "--bot", ""], "--bot names a bot: it cannot be empty"),
        (["bots", "list", "--token", "токен"], "the admin token (--token"),
        (["bots", "list", "--token", "a\nb"], "holds characters that no token has"),
        (["send", "b", "c", "hi", "--access-token", "\xff"], "the access token"),
        (["send", "b", "c", "hi", "--access-token", "t", "--timeout", "nan"], "--timeout"),
        (["bots", "list", "--token", "wrong"], "401 unauthorized"),
        (["bots", "list", "--limit", "501"], "501 is not in the range 1<=x<=500"),
    ],
)
def test_bad_input_is_a_message_and_a_nonzero_exit(
    cli_env: Api, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code != 0
    assert message in err
    assert "Traceback" not in err and out == ""


def test_a_bad_channel_url_names_the_field(
    cli_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = cli_env.bot(name="b")
    code, _, err = run_cli(
        capsys, "channels", "create", bot["id"], "--webhook-url", "http://10.0.0.1/"
    )
    assert code != 0 and "(field webhookUrl)" in err


def test_the_command_itself_prints_no_traceback(api: Api) -> None:
    done = switchboard("bots", "list", "--url", "http://127.0.0.1:1", "--token", "x")
    assert done.returncode != 0
    assert "cannot reach http://127.0.0.1:1/v1/bots" in done.stderr
    assert "Traceback" not in done.stderr


def test_bot_push_creates_then_replaces_the_draft_and_publish_makes_it_live(
    cli_env: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bot_file = tmp_path / "greeter.yaml"
    bot_file.write_text("version: 2\nstartState: a\nstates:\n  a: {say: Hello}\n")
    code, out, _ = run_cli(capsys, "bot", "push", str(bot_file))
    assert code == 0 and out.endswith("created 'greeter' (its DRAFT and LIVE versions)\n")
    bot_id = out.split(":")[0]

    bot_file.write_text("version: 2\nname: greeter\nstartState: b\nstates:\n  b: {say: Hi}\n")
    code, out, _ = run_cli(capsys, "bot", "push", str(bot_file))
    assert code == 0 and out.startswith(f"{bot_id}: DRAFT replaced")
    bot = cli_env.get(f"/v1/bots/{bot_id}").json()
    assert (bot["draft"]["startState"], bot["live"]["startState"]) == ("b", "a")

    code, out, _ = run_cli(capsys, "bot", "publish", str(bot_file))
    assert code == 0 and out.startswith(f"{bot_id}: DRAFT published as LIVE")
    assert cli_env.get(f"/v1/bots/{bot_id}").json()["live"]["startState"] == "b"

    bot_file.write_text("version: 2\nname: greeter\nstartState: c\nstates:\n  b: {say: Hi}\n")
    code, _, err = run_cli(capsys, "bot", "push", str(bot_file))
    assert code == 2
    assert err == (
        'switchboard: 422 validation_failed: unknown state "c" (field definition.startState)\n'
    )


def test_ids_are_one_path_segment_and_reach_no_other_route(
    cli_env: Api, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = cli_env.echo_channel(receiver.url)
    bot, secret = channel["botId"], channel["signingSecret"]
    code, _, err = run_cli(capsys, "bots", "delete", f"{bot}?")
    assert code != 0 and "404 not_found" in err
    assert cli_env.get(f"/v1/bots/{bot}").status_code == 200
    sneaky = f"{bot}/channels/webhook/{channel['id']}/rotate-secret?x="
    code, _, err = run_cli(capsys, "bots", "publish", sneaky)
    assert code != 0 and "404 not_found" in err and "Traceback" not in err
    found = cli_env.get(f"/v1/bots/{bot}/channels/webhook/{channel['id']}").json()
    assert found["signingSecret"] == secret


def test_an_answer_that_is_not_the_api_s_is_a_message(
    cli_env: Api, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["bots", "list"], ["bots", "create", "--name", "x", "--template", "echo"]):
        code, out, err = run_cli(capsys, *argv, "--url", receiver.url)
        assert code != 0 and out == ""
        assert "did not answer as Switchboard's API does (200" in err and "--url" in err


def test_revoking_goes_on_past_an_unknown_id(
    cli_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "token", "create")
    mine = {"Authorization": f"Bearer {out.strip()}"}
    (listed,) = cli_env.get("/v1/admin-tokens").json()["items"]
    code, out, err = run_cli(capsys, "token", "revoke", "adm_nope", listed["id"])
    assert code == 1 and "no admin token 'adm_nope'" in err
    assert out == f"{listed['id']} revoked\n"
    assert cli_env.get("/v1/bots", headers=mine).status_code == 401


def test_send_tells_a_reply_that_was_not_delivered_and_exits_1(
    cli_env: Api, make_receiver: ReceiverFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = make_receiver(always(500, body=b"db down"))
    channel = cli_env.echo_channel(broken.url, retrySchedule=[0])
    code, out, err = run_cli(
        capsys,
        *("send", channel["botId"], channel["id"], "hi \x1b]0;title\x07\u202e"),
        *("--access-token", channel["accessToken"], "--wait", "0.5"),
    )
    assert code == 1, err
    assert out == "bot (not delivered: HTTP 500: db down): You said: hi \\x1b]0;title\\x07\\u202e\n"
