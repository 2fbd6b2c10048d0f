"""Every command of the documentation is run or checked, so the docs cannot drift from the code.

See ``doc_blocks.py`` for the markers. A page's ``run`` blocks run in order in one scratch folder
(a long name, no terminal, ``COLUMNS`` unset) with the repository's ``.venv/bin`` first on PATH.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from suture.cli.main import app

from .board_tools import BOARD_TOOLS, BoardToolCommandError
from .doc_blocks import MODES, Block, blocks, commands

REPO = Path(__file__).resolve().parents[2]
PAGES = [*sorted((REPO / "docs").rglob("*.md")), REPO / "README.md"]
ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
BIN = REPO / ".venv" / "bin"

# Programs a parse-only block may name without a check of its own: dfu-util (a C program, run
# on a bench), and the shell's everyday commands. esptool, pyocd and adafruit-nrfutil lines are
# parsed by the pinned tools' own parsers (board_tools.py).
EXTERNAL = {"dfu-util", "curl", "mkdir", "cd", "printf", "cat", "echo",
            "grep", "cp", "head", "export", "source", "python3", "git", "pip", "rm", "ls",
            "sed", "sleep", "chmod", "tail", "sudo", "udevadm", "uhubctl",
            "systemctl", "useradd"}


def _ids(items: list[Block]) -> list[str]:
    return [b.where for b in items]


def test_every_shell_block_has_a_marker() -> None:
    unmarked = [b.where for b in ALL_BLOCKS if b.mode not in MODES]
    assert not unmarked, f"shell blocks without a doc-test marker (see tests/docs): {unmarked}"


def test_every_page_with_commands_is_covered() -> None:
    """Not one page is left to parse-only checks when its commands can run."""
    pages = {b.page.name for b in ALL_BLOCKS}
    assert {"suit.md", "rotate-a-key.md", "boards.md", "stage0.md"} <= pages
    runs = {b.page.name for b in ALL_BLOCKS if b.mode in {"run", "tested-by"}}
    assert {"suit.md", "rotate-a-key.md", "boards.md", "stage0.md"} <= runs


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.mode == "tested-by"],
                         ids=_ids([b for b in ALL_BLOCKS if b.mode == "tested-by"]))
def test_tested_by_names_a_test_that_reads_the_page(block: Block) -> None:
    test = REPO / block.argument.split("::")[0]
    assert test.is_file(), f"{block.where}: {block.argument} does not exist"
    assert block.page.name in test.read_text(), (
        f"{block.where}: {block.argument} never names {block.page.name}")


# -- parse: each command is checked without running it ---------------------------------------

class CommandLineError(AssertionError):
    """A ``suture`` command line the CLI refuses (an unknown command, option or value)."""


def _parse_suture(args: list[str], *, elided: bool = False) -> None:
    """Parse ``suture ARGS`` down to the last subcommand without running it (a line that elides
    some of its options may lack a required one)."""
    try:
        _parse(args)
    except Exception as exc:
        if getattr(exc, "exit_code", None) == 0:
            return  # --help
        if elided and type(exc).__name__ == "MissingParameter":
            return
        message = getattr(exc, "format_message", None)
        if message is None:
            raise
        raise CommandLineError(message()) from exc


def _parse(args: list[str]) -> None:
    command: Any = typer.main.get_command(app)
    context = command.make_context("suture", list(args))
    while hasattr(command, "resolve_command"):
        rest = [*getattr(context, "_protected_args", []), *context.args]
        if not rest:
            break
        name, sub, remaining = command.resolve_command(context, rest)
        assert sub is not None, f"no command {rest[0]!r}"
        command = sub
        context = sub.make_context(name or rest[0], remaining, parent=context)


@functools.cache
def _pytest_help() -> str:
    proc = subprocess.run([str(BIN / "pytest"), "--help", "-p", "no:cacheprovider"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=True)
    return proc.stdout


def _check_pytest(args: list[str]) -> None:
    """Paths exist, markers are registered (pyproject.toml), options are known to pytest and
    the suite's plugins: what a drifted test command gets wrong, without collecting."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    markers = {m.split(":")[0] for m in config["tool"]["pytest"]["ini_options"]["markers"]}
    help_text = _pytest_help()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "-m":
            expr = args[index]
            index += 1
            words = set(re.findall(r"[A-Za-z_]+", expr)) - {"and", "or", "not"}
            assert words <= markers, f"unregistered marker(s) {words - markers}"
        elif arg.startswith("--"):
            option = arg.split("=")[0]
            assert re.search(rf"(^|[ ,]){re.escape(option)}\b", help_text, re.M), (
                f"pytest knows no option {option}")
            if "=" not in arg and index < len(args) and not args[index].startswith("-") \
                    and not (REPO / args[index].split("::")[0]).exists():
                index += 1  # the option's value
        elif arg in {"-p", "-k", "-o", "-c", "-n"}:
            index += 1  # a short option's value
        elif arg.startswith("-"):
            continue
        else:
            assert (REPO / arg.split("::")[0]).exists(), f"no test path {arg}"


