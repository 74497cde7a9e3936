"""The command line without a running Switchboard: its commands, bad input and listings."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import click
import pytest

from switchboard.listing import Column, show
from tests.command_line import run_cli, switchboard

OUT_OF_REACH = "127.0.0.1:1"


def test_help_lists_the_services_then_the_tools(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "-h")
    assert code == 0
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line]
    assert listed == [
        *("run", "web", "worker", "scheduler", "demo"),
        *("token", "bots", "bot", "channels", "send", "dlq", "dlq-turns", "status"),
        *("endpoints", "deliveries"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["web", "--port", "abc"], "'abc' is not a valid integer"),
        (["web", "--port", "99999"], "99999 is not in the range 1<=x<=65535"),
        (["run", "--port", "-5"], "-5 is not in the range 1<=x<=65535"),
        (["web", "--workers", "0"], "0 is not in the range x>=1"),
        (["web", "--threads", "0"], "0 is not in the range x>=1"),
        (["send", "bot", "channel", "--timeout", "soon"], "'soon' is not a valid float"),
        (["worker", "--pool", "fork"], "'fork' is not one of"),
        (["bots", "list", "--bogus"], "No such option '--bogus'"),
        (["bots", "publish"], "Missing argument 'BOT'"),
        (["bots", "create", "--name", "x"], "one of the arguments --definition --template"),
        (
            ["bots", "create", "--name", "x", "--template", "echo", "--definition", "x.json"],
            "argument --definition: not allowed with argument --template",
        ),
        (["send", "bot", "channel", "hi", "there"], "unexpected extra argument (there)"),
    ],
)
def test_bad_usage_exits_2_with_a_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_a_definition_file_that_gives_a_key_twice_is_refused_before_it_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"version": 2, "startState": "a", "states": {"a": {}, "a": {}}}')
    argv = ["bots", "create", "--name", "x", "--definition", str(path)]
    code, out, err = run_cli(capsys, *argv, "--url", f"http://{OUT_OF_REACH}", "--token", "t")
    assert (code, out) == (2, "")
    assert err == f"switchboard: {path} is not valid JSON: states.a: is given twice\n"


def test_the_api_and_its_token_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_URL", f"http://{OUT_OF_REACH}")
    monkeypatch.setenv("SWITCHBOARD_ADMIN_TOKEN", "token")
    code, out, err = run_cli(capsys, "bots", "list")
    assert (code, out) == (2, "")
    assert err == (
        f"switchboard: cannot reach http://{OUT_OF_REACH}/v1/bots; "
        "is Switchboard running there? (--url, SWITCHBOARD_URL)\n"
    )


def test_no_admin_token_is_a_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SWITCHBOARD_ADMIN_TOKEN", raising=False)
    code, _, err = run_cli(capsys, "bots", "list")
    assert code == 2
    assert err == "switchboard: give the admin token with --token or SWITCHBOARD_ADMIN_TOKEN\n"


@pytest.mark.parametrize("argv", [["token", "create"], ["dlq", "list"], ["dlq", "replay"]])
def test_redis_out_of_reach_is_a_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://{OUT_OF_REACH}/0")
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("switchboard: cannot reach Redis (REDIS_URL): ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("broker_url", "message"),
    [
        (
            "amqp://u:pw@127.0.0.1:notaport/v",
            "SWITCHBOARD_BROKER_URL names no usable port: Port could not be cast to integer "
            "value as 'notaport'",
        ),
        (
            "redis://:pw@127.0.0.1:notaport/0",
            "SWITCHBOARD_BROKER_URL is not a Redis URL: Port could not be cast to integer value "
            "as 'notaport'",
        ),
    ],
)
@pytest.mark.parametrize("role", ["run", "web", "worker", "scheduler"])
def test_a_malformed_broker_url_stops_every_role_at_once(
    role: str, broker_url: str, message: str
) -> None:
    env = {**os.environ, "REDIS_URL": f"redis://{OUT_OF_REACH}/0"}
    env["SWITCHBOARD_BROKER_URL"] = broker_url
    done = switchboard(role, env=env)
    assert (done.returncode, done.stderr) == (2, f"switchboard: {message}\n")


COLUMNS = [Column("id"), Column("name"), Column("published", "published ")]
ROWS = [["bot_1", "[bold]pizza[/bold]", "2026-11-21T08:00:00Z"]]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def shown_on_a_terminal(monkeypatch: pytest.MonkeyPatch, width: int) -> list[str]:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("COLUMNS", str(width))
    show(COLUMNS, ROWS, "1 bot(s)")
    return click.unstyle(terminal.getvalue()).splitlines()


def test_a_listing_piped_is_lines_of_values_two_spaces_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show(COLUMNS, ROWS, "1 bot(s)")
    assert capsys.readouterr().out.splitlines() == [
        "bot_1  [bold]pizza[/bold]  published 2026-11-21T08:00:00Z",
        "1 bot(s)",
    ]


def test_a_listing_writes_control_characters_in_values_as_escapes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show(COLUMNS, [["bot_2", "red\x1b[31m\nnext\u2028", "2026-11-21T08:00:00Z"]], "1 bot(s)")
    assert capsys.readouterr().out.splitlines() == [
        "bot_2  red\\x1b[31m\\nnext\\u2028  published 2026-11-21T08:00:00Z",
        "1 bot(s)",
    ]


def test_a_listing_writes_format_characters_in_values_as_escapes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show(COLUMNS, [["bot_3", "\u202eevil\u202c\u200f\u200bé", "2026-11-21T08:00:00Z"]], "1 bot(s)")
    assert capsys.readouterr().out.splitlines()[0] == (
        "bot_3  \\u202eevil\\u202c\\u200f\\u200bé  published 2026-11-21T08:00:00Z"
    )


def test_a_token_description_on_more_than_one_line_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "token", "create", "--description", "a\x1b[2Jb")
    assert (code, out) == (2, "")
    assert (
        err
        == "switchboard: --description: one line of text: no control characters or line breaks\n"
    )


def test_a_listing_on_a_wide_terminal_is_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = shown_on_a_terminal(monkeypatch, 100)
    assert lines[0].split() == ["id", "name", "published"]
    assert lines[2].split() == ["bot_1", "[bold]pizza[/bold]", "2026-11-21T08:00:00Z"]
    assert lines[-1] == "1 bot(s)"


def test_a_listing_too_wide_for_the_terminal_is_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = shown_on_a_terminal(monkeypatch, 40)
    assert lines == ["bot_1  [bold]pizza[/bold]  published 2026-11-21T08:00:00Z", "1 bot(s)"]
