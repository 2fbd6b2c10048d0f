"""Description files: TOML, YAML and JSON; every mistake gets a message naming the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from suit_samples import CLASS_ID, VENDOR_ID, sample_description
from suture import keys
from suture.suit import (
    SuitDescriptionError,
    create_unsigned_envelope,
    decode_envelope,
    load_description,
    parse_description,
)

TOML = f"""
sequence-number = 7
reference-uri = "https://updates.example/pump/7"
vendor-id = "{VENDOR_ID}"
class-id = "{CLASS_ID}"
severable = ["install", "text"]

[text]
manifest-description = "Infusion pump firmware 2.4.1"

[[components]]
id = ["app", "hex:00"]
file = "app.bin"
uri = "https://updates.example/pump/app-7.bin"
invoke = true
text = {{ component-version = "2.4.1", vendor-name = "Example Medical" }}

[[components]]
id = ["cfg"]
file = "cfg.bin"
integrated = true
slot = 1
"""


def test_toml_yaml_and_json_give_the_same_envelope(
    tmp_path: Path, description: dict[str, Any]
) -> None:
    (tmp_path / "d.toml").write_text(TOML)
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(description))
    (tmp_path / "d.json").write_text(json.dumps(description))
    loaded = [load_description(tmp_path / f"d.{ext}") for ext in ("toml", "yaml", "json")]
    assert loaded[0] == loaded[1] == loaded[2] == description
    envelopes = {create_unsigned_envelope(d, base_dir=tmp_path) for d in loaded}
    assert len(envelopes) == 1


def test_digest_and_size_instead_of_a_file(tmp_path: Path) -> None:
    description = {
        "sequence-number": 1,
        "vendor-id": VENDOR_ID,
        "class-id": CLASS_ID,
        "components": [{"id": ["hex:00"], "digest": "ab" * 32, "size": 34768}],
    }
    env = decode_envelope(create_unsigned_envelope(description, base_dir=tmp_path))
    (info,) = env.manifest.component_info
    assert info.image_digest is not None
    assert info.image_digest.value == bytes.fromhex("ab" * 32)
    assert info.image_size == 34768
    assert env.manifest.install is None


def _broken(**changes: Any) -> dict[str, Any]:
    description = sample_description()
    for key, value in changes.items():
        if value is None:
            description.pop(key)
        else:
            description[key] = value
    return description


def _component(**changes: Any) -> dict[str, Any]:
    component: dict[str, Any] = {"id": ["app"], "file": "app.bin"}
    component.update(changes)
    return component


@pytest.mark.parametrize(
    ("description", "match"),
    [
        (_broken(**{"sequence-number": None}), "sequence-number is required"),
        (_broken(**{"sequence-number": -1}), "sequence-number: expected an integer"),
        (_broken(**{"sequence-number": "7"}), "sequence-number: expected an integer"),
        (_broken(color="blue"), "description: unknown key.*color"),
        (_broken(**{"vendor-id": "not-a-uuid"}), r"components\[0\]\.vendor-id: 'not-a-uuid'"),
        (_broken(**{"class-id": None}), r"components\[0\]: class-id is required"),
        (_broken(components=[]), "components: expected a non-empty list"),
        (_broken(severable=["manifest"]), r"severable\[0\]: 'manifest' is not a member"),
        (_broken(text={"colour": "x"}), "text: unknown key"),
        (_broken(components=[_component(id=[])]), r"components\[0\]\.id: expected a non-empty"),
        (_broken(components=[_component(id=["hex:0g"])]), r"id\[0\]: 'hex:0g' is not"),
        (_broken(components=[_component(file="missing.bin")]), "image file .* not found"),
        (_broken(components=[_component(file=None)]), r"components\[0\]\.file: expected"),
        (
            _broken(components=[{"id": ["a"], "digest": "ab", "size": 1}]),
            "expected 64 hex digits",
        ),
        (_broken(components=[{"id": ["a"]}]), "file .or digest and size. is required"),
        (_broken(components=[_component(), _component()]), "two components have the same id"),
        (_broken(components=[_component(slot=True)]), r"slot: expected an integer"),
        (_broken(components=[_component(invoke="yes")]), r"invoke: expected true or false"),
        (
            _broken(components=[_component(integrated=True, uri="https://x")]),
            "must start with '#'",
        ),
        (_broken(components=[_component(wrong=1)]), r"components\[0\]: unknown key.*wrong"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, description: dict[str, Any], match: str) -> None:
    (tmp_path / "app.bin").write_bytes(b"x")
    with pytest.raises(SuitDescriptionError, match=match):
        parse_description(description, base_dir=tmp_path)


def test_severable_needs_something_to_sever(tmp_path: Path) -> None:
    (tmp_path / "app.bin").write_bytes(b"x")
    base = {"sequence-number": 1, "vendor-id": VENDOR_ID, "class-id": CLASS_ID}
    with pytest.raises(SuitDescriptionError, match="install is listed but no component"):
        parse_description(
            {**base, "severable": ["install"], "components": [_component()]}, base_dir=tmp_path
        )
    with pytest.raises(SuitDescriptionError, match="text is listed but the description has no"):
        parse_description(
            {**base, "severable": ["text"], "components": [_component()]}, base_dir=tmp_path
        )


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("d.toml", "sequence-number = ", "not valid TOML"),
        ("d.yaml", "a: [", "not valid YAML"),
        ("d.json", "{", "not valid JSON"),
        ("d.json", "[1, 2]", "top level must be a table"),
        ("d.txt", "x", "unknown description format '.txt'"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str, match: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(SuitDescriptionError, match=match):
        load_description(tmp_path / name)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SuitDescriptionError, match="no such description file"):
        load_description(tmp_path / "nope.toml")


def test_key_type_does_not_matter_for_the_manifest(
    tmp_path: Path, description: dict[str, Any]
) -> None:
    from suture.suit import create_envelope

    es = create_envelope(description, keys.generate_private_key("ES256"), base_dir=tmp_path)
    ed = create_envelope(description, keys.generate_private_key("EdDSA"), base_dir=tmp_path)
    assert decode_envelope(es).manifest_bstr == decode_envelope(ed).manifest_bstr


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"
    (tmp_path / "d.yaml").write_text(bomb)
    with pytest.raises(SuitDescriptionError, match=r"YAML aliases \(\*name\) are not accepted"):
        load_description(tmp_path / "d.yaml")