def _check_command(argv: list[str]) -> None:
    elided = any(a in {"…", "..."} for a in argv)  # the docs' "and the rest as above"
    argv = [a for a in argv if a not in {"…", "..."}]
    while argv and argv[0] in {"do", "then", "else", "time", "exec"}:
        argv = argv[1:]  # a compound command's body: check the command itself
    if not argv or argv[0] in {"for", "done", "fi", "if", "while"}:
        return
    program = argv[0]
    if "=" in program and not program.startswith("-"):
        return
    name = Path(program).name
    if name == "suture":
        _parse_suture(argv[1:], elided=elided)
    elif name == "pytest":
        _check_pytest(argv[1:])
    elif name == "make":
        proc = subprocess.run(["make", "-n", *argv[1:]], cwd=REPO, capture_output=True,
                              text=True, timeout=120, check=False,
                              env={**os.environ, "MAKEFLAGS": "n"})
        assert proc.returncode == 0, f"make {argv[1:]}: {proc.stderr[-800:]}"
    elif name == "python" and argv[1:3] == ["-m", "bench"]:
        have = {p.stem for p in (REPO / "bench").glob("*.py") if not p.stem.startswith("_")}
        assert set(argv[3:]) <= have, f"no benchmark {set(argv[3:]) - have}"
    elif name == "qemu-system-arm":
        machine = argv[argv.index("-M") + 1]
        assert machine in {"mps2-an385", "mps2-an386", "mps2-an505"}, machine
        kernel = argv[argv.index("-kernel") + 1]
        assert (REPO / kernel).parent.parent.name == "build" or kernel.endswith(".bin"), kernel
    elif program.startswith("tools/"):
        assert os.access(REPO / program, os.X_OK), f"{program} is not an executable script"
    elif name in BOARD_TOOLS:
        BOARD_TOOLS[name](argv[1:])
    else:
        assert name in EXTERNAL, f"{program}: a command the docs test does not know how to check"


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.mode == "parse"],
                         ids=_ids([b for b in ALL_BLOCKS if b.mode == "parse"]))
def test_parse_block(block: Block) -> None:
    found = commands(block.text)
    assert found, f"{block.where}: no command in the block"
    for argv in found:
        try:
            _check_command(argv)
        except AssertionError as exc:
            pytest.fail(f"{block.where}: {' '.join(argv)}: {exc}")


# -- run: the page's blocks as a reader types them -------------------------------------------

RUN_PAGES = sorted({b.page for b in ALL_BLOCKS if b.mode == "run"})


@pytest.mark.parametrize("page", RUN_PAGES, ids=[p.name for p in RUN_PAGES])
def test_run_blocks(page: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    scratch = tmp_path_factory.mktemp(
        f"a-reader-following-{page.stem}-step-by-step-in-a-folder-with-a-long-name")
    (scratch / ".venv").symlink_to(REPO / ".venv")
    for folder in ("boards", "stage0", "tools"):
        (scratch / folder).symlink_to(REPO / folder)
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(scratch)
    env["SUTURE_REPO"] = str(REPO)
    shell = shutil.which("bash") or "/bin/bash"
    for block in (b for b in blocks(page) if b.mode == "run"):
        script = "\n".join([*block.setup, block.text])
        proc = subprocess.run([shell, "-euo", "pipefail", "-c", script], cwd=scratch, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, (
            f"{block.where} exited {proc.returncode}\n--- stdout\n{proc.stdout[-2000:]}"
            f"\n--- stderr\n{proc.stderr[-2000:]}")
        for line in block.expect:
            assert line in proc.stdout, f"{block.where}: {line!r} not in\n{proc.stdout[-2000:]}"


def test_parse_rejects_a_drifted_command() -> None:
    """The parse check fails on an option or a command that does not exist."""
    with pytest.raises(CommandLineError, match="no-such-option"):
        _parse_suture(["suit", "verify", "x.suit", "--no-such-option"])
    with pytest.raises(CommandLineError, match="no-such-command"):
        _parse_suture(["no-such-command"])
    _parse_suture(["suit", "verify", "x.suit", "--key", "k.pem", "--json"])
    with pytest.raises(AssertionError):
        _check_command(["frobnicate", "--now"])
    with pytest.raises(AssertionError):
        _check_command([".venv/bin/python", "-m", "bench", "no-such-bench"])
    with pytest.raises(AssertionError, match="marker"):
        _check_command([".venv/bin/pytest", "tests/stage0", "-m", "powercuts"])
    with pytest.raises(AssertionError, match="no test path"):
        _check_command([".venv/bin/pytest", "tests/no-such-folder"])
    with pytest.raises(AssertionError, match="no option"):
        _check_command([".venv/bin/pytest", "tests/hil", "--tagret", "sim"])
    _check_command([".venv/bin/pytest", "tests/hil", "--target", "sim", "-m", "hil and not slow"])


@pytest.mark.parametrize(("line", "message"), [
    ("esptool --chip esp32s3 --port /dev/ttyACM0 write_flash 0x0 firmware.bin",
     "Command 'write_flash' is deprecated"),
    ("esptool --chip esp32s9 --port /dev/ttyACM0 write-flash 0x0 firmware.bin",
     "'esp32s9' is not one of"),
    ("esptool --chip esp32s3 write-flash --flash-mod keep 0x0 firmware.bin",
     "No such option '--flash-mod'"),
    ("pyocd flash --target nrf52480 --format bin stage0.bin", "no target 'nrf52480'"),
    ("pyocd flash --tagret nrf52840 stage0.bin", "unrecognized arguments: --tagret"),
    ("adafruit-nrfutil dfu genpkg --dev-type nrf52 --application a.bin a.zip",
     "nrf52 is not a valid integer"),
    ("adafruit-nrfutil dfu serail --package a.zip", "No such command 'serail'"),
])
def test_parse_rejects_a_drifted_board_tool_command(line: str, message: str) -> None:
    """esptool, pyocd and adafruit-nrfutil lines are parsed by the pinned tools themselves."""
    with pytest.raises(BoardToolCommandError, match=message):
        _check_command(line.split())
    fixed = {"write_flash": "write-flash", "esp32s9": "esp32s3", "--flash-mod ": "--flash-mode ",
             "nrf52480": "nrf52840", "--tagret": "--target", "nrf52 ": "0x0052 ",
             "serail": "serial --port /dev/ttyACM0"}
    for wrong, right in fixed.items():
        line = line.replace(wrong, right)
    _check_command(line.split())
