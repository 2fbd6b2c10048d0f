"""The identity records (host/suture/formats/identity.py) against the device code that reads them
and against docs/formats/nvm.md, both ways; and the enrolment the host writes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from suture.formats import identity

REPO = Path(__file__).resolve().parents[2]
PREFIXES = {key.split(".")[0] for key in (r.key for r in identity.RECORDS)}
KEY = re.compile(r"^([a-z]+)\.[a-z]+$")


def _identity_keys_in(folder: Path) -> set[str]:
    """String constants in ``folder``'s Python that name an identity record: arguments of
    ``get``/``_get``/``put`` calls and module-level constants."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in {"get", "_get", "put"} and node.args:
                values.append(node.args[0])
            if isinstance(node, ast.Assign) and node in tree.body:
                values.append(node.value)
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    match = KEY.match(value.value)
                    if match and match.group(1) in PREFIXES:
                        found.add(value.value)
    return found


def _doc_rows(text: str) -> dict[str, tuple[str, str, str]]:
    section = text[text.index("## Identity records"):]
    rows: dict[str, tuple[str, str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            reader = "" if cells[3] == "—" else cells[3]
            rows[cells[0].strip("`")] = (cells[1], cells[2], reader)
    return rows


def _defined() -> dict[str, tuple[str, str, str]]:
    return {r.key: (r.meaning, r.encoding, r.reader) for r in identity.RECORDS}


def test_the_agent_reads_exactly_the_records_defined_for_it() -> None:
    read = _identity_keys_in(REPO / "device" / "agent")
    for_agent = {r.key for r in identity.RECORDS if r.reader == "agent"}
    assert read == for_agent


def test_the_loader_reads_exactly_the_records_defined_for_it() -> None:
    read = _identity_keys_in(REPO / "loader" / "loader")
    for_loader = {r.key for r in identity.RECORDS if r.reader == "loader"}
    assert read == for_loader


def test_the_doc_table_is_the_definition() -> None:
    assert _doc_rows((REPO / "docs" / "formats" / "nvm.md").read_text()) == _defined()


def test_a_drifted_doc_or_device_fails(tmp_path: Path) -> None:
    """The checks above can fail: a doc row renamed, a device key that nothing defines."""
    doc = (REPO / "docs" / "formats" / "nvm.md").read_text()
    assert _doc_rows(doc.replace("`id.credential`", "`id.secret`")) != _defined()
    assert _doc_rows(doc.replace("| 32 bytes | agent |", "| 16 bytes | agent |")) != _defined()
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "store.py").write_text('def f(s):\n    return s._get("id.serial")\n')
    assert _identity_keys_in(agent) == {"id.serial"}


def test_enrolment_records() -> None:
    point = b"\x04" + bytes(64)
    records = identity.enrolment(device_id="bed-7", credential=bytes(32),
                                 scheduler_url="http://s:8640", scheduler_keys=[point, point],
                                 link="qemu")
    assert records == {"id.device": b"bed-7", "id.credential": bytes(32),
                       "id.scheduler": b"http://s:8640", "trust.scheduler": point + point,
                       "net.link": b"qemu"}
    assert "net.link" not in identity.enrolment(device_id="d", credential=b"c",
                                                scheduler_url="u", scheduler_keys=[point])
    with pytest.raises(identity.EnrolmentError):
        identity.enrolment(device_id="d", credential=b"c", scheduler_url="u",
                           scheduler_keys=[b"\x02" + bytes(32)])
    with pytest.raises(identity.EnrolmentError):
        identity.enrolment(device_id="d", credential=b"c", scheduler_url="u", scheduler_keys=[])
