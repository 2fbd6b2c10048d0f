"""`suture suit verify` with MAC keys and dependencies, `suture suit decrypt`, and
`suture release sbom show|diff`, end to end on the drafts' examples."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from ext_samples import PLAINTEXT, published_keys, sbom_document
from suit_samples import sample_description, write_images
from suture import keys
from suture.cli import release_cmd, suit_cmd
from suture.suit import create_envelope
from typer.testing import CliRunner

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    suit_cmd.register(app)
    release_cmd.register(app)
    return app


APP = _app()


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(APP, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_verify_with_a_mac_key(ext_vectors: Path, tmp_path: Path) -> None:
    (tmp_path / "hmac.key").write_bytes(b"a" * 32)
    (tmp_path / "wrong.key").write_bytes(b"b" * 32)
    env = ext_vectors / "enc-manifest-aes-kw.cbor"
    code, out, _ = run("suit", "verify", env, "--mac-key", tmp_path / "hmac.key")
    assert (code, "valid" in out) == (0, True)
    code, out, err = run("suit", "verify", env, "--mac-key", tmp_path / "wrong.key", "--json")
    assert code == 1
    answer = json.loads(out)
    assert answer["valid"] is False
    assert "tag does not verify" in answer["error"]
    assert "tag does not verify" in err
    assert run("suit", "verify", env)[0] == 2


def test_verify_dependencies(ext_vectors: Path, suit_vectors: Path) -> None:
    example = suit_vectors / "draft-examples-pubkey.pem"
    distributor = ext_vectors / "enc-dependent-signer-pubkey.pem"
    dep = ext_vectors / "enc-manifest-es-ecdh-dependency.cbor"
    code, out, _ = run("suit", "verify", dep, "--key", distributor, "--dependency-key", example,
                       "--json")
    assert code == 0
    assert json.loads(out)["dependencies"][0]["source"] == "integrated"
    code, _, err = run("suit", "verify", dep, "--key", distributor)
    assert (code, "dependency 1 (#dependency-manifest)" in err) == (1, True)
    process = ext_vectors / "td-example1-process.cbor"
    assert run("suit", "verify", process, "--key", example)[0] == 1
    supplied = f"http://example.com/dependent.suit={ext_vectors / 'td-example0-dependent.cbor'}"
    assert run("suit", "verify", process, "--key", example, "--dependency", supplied)[0] == 0
    assert run("suit", "verify", process, "--key", example, "--dependency", "nouri")[0] == 2


def test_decrypt(ext_vectors: Path, suit_vectors: Path, tmp_path: Path) -> None:
    ecdh = published_keys(ext_vectors)["ecdh"].private_key
    (tmp_path / "device.pem").write_bytes(keys.private_key_pem(ecdh))
    (tmp_path / "kek").write_bytes(b"a" * 16)
    (tmp_path / "hmac.key").write_bytes(b"a" * 32)
    code, out, _ = run("suit", "decrypt", ext_vectors / "enc-manifest-es-ecdh-content.cbor",
                       "--key", suit_vectors / "draft-examples-pubkey.pem",
                       "--ecdh-key", f"{tmp_path / 'device.pem'}#kid-2",
                       "--out", tmp_path / "plain.bin", "--json")
    assert code == 0, out
    assert (tmp_path / "plain.bin").read_bytes() == PLAINTEXT
    code, _, _ = run("suit", "decrypt", ext_vectors / "enc-manifest-aes-kw.cbor",
                     "--mac-key", tmp_path / "hmac.key", "--kek", tmp_path / "kek",
                     "--ciphertext", ext_vectors / "enc-encrypted-payload-aes-kw-aes-gcm.bin",
                     "--out", tmp_path / "plain2.bin")
    assert code == 0
    assert (tmp_path / "plain2.bin").read_bytes() == PLAINTEXT
    (tmp_path / "kek").write_bytes(b"c" * 16)
    code, _, err = run("suit", "decrypt", ext_vectors / "enc-manifest-aes-kw-content.cbor",
                       "--mac-key", tmp_path / "hmac.key", "--kek", tmp_path / "kek",
                       "--out", tmp_path / "plain3.bin")
    assert (code, "opens a recipient" in err) == (1, True)


def test_release_sbom_show_and_diff(tmp_path: Path) -> None:
    write_images(tmp_path)
    (tmp_path / "old.json").write_bytes(sbom_document())
    (tmp_path / "new.json").write_bytes(sbom_document([
        {"type": "library", "name": "littlefs", "version": "2.10",
         "licenses": [{"expression": "BSD-3-Clause"}]}]))
    vendor = keys.generate_private_key("ES256")
    (tmp_path / "rel.suit").write_bytes(
        create_envelope({**sample_description(), "sbom": "new.json"}, vendor, base_dir=tmp_path))
    code, out, _ = run("release", "sbom", "show", tmp_path / "new.json", "--envelope",
                       tmp_path / "rel.suit", "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["bound_to"], shown["licenses"]) == (str(tmp_path / "rel.suit"), ["BSD-3-Clause"])
    code, _, err = run("release", "sbom", "show", tmp_path / "old.json", "--envelope",
                       tmp_path / "rel.suit")
    assert (code, "not the one the signed manifest names" in err) == (1, True)
    code, out, _ = run("release", "sbom", "diff", tmp_path / "old.json", tmp_path / "new.json",
                       "--json")
    changes = json.loads(out)
    assert code == 0
    assert [c["name"] for c in changes["removed"]] == ["micropython"]
    assert changes["changed"][0]["new"]["version"] == "2.10"
    assert changes["licenses_removed"] == ["MIT"]
    code, out, _ = run("release", "sbom", "show", tmp_path / "old.json")
    assert (code, "micropython" in out) == (0, True)
    (tmp_path / "bad.json").write_bytes(sbom_document([{"type": "library"}]))
    code, _, err = run("release", "sbom", "show", tmp_path / "bad.json")
    assert (code, "not valid CycloneDX 1.6" in err) == (1, True)
    assert run("release", "sbom", "show", tmp_path / "missing.json")[0] == 2


def _encrypted_description(tmp_path: Path, alg: str) -> Path:
    (tmp_path / "fw.bin").write_bytes(b"pump firmware, confidential\n" * 300)
    (tmp_path / "release.json").write_text(json.dumps({
        "sequence-number": 4,
        "vendor-id": "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
        "class-id": "1492af14-2569-5e48-bf42-9b2d51f2ab45",
        "components": [{"id": ["app"], "file": "fw.bin", "encryption": alg,
                        "uri": "https://vendor.example/fw/app-4.enc"}]}))
    return tmp_path / "release.json"


def test_create_encrypts_for_device_keys_and_keks_and_decrypt_reads_it_back(
        tmp_path: Path) -> None:
    """The commands docs/suit.md shows for encrypted payloads."""
    signer, _ = keys.write_key_pair(keys.generate_private_key("ES256"), tmp_path / "vendor.pem")
    device, device_pub = keys.write_key_pair(keys.generate_private_key("ES256"),
                                             tmp_path / "device.pem")
    other, _ = keys.write_key_pair(keys.generate_private_key("ES256"), tmp_path / "other.pem")
    (tmp_path / "group.kek").write_bytes(bytes(range(32)))
    desc = _encrypted_description(tmp_path, "A128GCM")
    code, out, err = run("suit", "create", desc, "--key", signer, "--out", tmp_path / "e.suit",
                         "--encrypt-for", f"{device_pub}#pump-1", "--kek",
                         f"{tmp_path / 'group.kek'}#ward-3", "--ciphertext-dir", tmp_path,
                         "--json")
    assert code == 0, err
    made = json.loads(out)
    cipher = Path(made["ciphertexts"]["https://vendor.example/fw/app-4.enc"])
    assert cipher == tmp_path / "app-4.enc"
    plaintext = (tmp_path / "fw.bin").read_bytes()
    assert plaintext not in cipher.read_bytes()
    for key_option in (("--ecdh-key", f"{device}#pump-1"),
                       ("--kek", f"{tmp_path / 'group.kek'}#ward-3")):
        (tmp_path / "out.bin").unlink(missing_ok=True)
        code, _, err = run("suit", "decrypt", tmp_path / "e.suit", "--key",
                           tmp_path / "vendor.pub.pem", "--ciphertext", cipher,
                           "--out", tmp_path / "out.bin", *key_option)
        assert code == 0, err
        assert (tmp_path / "out.bin").read_bytes() == plaintext
    code, _, err = run("suit", "decrypt", tmp_path / "e.suit", "--key",
                       tmp_path / "vendor.pub.pem", "--ciphertext", cipher,
                       "--out", tmp_path / "wrong.bin", "--ecdh-key", str(other))
    assert code != 0
    assert not (tmp_path / "wrong.bin").exists()


def test_create_refuses_recipients_without_an_encrypted_component_and_writes_nothing(
        tmp_path: Path) -> None:
    signer, _ = keys.write_key_pair(keys.generate_private_key("ES256"), tmp_path / "vendor.pem")
    (tmp_path / "group.kek").write_bytes(bytes(16))
    write_images(tmp_path)
    (tmp_path / "d.json").write_text(json.dumps(sample_description()))
    code, _, err = run("suit", "create", tmp_path / "d.json", "--key", signer, "--out",
                       tmp_path / "e.suit", "--kek", tmp_path / "group.kek")
    assert code == 2
    assert "no component of the description asks for encryption" in err
    assert not (tmp_path / "e.suit").exists()
    desc = _encrypted_description(tmp_path, "A256CTR")
    code, _, err = run("suit", "create", desc, "--key", signer, "--out", tmp_path / "e.suit")
    assert code != 0
    assert "give the recipients" in err
    assert not (tmp_path / "e.suit").exists()
