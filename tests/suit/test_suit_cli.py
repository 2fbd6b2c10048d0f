"""`suture keygen` and `suture suit create|sign|sever|inspect|verify`, end to end."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
import yaml
from suit_samples import sample_description, write_images
from suture import keys
from suture.cli import keys_cmd, suit_cmd
from typer.testing import CliRunner


def _app() -> typer.Typer:
    app = typer.Typer()
    keys_cmd.register(app)
    suit_cmd.register(app)
    return app


runner = CliRunner()
APP = _app()
CONSOLES = (keys_cmd._out, suit_cmd._out)


def pin_width(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    """Print the commands' human output as on a terminal `columns` wide, whatever runs the tests.

    rich otherwise measures the terminal (80 columns without one), and reads $COLUMNS only
    when the console is built, at import. `_width` is what `Console(width=...)` sets.
    """
    for console in CONSOLES:
        monkeypatch.setattr(console, "_width", columns)


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_width(monkeypatch, 100)


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(APP, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_images(tmp_path)
    (tmp_path / "update.yaml").write_text(yaml.safe_dump(sample_description()))
    return tmp_path


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_create_verify_inspect_round_trip(workdir: Path, alg: str) -> None:
    code, out, _ = run("keygen", "--alg", alg, "--out", workdir / "vendor.pem")
    assert code == 0, out
    assert stat.S_IMODE((workdir / "vendor.pem").stat().st_mode) == 0o600
    pub = keys.load_public_key(workdir / "vendor.pub.pem")
    assert keys.key_id(pub).hex() in out

    envelope = workdir / "update.suit"
    code, out, err = run(
        "suit",
        "create",
        workdir / "update.yaml",
        "--key",
        workdir / "vendor.pem",
        "--out",
        envelope,
    )
    assert code == 0, err
    assert "signed" in out

    code, out, _ = run("suit", "verify", envelope, "--json", "--key", workdir / "vendor.pub.pem")
    assert code == 0
    verdict = json.loads(out)
    assert (verdict["verified"], verdict["sequence_number"]) == (True, 7)
    assert verdict["signer_key_ids"] == [keys.key_id(pub).hex()]

    code, out, _ = run("suit", "inspect", envelope, "--json", "--key", workdir / "vendor.pub.pem")
    assert code == 0
    summary = json.loads(out)
    assert summary["sequence_number"] == 7
    assert summary["verified"] is True
    assert summary["signer_key_id"] == keys.key_id(pub).hex()
    app_component = summary["components"][0]
    assert app_component["image_size"] == (workdir / "app.bin").stat().st_size
    assert app_component["uri"] == "https://updates.example/pump/app-7.bin"
    assert len(app_component["image_digest"]["hex"]) == 64
    assert summary["severed"] == []

    code, out, _ = run("suit", "inspect", envelope)
    assert code == 0
    assert "sequence number" in out
    assert "https://updates.example/pump/app-7.bin" in out
    assert "['app', h'00']" in out
    assert "Infusion pump firmware 2.4.1" in out


@pytest.mark.parametrize("columns", [20, 80])
def test_human_lines_stay_whole_at_any_width(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    """keygen, create and verify print one line each, however narrow the terminal and however
    long the path: people and scripts grep for "valid, sequence number 7"."""
    pin_width(monkeypatch, columns)
    workdir = tmp_path / ("a-folder-name-long-enough-to-push-the-verdict-past-the-margin" * 2)
    workdir.mkdir()
    write_images(workdir)
    (workdir / "update.yaml").write_text(yaml.safe_dump(sample_description()))
    key = workdir / "vendor.pem"
    code, out, _ = run("keygen", "--alg", "ES256", "--out", key)
    assert code == 0
    kid = keys.key_id(keys.load_public_key(workdir / "vendor.pub.pem")).hex()
    assert f"key id       {kid}" in out.splitlines()
    envelope = workdir / "update.suit"
    code, out, _ = run("suit", "create", workdir / "update.yaml", "--key", key, "--out", envelope)
    assert code == 0
    size = envelope.stat().st_size
    assert out.splitlines() == [f"wrote {envelope} ({size} bytes, signed)"]
    code, out, _ = run("suit", "verify", envelope, "--key", workdir / "vendor.pub.pem")
    assert code == 0
    assert out.splitlines() == [f"{envelope}: valid, sequence number 7, signed by key id {kid}"]
    assert run("keygen", "--alg", "EdDSA", "--out", workdir / "other.pem")[0] == 0
    code, _, err = run("suit", "verify", envelope, "--key", workdir / "other.pub.pem")
    assert code == 1
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {envelope}: invalid: ")


def test_verify_exit_codes(workdir: Path, suit_vectors: Path) -> None:
    pub = suit_vectors / "draft-examples-pubkey.pem"
    assert run("suit", "verify", suit_vectors / "draft-example2.cbor", "--key", pub)[0] == 0
    code, _, err = run("suit", "verify", suit_vectors / "draft-example0-unsigned.cbor", "-k", pub)
    assert code == 1
    assert "no authentication block" in err
    tampered = workdir / "tampered.cbor"
    data = bytearray((suit_vectors / "draft-example0.cbor").read_bytes())
    data[-1] ^= 1
    tampered.write_bytes(bytes(data))
    code, _, err = run("suit", "verify", tampered, "--key", pub)
    assert code == 1
    assert "invalid: authentication-wrapper digest: does not match the manifest" in err
    garbage = workdir / "garbage.cbor"
    garbage.write_bytes(b"\xff\x00")
    code, _, err = run("suit", "verify", garbage, "--key", pub)
    assert code == 1
    assert "invalid" in err
    # usage errors: 2
    assert run("suit", "verify", suit_vectors / "draft-example0.cbor")[0] == 2
    code, _, err = run("suit", "verify", workdir / "missing.cbor", "--key", pub)
    assert (code, "no such file" in err.lower()) == (2, True)
    code, _, err = run("suit", "verify", suit_vectors / "draft-example0.cbor", "-k", workdir / "x")
    assert (code, "no such key file" in err) == (2, True)


def test_unsigned_sign_append_and_sever(workdir: Path) -> None:
    run("keygen", "--alg", "ES256", "--out", workdir / "a.pem")
    run("keygen", "--alg", "EdDSA", "--out", workdir / "b.pem")
    unsigned = workdir / "unsigned.suit"
    code, out, _ = run("suit", "create", workdir / "update.yaml", "--unsigned", "--out", unsigned)
    assert code == 0
    assert "unsigned" in out
    assert run("suit", "verify", unsigned, "--key", workdir / "a.pub.pem")[0] == 1

    signed = workdir / "signed.suit"
    assert run("suit", "sign", unsigned, "--key", workdir / "a.pem", "--out", signed)[0] == 0
    both = workdir / "both.suit"
    code, _, _ = run(
        "suit", "sign", signed, "--key", workdir / "b.pem", "--out", both, "--append", "--kid"
    )
    assert code == 0
    for pub in ("a.pub.pem", "b.pub.pem"):
        assert run("suit", "verify", both, "--key", workdir / pub)[0] == 0

    severed = workdir / "severed.suit"
    code, _, _ = run("suit", "sever", both, "--member", "text", "-m", "install", "--out", severed)
    assert code == 0
    code, out, _ = run("suit", "inspect", severed, "--json")
    summary = json.loads(out)
    assert summary["severed"] == ["install", "text"]
    assert summary["verified"] is False
    assert [a["alg"] for a in summary["authentication"]] == ["ES256", "EdDSA"]
    assert run("suit", "verify", severed, "--key", workdir / "b.pub.pem")[0] == 0
    code, _, err = run("suit", "sever", both, "--member", "manifest", "--out", severed)
    assert code == 1
    assert "cannot sever 'manifest'" in err


def test_create_usage_errors(workdir: Path) -> None:
    code, _, err = run("suit", "create", workdir / "update.yaml", "--out", workdir / "o")
    assert (code, "either --key KEY or --unsigned" in err) == (2, True)
    bad = workdir / "bad.toml"
    bad.write_text("sequence-number = 'seven'\n")
    code, _, err = run("suit", "create", bad, "--unsigned", "--out", workdir / "o")
    assert code == 1
    assert "sequence-number: expected an integer" in err
    assert not (workdir / "o").exists()


def test_keygen_refusals(tmp_path: Path) -> None:
    assert run("keygen", "--out", tmp_path / "k.pem")[0] == 0
    before = (tmp_path / "k.pem").read_bytes()
    code, _, err = run("keygen", "--out", tmp_path / "k.pem")
    assert (code, "already exists" in err) == (1, True)
    assert (tmp_path / "k.pem").read_bytes() == before
    assert run("keygen", "--out", tmp_path / "k.pem", "--force")[0] == 0
    assert (tmp_path / "k.pem").read_bytes() != before
    code, _, err = run("keygen", "--alg", "RS256", "--out", tmp_path / "r.pem")
    assert (code, "choose one of ES256, EdDSA" in err) == (2, True)
