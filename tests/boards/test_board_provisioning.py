"""`suture board provision|deploy|update|decommission|status` end to end on the simulated
board (a pty REPL to the unix port), and their clear failures: absent, busy, other kind."""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

import pytest
from board_cli import board_status, cli, runner
from suture import keys
from suture.boardops.decommission import DecommissionError, check_erase, open_record
from suture.boardops.session import open_board
from suture.boards import load_board
from suture.bundle import build_bundle
from suture.cli.main import app
from suture.devicectl import device_ops
from suture.sim.testing import sign_payload


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> tuple[keys.PrivateKey, Path]:
    folder = tmp_path_factory.mktemp("vendor")
    key = keys.generate_private_key("ES256")
    _, public = keys.write_key_pair(key, folder / "vendor.pem")
    return key, public


def _app(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "app"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text(f"def main():\n    print({text!r})\n")
    (folder / "lib").mkdir(exist_ok=True)
    (folder / "lib" / "util.py").write_text("def answer():\n    return 42\n")
    return folder


def test_provision_is_idempotent_and_needs_force_to_replace(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    device = tmp_path / "dev"
    app_dir = _app(tmp_path, "APP one")
    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", vendor[1], "--device-id", "ward3-bed7")
    assert code == 0, out
    assert "provisioned ward3-bed7 on sim: application version 1" in out
    status = board_status(device)
    assert status["device_id"] == "ward3-bed7"
    assert status["state"] == "CONFIRMED"
    assert status["nvm_keys"] == ["id.device", "id.key", "net.link", "trust.vendor"]
    assert status["link"] == "http"  # the sim board has IP: the board's default

    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", vendor[1])
    assert code == 0
    assert "already provisioned as ward3-bed7: nothing changed" in out

    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", vendor[1], "--device-id", "other")
    assert code == 1
    assert "already provisioned as ward3-bed7; use --force" in " ".join(out.split())
    assert board_status(device)["device_id"] == "ward3-bed7"

    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", vendor[1], "--device-id", "other", "--force")
    assert code == 0, out
    assert board_status(device)["device_id"] == "other"


def test_deploy_copies_only_what_changed_and_streams_the_log(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    device = tmp_path / "dev"
    app_dir = _app(tmp_path, "APP one")
    assert cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                "--vendor-key", vendor[1])[0] == 0
    _app(tmp_path, "APP edited")
    code, out = cli("board", "deploy", "sim", app_dir, "--device", device)
    assert code == 0, out
    # main.py stays source; lib/util.py is compiled: the board held util.py, not util.mpy.
    assert "copied 2 files, 0 unchanged" in out
    assert "+ lib/util.mpy" in out
    assert "APP edited" in out
    code, out = cli("board", "deploy", "sim", app_dir, "--device", device)
    assert code == 0, out
    assert "copied 0 files, 2 unchanged" in out
    assert "APP edited" in out


def test_local_update_installs_signed_and_refuses_unsigned(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    device = tmp_path / "dev"
    assert cli("board", "provision", "sim", "--device", device, "--app",
                _app(tmp_path, "APP one"), "--vendor-key", vendor[1])[0] == 0
    payload = build_bundle({"main.py": b"def main():\n    print('APP two')\n"})
    (tmp_path / "app2.bundle").write_bytes(payload)
    (tmp_path / "app2.suit").write_bytes(sign_payload(payload, 2, vendor[0]))
    rogue = keys.generate_private_key("ES256")
    (tmp_path / "rogue.suit").write_bytes(sign_payload(payload, 3, rogue))

    code, out = cli("board", "update", "sim", tmp_path / "rogue.suit", tmp_path / "app2.bundle",
                     "--device", device)
    assert code == 1
    assert "SignatureError" in out
    status = board_status(device)
    assert (status["state"], status["installed_version"]) == ("CONFIRMED", 1)  # nothing changed

    altered = payload[:-1] + bytes([payload[-1] ^ 1])
    (tmp_path / "altered.bundle").write_bytes(altered)
    code, out = cli("board", "update", "sim", tmp_path / "app2.suit",
                     tmp_path / "altered.bundle", "--device", device)
    assert code == 1
    assert "DigestError" in out
    assert board_status(device)["installed_version"] == 1

    code, out = cli("board", "update", "sim", tmp_path / "app2.suit", tmp_path / "app2.bundle",
                     "--device", device)
    assert code == 0, out
    assert "staged version 2; board state TRIAL, installed version 2" in " ".join(out.split())


def test_decommission_erases_the_application_its_data_and_the_identity(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    device = tmp_path / "dev"
    assert cli("board", "provision", "sim", "--device", device, "--app",
                _app(tmp_path, "APP-MARKER-7f3a"), "--vendor-key", vendor[1],
                "--device-id", "bed-9")[0] == 0
    board = load_board("sim")
    with open_board(board, device_dir=device) as session:  # the application's own data
        session.repl.exec("import os\nos.mkdir('/flash/data')\n"
                          "with open('/flash/data/log.txt', 'w') as f:f.write('PATIENT-4711 '*400)"
                          "\nwith open('/flash/note.txt','w') as f: f.write('PATIENT-4712')\n",
                          timeout_s=30)
        assert len(device_ops.fs_files(session.repl)) == 5
    internal = (device / "internal.bin").read_bytes()
    assert all(m in internal for m in (b"APP-MARKER-7f3a", b"PATIENT-4711", b"PATIENT-4712"))
    operator = keys.generate_private_key("ES256")
    keys.write_key_pair(operator, tmp_path / "operator.pem")
    code, out = cli("board", "decommission", "sim", "--device", device, "--yes",
                     "--record-key", tmp_path / "operator.pem", "--record-out",
                     tmp_path / "bed-9.cose")
    assert code == 0, out
    out = " ".join(out.split())
    assert "removed 5 file(s) (" in out
    assert "erased journal (8 KiB), nvm (56 KiB), staging (2016 KiB), backup (2016 KiB)" in out
    assert "read back: 4194304 bytes erased (all 0xFF), no file left, nothing installed" in out
    status = board_status(device)
    assert (status["device_id"], status["installed_version"], status["state"]) == (
        None, 0, "IDLE")
    assert status["nvm_keys"] == []
    assert status["journal"] == []
    assert status["backup_version"] is None
    with open_board(board, device_dir=device) as session:
        assert device_ops.fs_files(session.repl) == []
    external = (device / "external.bin").read_bytes()
    for region in board.external_flash.regions:
        if region.role in ("journal", "nvm", "staging", "backup"):
            assert external[region.offset:region.offset + region.size] == b"\xff" * region.size
    internal = (device / "internal.bin").read_bytes()
    for marker in (b"APP-MARKER-7f3a", b"PATIENT-4711", b"PATIENT-4712", b"SUTI"):
        assert marker not in internal, marker  # not even in freed littlefs blocks
    payload = open_record((tmp_path / "bed-9.cose").read_bytes(), operator.public_key())
    assert payload["device_id"] == "bed-9"
    assert payload["filesystem"]["files_removed"] == 5
    assert payload["after"]["installed_version"] == 0


def test_check_erase_refuses_a_read_back_with_data_left() -> None:
    board = load_board("sim")
    regions = {r.role: r for r in board.external_flash.regions}

    def region(name: str, *, dirty: int = 0, digest: bytes | None = None) -> list[object]:
        r = regions[name]
        d = digest or hashlib.sha256(b"\xff" * r.size).digest()
        return [name, r.offset, r.size, d.hex(), dirty]

    good = {"regions": [region(n) for n in ("journal", "nvm", "staging", "backup")],
            "fs_files_left": [], "installed_version": 0, "fs_files_removed": 1,
            "fs_bytes_removed": 10, "fs_bytes_scrubbed": 4096}
    assert check_erase(board, good).bytes_erased == 4194304
    for change, why in (
        ({"regions": good["regions"][:3]}, "backup was not erased"),
        ({"regions": [region("journal", dirty=1), *good["regions"][1:]]},
         r"journal: 1 sector\(s\) not erased"),
        ({"regions": [region("journal", digest=bytes(32)), *good["regions"][1:]]},
         r"journal: 0 sector\(s\) not erased"),
        ({"fs_files_left": [["/flash/app/main.py", 27]]}, "1 file.* left .*main.py"),
        ({"installed_version": 2}, "version 2 is still installed"),
    ):
        with pytest.raises(DecommissionError, match=why):
            check_erase(board, {**good, **change})


def test_a_missing_simulated_board_is_absent(tmp_path: Path) -> None:
    code, out = cli("board", "status", "sim", "--device", tmp_path / "nowhere")
    assert code == 3  # unreachable
    assert "no simulated board in" in out


def test_a_simulated_board_in_use_is_busy(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    device = tmp_path / "dev"
    assert cli("board", "provision", "sim", "--device", device, "--app",
                _app(tmp_path, "APP one"), "--vendor-key", vendor[1])[0] == 0
    with (device / ".lock").open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        code, out = cli("board", "status", "sim", "--device", device)
    assert code == 3  # unreachable
    assert "is busy: another command is running it" in " ".join(out.split())


def test_real_board_commands_name_an_absent_port(tmp_path: Path) -> None:
    port = tmp_path / "ttyACM0"
    code, out = cli("board", "status", "rpi-pico", "--port", port)
    assert code == 3  # unreachable
    assert f"no board at {port}: the port does not exist" in " ".join(out.split())
    code, out = cli("board", "update", "rpi-pico", tmp_path / "x.suit", tmp_path / "x.bin",
                     "--port", port)
    assert code == 2  # a missing input file, found before the port is opened
    assert f"{tmp_path / 'x.suit'}: No such file or directory" in " ".join(out.split())
    code, out = cli("board", "status", "rpi-pico")
    assert code == 1
    assert "give --port" in out


def test_a_board_of_another_kind_on_the_port_is_refused(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    """The simulated board's pty answers like a USB port; a Pico definition refuses it."""
    from suture.devicectl.sim_target import SimTarget
    from suture.sim.testing import identity_for

    target = SimTarget(tmp_path / "dev", identity_for(keys.public_key_bytes(
        vendor[0].public_key())))
    target.create()
    target.power_on()
    try:
        code, out = cli("board", "status", "rpi-pico", "--port", target.port)
    finally:
        target.close()
    assert code == 1
    assert "not a rpi-pico (expected 'RP2040' in its machine name)" in " ".join(out.split())


def test_provision_and_deploy_set_the_agents_transport(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    """--link writes the NVM record net.link the agent picks its transport from; without it,
    provisioning writes the board's default and deploy keeps what the board has."""
    device = tmp_path / "dev"
    app_dir = _app(tmp_path, "APP one")
    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", vendor[1], "--link", "uart:1:115200")
    assert code == 0, out
    assert "transport uart:1:115200" in out
    assert board_status(device)["link"] == "uart:1:115200"

    code, out = cli("board", "deploy", "sim", app_dir, "--device", device)
    assert code == 0, out
    assert "transport:" not in out
    assert board_status(device)["link"] == "uart:1:115200"  # kept

    code, out = cli("board", "deploy", "sim", app_dir, "--device", device, "--link",
                     "tty:/dev/ttyUSB0")
    assert code == 0, out
    assert "transport: tty:/dev/ttyUSB0" in out
    assert board_status(device)["link"] == "tty:/dev/ttyUSB0"

    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", vendor[1], "--link", "http")
    assert code == 0, out
    assert "its transport is now http" in out
    assert board_status(device)["link"] == "http"

    code, out = cli("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", vendor[1], "--link", "carrier-pigeon")
    assert code == 2
    assert "uart:<id>:<baud>" in out
    assert board_status(device)["link"] == "http"


@pytest.mark.parametrize(("board", "link"), [
    ("rpi-pico", "uart:1:115200"), ("adafruit-feather-nrf52840", "uart:0:115200"),
    ("pyboard-stm32f405", "uart:1:115200"), ("esp32-s3", "http"), ("sim", "http"),
    ("qemu-mps2-an385", "qemu"),
])
def test_board_default_links(board: str, link: str) -> None:
    from suture.boards import load_board

    assert load_board(board).default_link == link


def test_a_bad_link_in_a_board_definition_is_refused() -> None:
    from suture.boards.schema import check_link

    for bad in ("uart:x:9600", "uart:0", "uart:0:10", "tty:", "https", ""):
        with pytest.raises(ValueError, match="not one of"):
            check_link(bad)


def _files(device: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(device.iterdir()) if p.is_file()}


def test_status_reads_a_trial_without_booting_it(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    """Three status calls after an update leave the trial a trial: no boot counts, nothing on
    the board's flash changes (a boot-based status turned TRIAL into REVERTED)."""
    device = tmp_path / "dev"
    assert cli("board", "provision", "sim", "--device", device, "--app",
                _app(tmp_path, "APP one"), "--vendor-key", vendor[1])[0] == 0
    payload = build_bundle({"main.py": b"def main():\n    print('APP two')\n"})
    (tmp_path / "app2.bundle").write_bytes(payload)
    (tmp_path / "app2.suit").write_bytes(sign_payload(payload, 2, vendor[0]))
    assert cli("board", "update", "sim", tmp_path / "app2.suit", tmp_path / "app2.bundle",
                "--device", device)[0] == 0
    before = _files(device)
    for _ in range(3):
        status = board_status(device)
        assert (status["state"], status["installed_version"], status["backup_version"]) == (
            "TRIAL", 2, 1)
    assert status["boot_count"] == 1
    assert _files(device) == before
    code, out = cli("board", "status", "sim", "--device", device)
    assert code == 0, out
    assert "state        TRIAL (application, version 2, boot 1)" in out
    assert "backup       version 1" in out


def test_status_without_booting_answers_what_a_boot_would(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    """The status read from the flash images has exactly the fields and values the loader
    gives over the REPL (the status protocol) for a board whose boot changes nothing."""
    from suture.boardops.session import open_board
    from suture.boards import load_board
    from suture.devicectl import device_ops

    device = tmp_path / "dev"
    assert cli("board", "provision", "sim", "--device", device, "--app",
                _app(tmp_path, "APP one"), "--vendor-key", vendor[1], "--device-id",
                "bed-9", "--link", "uart:1:115200")[0] == 0
    read = board_status(device)
    with open_board(load_board("sim"), device_dir=device) as session:
        booted = device_ops.status(session.repl)
    assert read == booted


def test_status_of_a_blank_simulated_board(tmp_path: Path) -> None:
    from suture.devicectl.sim_target import SimTarget
    from suture.sim.testing import identity_for

    SimTarget(tmp_path / "dev", identity_for(keys.public_key_bytes(
        keys.generate_private_key("ES256").public_key()))).create()
    code, out = cli("board", "status", "sim", "--device", tmp_path / "dev")
    assert code == 1
    assert "is blank: provision it first" in " ".join(out.split())


def test_decommission_asks_refuses_without_a_terminal_and_dry_runs(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    device = tmp_path / "dev"
    assert cli("board", "provision", "sim", "--device", device, "--app",
                _app(tmp_path, "APP one"), "--vendor-key", vendor[1], "--device-id",
                "bed-3")[0] == 0
    before = _files(device)
    code, out = cli("board", "decommission", "sim", "--device", device)
    assert code == 4  # not confirmed: no terminal and no --yes
    assert "give --yes" in " ".join(out.split())
    code, out = cli("board", "decommission", "sim", "--device", device, "--dry-run",
                     "--scheduler-url", "http://127.0.0.1:9", "--operator-token", "t")
    assert code == 0, out
    assert "would erase the application filesystem and journal (8 KiB), nvm (56 KiB), staging " \
        "(2016 KiB), backup (2016 KiB)" in " ".join(out.split())
    assert "would report bed-3 as decommissioned to http://127.0.0.1:9" in " ".join(out.split())
    assert "nothing was changed" in out
    assert _files(device) == before
    monkeypatch.setattr("suture.cli.options.stdin_is_terminal", lambda: True)
    result = runner.invoke(app, ["board", "decommission", "sim", "--device", str(device)],
                           input="n\n")
    assert result.exit_code == 4
    assert "not confirmed: nothing was changed" in result.output
    assert _files(device) == before
    result = runner.invoke(app, ["board", "decommission", "sim", "--device", str(device)],
                           input="y\n")
    assert result.exit_code == 0, result.output
    assert "erased journal" in result.output
    assert board_status(device)["device_id"] is None


def test_provision_refuses_a_missing_firmware_or_stage0_file_in_one_line(
    tmp_path: Path, vendor: tuple[keys.PrivateKey, Path]
) -> None:
    (tmp_path / "loader.bin").write_bytes(b"\0" * 64)
    for extra, option in (
        (["--firmware", tmp_path / "loader.bin", "--stage0", tmp_path / "stage0.bin"],
         "--stage0"),
        (["--firmware", tmp_path / "nope.bin"], "--firmware"),
    ):
        result = runner.invoke(app, [str(a) for a in (
            "board", "provision", "rpi-pico", "--port", tmp_path / "ttyACM0", "--app",
            _app(tmp_path, "x"), "--vendor-key", vendor[1], *extra)])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith(f"error: {option} ")
        assert "no such file" in lines[0]


def test_list_and_show_print_json() -> None:
    code, out = cli("board", "list", "--json")
    assert code == 0
    boards = {b["name"]: b for b in json.loads(out)}
    assert boards["rpi-pico"]["core"] == "cortex-m0+"
    assert boards["sim"]["flashing"] == "sim"
    code, out = cli("board", "show", "qemu-mps2-an385", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["name"] == "qemu-mps2-an385"
    assert shown["internal_flash"]["base"] == 0x21000000
    assert {r["name"] for r in shown["external_flash"]["regions"]} >= {"journal", "nvm"}
