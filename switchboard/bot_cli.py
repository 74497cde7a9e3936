"""`switchboard bot`: a bot definition file, validated and tested offline, pushed and published.

`validate` and `test` need nothing running: no Redis, no network (API calls are answered from
the conversation files). `push` and `publish` are clients of the management API, as
`switchboard bots` is (`--url`, `--token`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from broker.core.errors import SwitchboardError
from switchboard.admin_cli import Api, api_path, connection


@click.group("bot")
def bot() -> None:
    """a bot definition file: validate, test, push, publish"""


def _definition(path: str) -> tuple[dict[str, Any], list[str]]:
    """The file's definition, validated, and its faults (each `path: message`)."""
    from broker.bots import definition, documents
    from broker.bots.faults import DefinitionInvalid, Fault

    try:
        document = documents.load(Path(path))
    except documents.KeyTwice as exc:
        return {}, [str(Fault(exc.field or "", "is given twice"))]
    try:
        return definition.validate(document, prefix=""), []
    except DefinitionInvalid as exc:
        return {}, [str(fault) for fault in exc.faults]


@bot.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def cmd_validate(files: tuple[str, ...]) -> int:
    """check definition files; every fault is listed with its path"""
    faulty = 0
    for path in files:
        checked, faults = _definition(path)
        if faults:
            faulty += 1
            for fault in faults:
                click.echo(f"{path}: {fault}")
            click.echo(f"{path}: {len(faults)} fault(s)", err=True)
        else:
            version = checked.get("version", 1)
            states = len(checked["states"])
            intents = len(checked.get("intents", {}))
            click.echo(f"{path}: valid (version {version}, {states} states, {intents} intents)")
    return 1 if faulty else 0


@bot.command("test")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("conversations", nargs=-1, required=True, type=click.Path(dir_okay=False))
def cmd_test(file: str, conversations: tuple[str, ...]) -> int:
    """run conversation files against a definition, offline

    Each conversation that goes otherwise than written is shown with a diff. The exit code
    is 1 when one failed.
    """
    from broker.bots import conversation_tests, documents
    from broker.bots.program import compile_definition

    checked, faults = _definition(file)
    if faults:
        for fault in faults:
            click.echo(f"{file}: {fault}")
        return 1
    program = compile_definition(checked)
    # Custom actions named `module:function` are found beside the definition too.
    sys.path.insert(0, str(Path(file).resolve().parent))
    passed = failed = 0
    for path in conversations:
        for outcome in conversation_tests.run_file(program, documents.load(Path(path))):
            if outcome.passed:
                passed += 1
                click.echo(f"PASS {path}: {outcome.name}")
            else:
                failed += 1
                click.echo(f"FAIL {path}: {outcome.name}")
                for failure in outcome.failures:
                    click.echo("    " + failure.replace("\n", "\n    "))
    click.echo(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


@bot.command("schema")
def cmd_schema() -> None:
    """print the JSON Schema of definitions (as GET /v1/schemas/bot-definition)"""
    from broker.bots import definition_v2

    click.echo(json.dumps(definition_v2.schema(), indent=2, ensure_ascii=False))


def _find(api: Api, name: str) -> str | None:
    """The id of the bot called `name`, if there is one."""
    page = 1
    while True:
        found = api.call(
            "GET", "/v1/bots", params={"page": page, "limit": 500}, expect=("items", "total")
        )
        for item in found["items"]:
            if item["name"] == name:
                return str(item["id"])
        if page * 500 >= found["total"]:
            return None
        page += 1


def _name_of(file: str, document: Any) -> str:
    given = document.get("name") if isinstance(document, dict) else None
    return str(given) if given else Path(file).stem


@bot.command("push")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--bot", "bot_id", help="the bot to update (default: the one named as the file's `name`)"
)
@connection
def cmd_push(file: str, bot_id: str | None, url: str, token: str) -> None:
    """create the bot, or replace its DRAFT, with a definition file

    Without --bot, the bot is found by the definition's `name` (or the file's name without
    its extension), and created when there is none.
    """
    from broker.bots import documents

    document = documents.load(Path(file))
    api = Api(url, token)
    name = _name_of(file, document)
    bot_id = bot_id or _find(api, name)
    if bot_id is None:
        created = api.call(
            "POST", "/v1/bots", body={"name": name, "definition": document}, expect=("id",)
        )
        click.echo(f"{created['id']}: created {name!r} (its DRAFT and LIVE versions)")
        return
    api.call("PUT", api_path("v1", "bots", bot_id, "draft"), body={"definition": document})
    click.echo(f"{bot_id}: DRAFT replaced; `switchboard bot publish {file}` makes it LIVE")


@bot.command("publish")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--bot", "bot_id", help="the bot to publish (default: the one FILE names)")
@connection
def cmd_publish(file: str | None, bot_id: str | None, url: str, token: str) -> None:
    """make a bot's DRAFT its LIVE version: the bot of --bot, or the one FILE was pushed as"""
    from broker.bots import documents

    api = Api(url, token)
    if bot_id is None:
        if file is None:
            raise click.UsageError("give the definition FILE or --bot")
        name = _name_of(file, documents.load(Path(file)))
        bot_id = _find(api, name)
        if bot_id is None:
            raise SwitchboardError(f"no bot is called {name!r}; push {file} first")
    published = api.call(
        "POST", api_path("v1", "bots", bot_id, "publish"), expect=("id", "publishedAt")
    )
    click.echo(f"{published['id']}: DRAFT published as LIVE at {published['publishedAt']}")
