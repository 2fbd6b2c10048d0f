"""The journal record format as described by ``journal.toml`` (the one description of it)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from suture.errors import SutureError

DESCRIPTION = "journal.toml"
_STRUCT_CODES = {"u8": "B", "u32": "I"}


class FormatDescriptionError(SutureError, ValueError):
    """The description itself is inconsistent (overlapping fields, a flag of two bits ...)."""


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    size: int
    type: str  # "u8", "u32" or "bytes"


@dataclass(frozen=True)
class JournalFormat:
    """Every constant of the journal record format."""

    record_size: int
    magic: int
    byte_order: str
    sectors: int
    empty_byte: int
    fields: tuple[Field, ...]
    crc_algorithm: str
    crc_field: str
    crc_span: int
    components: dict[str, int]
    component_labels: dict[str, str]
    states: dict[str, int]
    closing_states: tuple[str, ...]
    flags: dict[str, int]

    @property
    def flag_mask(self) -> int:
        mask = 0
        for bit in self.flags.values():
            mask |= bit
        return mask

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def struct_format(self) -> str:
        """The :mod:`struct` format of the bytes the CRC covers (every field before it)."""
        codes = ["<" if self.byte_order == "little" else ">"]
        for f in self.fields:
            if f.offset >= self.crc_span:
                break
            codes.append(f"{f.size}s" if f.type == "bytes" else _STRUCT_CODES[f.type])
        return "".join(codes)


def _int_map(raw: Any, what: str) -> dict[str, int]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in raw.items()
    ):
        raise FormatDescriptionError(f"{what}: a table of NAME = integer")
    return dict(raw)


def parse(text: str) -> JournalFormat:
    """The format described by the TOML ``text``, checked for consistency."""
    d = tomllib.loads(text)
    rec, crc, comps = d["record"], d["crc"], d["components"]
    fields = tuple(Field(str(f["name"]), int(f["offset"]), int(f["size"]), str(f["type"]))
                   for f in rec["fields"])
    fmt = JournalFormat(
        record_size=int(rec["size"]),
        magic=int(rec["magic"]),
        byte_order=str(rec["byte_order"]),
        sectors=int(rec["sectors"]),
        empty_byte=int(rec["empty_byte"]),
        fields=fields,
        crc_algorithm=str(crc["algorithm"]),
        crc_field=str(crc["field"]),
        crc_span=int(crc["span"]),
        components=_int_map({k: v["value"] for k, v in comps.items()}, "components"),
        component_labels={k: str(v["label"]) for k, v in comps.items()},
        states=_int_map(d["states"], "states"),
        closing_states=tuple(str(s) for s in d["update"]["closing_states"]),
        flags=_int_map(d["flags"], "flags"),
    )
    _validate(fmt)
    return fmt


def _validate(fmt: JournalFormat) -> None:
    problems: list[str] = []
    at = 0
    for f in fmt.fields:
        if f.offset != at:
            problems.append(f"field {f.name} at {f.offset}, expected {at} (fields are packed)")
        if f.type in _STRUCT_CODES and f.size != {"u8": 1, "u32": 4}[f.type]:
            problems.append(f"field {f.name}: a {f.type} of {f.size} bytes")
        elif f.type not in _STRUCT_CODES and f.type != "bytes":
            problems.append(f"field {f.name}: unknown type {f.type}")
        at = f.offset + f.size
    if at != fmt.record_size:
        problems.append(f"fields end at {at}, the record is {fmt.record_size} bytes")
    names = [f.name for f in fmt.fields]
    if len(set(names)) != len(names):
        problems.append("two fields share a name")
    crc = next((f for f in fmt.fields if f.name == fmt.crc_field), None)
    if crc is None or crc.type != "u32" or crc.offset != fmt.crc_span:
        problems.append(f"the CRC field {fmt.crc_field} must be a u32 right after its span")
    if fmt.byte_order != "little":
        problems.append("every suture target is little-endian")
    for what, table in (("component", fmt.components), ("state", fmt.states)):
        if len(set(table.values())) != len(table):
            problems.append(f"two {what}s share a value")
        if any(not 0 <= v <= 0xFF for v in table.values()):
            problems.append(f"a {what} value does not fit its u8 field")
    seen = 0
    for name, bit in fmt.flags.items():
        if bit <= 0 or bit & (bit - 1) or bit > 0x80 or bit & seen:
            problems.append(f"flag {name} = {bit:#x} is not a bit of its own in a u8")
        seen |= bit
    for s in fmt.closing_states:
        if s not in fmt.states:
            problems.append(f"closing state {s} is not a state")
    if problems:
        raise FormatDescriptionError("; ".join(problems))


def description_text() -> str:
    """The text of the packaged ``journal.toml``."""
    return resources.files("suture.formats").joinpath(DESCRIPTION).read_text(encoding="utf-8")


def load() -> JournalFormat:
    """The journal format (``suture/formats/journal.toml``)."""
    return parse(description_text())
