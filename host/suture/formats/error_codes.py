"""The device's error codes as described by ``error_codes.toml`` (the one table of them), and
what the host says about a code it reads from a journal record or a device report."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise
from typing import Any

from suture.formats.journal import FormatDescriptionError

DESCRIPTION = "error_codes.toml"
LAYERS = ("stage0", "loader", "agent")  # bottom up
_U32 = 0xFFFFFFFF


class ErrorTableError(FormatDescriptionError):
    """The table itself is inconsistent (overlapping ranges, a code outside its layer's ...)."""


@dataclass(frozen=True)
class ErrorCode:
    layer: str
    name: str
    code: int
    meaning: str

    def __str__(self) -> str:
        return f"{self.layer} {self.name} ({self.code}): {self.meaning}"


@dataclass(frozen=True)
class Layer:
    """One layer's table: its range ``first`` .. ``last`` (both included) and its codes."""

    name: str
    first: int
    last: int
    copy: str  # the hand-written copy, relative to the repository
    codes: dict[str, ErrorCode]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.first <= code <= self.last


@dataclass(frozen=True)
class ErrorCodes:
    """Every layer's table."""

    none: int
    layers: dict[str, Layer]

    def code(self, layer: str, name: str) -> int:
        """The code of ``name`` in ``layer``'s table (KeyError when it has none)."""
        return self.layers[layer].codes[name].code

    def layer_of(self, code: int) -> Layer | None:
        """The layer whose range holds ``code`` (None for 0 and for a code of no range)."""
        for layer in self.layers.values():
            if code in layer:
                return layer
        return None

    def lookup(self, code: int) -> ErrorCode | None:
        """The named code ``code``, or None when no table has it."""
        layer = self.layer_of(code)
        if layer is None:
            return None
        for entry in layer.codes.values():
            if entry.code == code:
                return entry
        return None

    def name(self, code: int) -> str:
        """A short name: ``loader NoSpaceError`` / ``none`` / ``loader code 77`` / ``code 900``."""
        if code == self.none:
            return "none"
        entry = self.lookup(code)
        if entry is not None:
            return f"{entry.layer} {entry.name}"
        layer = self.layer_of(code)
        return f"{layer.name} code {code}" if layer is not None else f"code {code}"

    def explain(self, code: int) -> str:
        """One line for people: the layer, the name and the meaning of ``code``."""
        entry = self.lookup(code)
        if entry is not None:
            return str(entry)
        if code == self.none:
            return "0: no error"
        layer = self.layer_of(code)
        where = f"in {layer.name}'s range, not in its table" if layer else "in no layer's range"
        return f"unknown error code {code} ({where})"


def parse(text: str) -> ErrorCodes:
    """The table described by the TOML ``text``, checked for consistency."""
    d: dict[str, Any] = tomllib.loads(text)
    layers: dict[str, Layer] = {}
    for name in LAYERS:
        raw = d.get(name)
        if not isinstance(raw, dict):
            raise ErrorTableError(f"no [{name}] table")
        codes: dict[str, ErrorCode] = {}
        for cname, entry in dict(raw.get("codes", {})).items():
            if not (isinstance(entry, dict) and type(entry.get("code")) is int
                    and isinstance(entry.get("meaning"), str)):
                raise ErrorTableError(f"{name}.{cname}: needs an integer code and a meaning")
            codes[cname] = ErrorCode(name, cname, entry["code"], entry["meaning"])
        layers[name] = Layer(name, int(raw["first"]), int(raw["last"]), str(raw["copy"]), codes)
    table = ErrorCodes(int(d.get("none", 0)), layers)
    _validate(table)
    return table


def _validate(table: ErrorCodes) -> None:
    problems: list[str] = []
    spans = sorted((layer.first, layer.last, layer.name) for layer in table.layers.values())
    for first, last, name in spans:
        if not 0 < first <= last <= _U32:
            problems.append(f"{name}: range {first}..{last} is not a range of u32 codes above 0")
    for (_, last, a), (first, _, b) in pairwise(spans):
        if first <= last:
            problems.append(f"the ranges of {a} and {b} overlap")
    if table.none != 0:
        problems.append("none must be 0")
    seen: dict[int, str] = {}
    for layer in table.layers.values():
        for entry in layer.codes.values():
            if entry.code not in layer:
                problems.append(f"{layer.name} {entry.name} = {entry.code} is outside "
                                f"{layer.name}'s range {layer.first}..{layer.last}")
            if entry.code in seen:
                problems.append(f"{layer.name} {entry.name} = {entry.code} is also "
                                f"{seen[entry.code]}")
            seen[entry.code] = f"{layer.name} {entry.name}"
    if problems:
        raise ErrorTableError("; ".join(problems))


def description_text() -> str:
    """The text of the packaged ``error_codes.toml``."""
    return resources.files("suture.formats").joinpath(DESCRIPTION).read_text(encoding="utf-8")


@cache
def load() -> ErrorCodes:
    """The error codes (``suture/formats/error_codes.toml``)."""
    return parse(description_text())


def explain(code: int) -> str:
    """One line for people about a device error code (see :meth:`ErrorCodes.explain`)."""
    return load().explain(code)
