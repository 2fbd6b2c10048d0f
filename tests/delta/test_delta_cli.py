"""`suture delta build`: the patch between two loader images (a MicroPython upgrade under the
same loader) and the component fields of the release's SUIT description; the patch applies to
the source and gives the target, and the printed fields are the TOML the description takes."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

from suture.cli.main import app
from suture.delta import apply
from suture.image import sign_image
from suture.keys import generate_private_key
from typer.testing import CliRunner


def _images() -> tuple[bytes, bytes]:
    key = generate_private_key("ES256")
    rng = random.Random(5)
    old = rng.randbytes(40000)
    new = old[:20000] + rng.randbytes(300) + old[20000:]
    return tuple(  # type: ignore[return-value]
        sign_image(body, private_key=key, version=(1, minor, 0), security_counter=1,
                   load_address=0x21020200) for minor, body in ((27, old), (28, new)))


def test_delta_build_writes_the_patch_and_the_description_fields(tmp_path: Path) -> None:
    old, new = _images()
    (tmp_path / "old.img").write_bytes(old)
    (tmp_path / "new.img").write_bytes(new)
    runner = CliRunner()
    patch = tmp_path / "loader.delta"
    r = runner.invoke(app, ["delta", "build", str(tmp_path / "old.img"),
                            str(tmp_path / "new.img"), "--out", str(patch), "--json",
                            "--segment-size", "8192"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert apply(old, patch.read_bytes()) == new
    assert got["patch_bytes"] == patch.stat().st_size < len(new) // 10
    text = runner.invoke(app, ["delta", "build", str(tmp_path / "old.img"),
                               str(tmp_path / "new.img"), "--out", str(patch),
                               "--segment-size", "8192"])
    assert text.exit_code == 0, text.output
    fields = tomllib.loads(text.output.split("\n", 1)[1])
    assert fields == got["component"]


def test_delta_build_refuses_a_bad_segment_size(tmp_path: Path) -> None:
    old, new = _images()
    (tmp_path / "old.img").write_bytes(old)
    (tmp_path / "new.img").write_bytes(new)
    r = CliRunner().invoke(app, ["delta", "build", str(tmp_path / "old.img"),
                                 str(tmp_path / "new.img"), "--out", str(tmp_path / "p"),
                                 "--segment-size", "1000"])
    assert r.exit_code != 0
    assert "segment" in r.output
    assert not (tmp_path / "p").exists()
