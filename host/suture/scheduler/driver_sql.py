"""Core statements run on the driver's cursor: compiled once per dialect, then executed with
none of SQLAlchemy's per-call work (cache lookup, execution context, events, result objects).

For the statements a device request runs every time (a report's six, a poll's one), where that
work cost more than the database did. The statement still runs on the caller's connection, in
its transaction. What SQLAlchemy would have done per call is done here explicitly and only as
far as these statements need it: JSON parameters named at construction are encoded as the
engine encodes them (``json.dumps`` with its defaults), and the rows come back as the driver's
tuples (SQLite gives booleans as 0 and 1 and JSON as its text: ``json_value`` decodes one).
The engine's ``before_cursor_execute`` listeners, if any, still see each statement (tracing,
statement counts in tests); no other event is fired.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: The parameters' names in placeholder order (positional drivers), else None.
    order: tuple[str, ...] | None
    #: Values the statement itself holds (literals bound by SQLAlchemy).
    defaults: Mapping[str, Any]


class DriverStatement:
    """``statement`` (a Core statement with ``bindparam`` placeholders) ready to run on the
    driver's cursor of any connection; ``json_params`` name the parameters given as Python
    values of JSON columns."""

    def __init__(self, statement: Executable, *, json_params: Iterable[str] = ()) -> None:
        if not isinstance(statement, ClauseElement):
            raise TypeError("a Core statement is needed")
        self.statement = statement
        self.json_params = frozenset(json_params)
        self._by_dialect: dict[tuple[str, str], _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        found = self._by_dialect.get(key)
        if found is None:
            compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            if any(bind.expanding for bind in compiled.binds.values()):
                raise TypeError("a statement with expanding (IN list) parameters")
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            defaults = {name: bind.effective_value for name, bind in compiled.binds.items()
                        if not bind.required}
            found = self._by_dialect[key] = _Compiled(str(compiled), order, defaults)
        return found

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> Sequence[tuple[Any, ...]]:
        """Inside the caller's transaction on ``conn``: the statement run with ``params``;
        the rows it returns (none for a statement without ``RETURNING``)."""
        compiled = self._compiled(conn.dialect)
        return _run(conn, compiled.sql, self._args(compiled, params), many=False)

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Inside the caller's transaction on ``conn``: the statement run once per parameter
        set of ``rows``, by one ``executemany`` (for a statement without ``RETURNING``)."""
        if not rows:
            return
        compiled = self._compiled(conn.dialect)
        _run(conn, compiled.sql, [self._args(compiled, params) for params in rows], many=True)

    def _args(self, compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        """``params`` as the driver takes them: JSON encoded, in placeholder order."""
        values = {**compiled.defaults, **params}
        for name in self.json_params:
            values[name] = json.dumps(values[name])
        return (tuple(values[name] for name in compiled.order)
                if compiled.order is not None else values)

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row the statement returns, or None."""
        found = self.rows(conn, params)
        return found[0] if found else None


def _run(conn: Connection, sql: str, args: Any, *, many: bool) -> Sequence[tuple[Any, ...]]:
    """``sql`` run with ``args`` on a driver cursor of ``conn`` (``executemany`` when
    ``many``), the engine's ``before_cursor_execute`` listeners told first; the rows it
    returns (none without ``RETURNING``)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        for listener in conn.dispatch.before_cursor_execute:
            listener(conn, cursor, sql, args, None, many)
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
        return cursor.fetchall() if cursor.description is not None else ()
    finally:
        cursor.close()


def json_value(value: Any) -> Any:
    """A JSON column's value (an object or an array) as the driver gave it, decoded: SQLite
    gives the text, psycopg the decoded value."""
    return json.loads(value) if isinstance(value, str) else value
