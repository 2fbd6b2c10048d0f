"""Rollout target filters: a small expression language over device fields, parsed by hand
(never ``eval``) into a predicate.

Grammar (keywords are lower case)::

    expr    := and_expr ("or" and_expr)*
    and_expr:= not_expr ("and" not_expr)*
    not_expr:= "not" not_expr | atom
    atom    := "(" expr ")" | field OP value | field "in" list | field "has" value
    field   := NAME ("." NAME)?       board, ward, location, criticality, vendor_id, class_id,
                                      state, busy, tags, groups, last_seen, installed.<component>
    OP      := "==" | "!=" | "<" | "<=" | ">" | ">="
    value   := STRING | INT | "true" | "false"
    list    := "[" value ("," value)* "]"

Examples: ``ward == "ICU" and criticality <= 3``, ``tags has "pilot" or groups has "3B"``,
``installed.app < 5 and not busy == true``, ``board in ["feather", "pico"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from suture.scheduler.errors import FilterSyntaxError

MAX_LENGTH = 1000
MAX_DEPTH = 32

SCALAR_FIELDS = {
    "id": str, "board": str, "ward": str, "location": str, "criticality": int,
    "vendor_id": str, "class_id": str, "state": str, "busy": bool, "last_seen": int,
}
SET_FIELDS = {"tags", "groups"}
CRITICALITY_NAMES = {"low": 1, "medium": 2, "high": 3, "critical": 4}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<int>-?\d{1,18})(?![\w.])
      | (?P<op>==|!=|<=|>=|<|>)
      | (?P<punct>[()\[\],])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)?)
    )""",
    re.VERBOSE,
)

Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise FilterSyntaxError(f"unexpected character {text[start]!r} at {start}")
        kind = m.lastgroup or ""
        tokens.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


def _unquote(s: str) -> str:
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FilterSyntaxError("unexpected end of expression")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise FilterSyntaxError(f"expected {text!r} at {tok.pos}, found {tok.text!r}")

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "name" and tok.text == word

    def parse(self) -> Predicate:
        if not self.toks:
            raise FilterSyntaxError("empty expression")
        pred = self.expr()
        tok = self.peek()
        if tok is not None:
            raise FilterSyntaxError(f"unexpected {tok.text!r} at {tok.pos}")
        return pred

    def expr(self) -> Predicate:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterSyntaxError(f"expression nested deeper than {MAX_DEPTH}")
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            parts.append(self.and_expr())
        self.depth -= 1
        if len(parts) == 1:
            return parts[0]
        return lambda d: any(p(d) for p in parts)

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.is_word("and"):
            self.take()
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda d: all(p(d) for p in parts)

    def not_expr(self) -> Predicate:
        if self.is_word("not"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterSyntaxError(f"expression nested deeper than {MAX_DEPTH}")
            inner = self.not_expr()
            self.depth -= 1
            return lambda d: not inner(d)
        return self.atom()

    def value(self) -> object:
        tok = self.take()
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind == "int":
            return int(tok.text)
        if tok.kind == "name" and tok.text in ("true", "false"):
            return tok.text == "true"
        raise FilterSyntaxError(f"expected a value at {tok.pos}, found {tok.text!r}")

    def atom(self) -> Predicate:
        tok = self.take()
        if tok.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if tok.kind != "name" or tok.text in ("and", "or", "not", "in", "has"):
            raise FilterSyntaxError(f"expected a field name at {tok.pos}, found {tok.text!r}")
        field = tok.text
        getter, ftype = _field(field, tok.pos)
        op = self.take()
        if op.kind == "name" and op.text == "has":
            if field not in SET_FIELDS:
                raise FilterSyntaxError(f"'has' applies to tags or groups, not {field!r}")
            wanted = self.value()
            if not isinstance(wanted, str):
                raise FilterSyntaxError(f"'has' needs a string at {op.pos}")
            return lambda d: wanted in (getter(d) or ())
        if field in SET_FIELDS:
            raise FilterSyntaxError(f"{field!r} is a set: use '{field} has \"name\"'")
        if op.kind == "name" and op.text == "in":
            self.expect("[")
            items = [_coerce(field, ftype, self.value(), op.pos)]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                items.append(_coerce(field, ftype, self.value(), op.pos))
            self.expect("]")
            choices = frozenset(items)
            return lambda d: getter(d) in choices
        if op.kind != "op":
            raise FilterSyntaxError(f"expected an operator at {op.pos}, found {op.text!r}")
        rhs = _coerce(field, ftype, self.value(), op.pos)
        return _compare(getter, op.text, rhs, ftype, op.pos)


def _field(name: str, pos: int) -> tuple[Callable[[Mapping[str, Any]], Any], type]:
    if name.startswith("installed."):
        component = name.split(".", 1)[1]
        return (lambda d: (d.get("installed") or {}).get(component, 0)), int
    if "." in name:
        raise FilterSyntaxError(f"unknown field {name!r} at {pos}")
    if name in SET_FIELDS:
        return (lambda d: d.get(name)), list
    if name not in SCALAR_FIELDS:
        known = ", ".join(sorted([*SCALAR_FIELDS, *SET_FIELDS, "installed.<component>"]))
        raise FilterSyntaxError(f"unknown field {name!r} at {pos} (known: {known})")
    return (lambda d: d.get(name)), SCALAR_FIELDS[name]


def _coerce(field: str, ftype: type, value: object, pos: int) -> Any:
    if field == "criticality" and isinstance(value, str):
        if value not in CRITICALITY_NAMES:
            raise FilterSyntaxError(f"unknown criticality {value!r} at {pos}")
        return CRITICALITY_NAMES[value]
    if ftype is bool:
        if not isinstance(value, bool):
            raise FilterSyntaxError(f"{field!r} compares with true or false (at {pos})")
        return value
    if ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FilterSyntaxError(f"{field!r} compares with an integer (at {pos})")
        return value
    if not isinstance(value, str):
        raise FilterSyntaxError(f"{field!r} compares with a string (at {pos})")
    return value


def _compare(getter: Callable[[Mapping[str, Any]], Any], op: str, rhs: Any, ftype: type,
             pos: int) -> Predicate:
    if op == "==":
        return lambda d: bool(getter(d) == rhs)
    if op == "!=":
        return lambda d: bool(getter(d) != rhs)
    if ftype is bool:
        raise FilterSyntaxError(f"booleans compare only with == or != (at {pos})")

    def ordered(d: Mapping[str, Any]) -> bool:
        lhs = getter(d)
        if lhs is None or type(lhs) is not type(rhs):
            return False
        if op == "<":
            return bool(lhs < rhs)
        if op == "<=":
            return bool(lhs <= rhs)
        if op == ">":
            return bool(lhs > rhs)
        return bool(lhs >= rhs)

    return ordered


def compile_filter(text: str) -> Predicate:
    """Parse ``text``; raise ``FilterSyntaxError`` with the position of the first problem."""
    if not isinstance(text, str):
        raise FilterSyntaxError("a filter is a string")
    if len(text) > MAX_LENGTH:
        raise FilterSyntaxError(f"filter longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()
