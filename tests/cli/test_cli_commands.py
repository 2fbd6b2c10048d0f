"""The whole `suture` command tree, walked: every list, show and create command takes --json,
the destructive ones --yes and --dry-run, every boolean option is a flag (never `--x true`), and
every command's --help works without a terminal.

A command is classified by its name (the verb tables below); a command whose verb is in none of
them fails the walk until it is classified, so a new command cannot skip the rules."""

from __future__ import annotations

from typing import Any

import pytest
from suture.cli.errors import SutureCommand, SutureGroup
from suture.cli.main import app
from typer.main import get_command
from typer.testing import CliRunner

LIST = {"list", "releases", "suit-reports", "biscuits"}
SHOW = {"show", "inspect", "status", "whoami", "sbom"}
CREATE = {"create", "add", "import", "publish", "issue", "keygen", "build", "image", "sign",
          "provision", "firmware-config", "mirror", "backup"}
# Commands that change or run something and print a line or a log, not a record.
OTHER = {"sim", "gateway", "sever", "verify", "decrypt", "diff", "check", "deploy", "update",
         "decommission", "init", "serve", "login", "logout", "rotate", "busy", "recall", "abort",
         "approve", "deny", "start", "pause", "resume", "export", "checkpoint", "roles", "disable",
         "enable", "password", "revoke", "remove", "attenuate", "restore", "grant", "set"}
# Destructive: they ask first, refuse without a terminal unless --yes, and dry-run.
DESTRUCTIVE = {("board", "decommission"), ("scheduler", "rollout", "abort"),
               ("scheduler", "release", "recall"), ("vendor", "recall")}


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    if hasattr(command, "commands"):
        found = [(path, command)] if path else []
        for name, sub in sorted(command.commands.items()):
            found += _walk(sub, (*path, name))
        return found
    return [(path, command)]


ROOT = get_command(app)
EVERYTHING = _walk(ROOT, ())
COMMANDS = [(path, cmd) for path, cmd in EVERYTHING if not hasattr(cmd, "commands")]
IDS = [" ".join(path) for path, _ in COMMANDS]


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_the_walk_finds_the_whole_tree() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"keygen", "bundle build", "board status", "scheduler rollout abort",
            "vendor client list"} <= names
    assert len(COMMANDS) >= 60


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_is_classified(path: tuple[str, ...], command: Any) -> None:
    assert path[-1] in LIST | SHOW | CREATE | OTHER, (
        f"`suture {' '.join(path)}`: classify its verb in tests/cli/test_cli_commands.py")


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_list_show_and_create_commands_take_json(path: tuple[str, ...], command: Any) -> None:
    if path[-1] in LIST | SHOW | CREATE:
        assert "--json" in _options(command), f"`suture {' '.join(path)}` has no --json"


@pytest.mark.parametrize("path", sorted(DESTRUCTIVE),
                         ids=[" ".join(p) for p in sorted(DESTRUCTIVE)])
def test_destructive_commands_take_yes_and_dry_run(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    assert {"--yes", "--dry-run"} <= _options(command)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_boolean_options_are_flags(path: tuple[str, ...], command: Any) -> None:
    for param in command.params:
        if param.param_type_name == "option" and param.type_descriptor.annotation is bool:
            assert param.is_flag, f"`suture {' '.join(path)}` {param.opts}: takes a value"


@pytest.mark.parametrize(("path", "command"), EVERYTHING,
                         ids=[" ".join(path) for path, _ in EVERYTHING])
def test_help_works_without_a_terminal(path: tuple[str, ...], command: Any) -> None:
    assert isinstance(command, SutureGroup | SutureCommand), type(command)
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Traceback" not in result.output
    assert "<bool>" not in result.output


def test_root_help_lists_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    for line in ("0  success", "1  failed", "2  usage", "3  unreachable", "4  not confirmed",
                 "130  interrupted"):
        assert line in result.output
