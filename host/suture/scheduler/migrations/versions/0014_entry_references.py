"""Rollout entries' references checked per statement: planning writes 100,000 entries at once.

``rollout_devices`` named its device, rollout and step release by three foreign keys. A
foreign key is checked one row at a time: on PostgreSQL each inserted entry ran three lookups
and locked its device row (``FOR KEY SHARE``, a WAL record each), most of the time a plan of
100,000 devices took. This revision replaces the three keys by triggers that keep the same
rules:

- an entry names a device, a rollout and (if any) a release that exist: checked once per
  ``INSERT`` statement over all the rows it added on PostgreSQL (a transition table and three
  anti-joins), per row on SQLite (which has no statement triggers); an ``UPDATE`` that changes
  a reference checks that row on both;
- deleting a device or a rollout deletes its entries (``ON DELETE CASCADE`` before); deleting
  a release an entry names is refused, as is changing the id of a device, rollout or release
  an entry names. On PostgreSQL a delete of devices or rollouts first waits for the
  transactions writing entries (``SHARE ROW EXCLUSIVE`` on ``rollout_devices``), so an entry
  written in one of them is seen and deleted, never left behind; ``TRUNCATE`` of the three
  tables is refused while entries exist.

The model (``RolloutDevice``) declares no foreign key for these columns; the triggers are the
definition, tested on both databases (``tests/scheduler/test_entry_references.py``).

The table's key now puts the device first, so a device's entries (which its every poll and
report looks up) are one range of it, and the index of device and state, which did that and
was written with every entry planned or moved, is dropped: one B-tree less per entry.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The tables an entry names, and the column that names each.
_NAMED = (("devices", "device_id"), ("rollouts", "rollout_id"), ("releases", "step_release_id"))
# SQLite: the row (NEW) names something that does not exist, then refused.
_SQLITE_MISSING = (
    "WHEN NOT EXISTS (SELECT 1 FROM devices WHERE id = NEW.device_id) "
    "OR NOT EXISTS (SELECT 1 FROM rollouts WHERE id = NEW.rollout_id) "
    "OR (NEW.step_release_id IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM releases WHERE id = NEW.step_release_id)) "
    "BEGIN SELECT RAISE(ABORT, "
    "'rollout_devices: an entry names a device, rollout or release that does not exist'); END")
_SQLITE = (
    "CREATE TRIGGER rollout_devices_references_insert BEFORE INSERT ON rollout_devices "
    + _SQLITE_MISSING,
    "CREATE TRIGGER rollout_devices_references_update "
    "BEFORE UPDATE OF rollout_id, device_id, step_release_id ON rollout_devices "
    + _SQLITE_MISSING,
    "CREATE TRIGGER rollout_devices_device_deleted AFTER DELETE ON devices "
    "BEGIN DELETE FROM rollout_devices WHERE device_id = OLD.id; END",
    "CREATE TRIGGER rollout_devices_rollout_deleted AFTER DELETE ON rollouts "
    "BEGIN DELETE FROM rollout_devices WHERE rollout_id = OLD.id; END",
    "CREATE TRIGGER rollout_devices_release_deleted BEFORE DELETE ON releases "
    "WHEN EXISTS (SELECT 1 FROM rollout_devices WHERE step_release_id = OLD.id) "
    "BEGIN SELECT RAISE(ABORT, 'releases: an entry of a rollout names this release'); END",
    *(f"CREATE TRIGGER rollout_devices_{table}_renamed BEFORE UPDATE OF id ON {table} "  # noqa: S608
      "WHEN NEW.id IS NOT OLD.id "
      f"AND EXISTS (SELECT 1 FROM rollout_devices WHERE {column} = OLD.id) "
      f"BEGIN SELECT RAISE(ABORT, '{table}: an entry of a rollout names this id'); END"
      for table, column in _NAMED),
)
_SQLITE_DROP = tuple(
    f"DROP TRIGGER {name}" for name in (
        "rollout_devices_references_insert", "rollout_devices_references_update",
        "rollout_devices_device_deleted", "rollout_devices_rollout_deleted",
        "rollout_devices_release_deleted",
        *(f"rollout_devices_{table}_renamed" for table, _ in _NAMED)))

# The first missing reference among rows ``{rows}`` (a transition table or NEW), raised. Each
# check reads all the rows (an aggregate, not LIMIT 1): the planner then joins them by hash,
# where with LIMIT 1 it would look each row up in the index; rollouts and releases are checked
# once per distinct value.
_PG_CHECK = """
    SELECT 'device ' || quote_literal(min(a.device_id)) INTO missing FROM {rows} a
     WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = a.device_id);
    IF missing IS NULL THEN
        SELECT 'rollout ' || min(a.rollout_id) INTO missing
          FROM (SELECT DISTINCT rollout_id FROM {rows} n) a
         WHERE NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = a.rollout_id);
    END IF;
    IF missing IS NULL THEN
        SELECT 'release ' || min(a.step_release_id) INTO missing
          FROM (SELECT DISTINCT step_release_id FROM {rows} n
                 WHERE step_release_id IS NOT NULL) a
         WHERE NOT EXISTS (SELECT 1 FROM releases r WHERE r.id = a.step_release_id);
    END IF;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'rollout_devices: an entry names a % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
"""
_POSTGRESQL = (
    "CREATE FUNCTION rollout_devices_check_added() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE missing text; BEGIN "
    + _PG_CHECK.format(rows="added") + " RETURN NULL; END $$",
    "CREATE TRIGGER rollout_devices_references_insert AFTER INSERT ON rollout_devices "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
    "EXECUTE FUNCTION rollout_devices_check_added()",
    "CREATE FUNCTION rollout_devices_check_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE missing text; BEGIN "
    + _PG_CHECK.format(rows="(SELECT NEW.rollout_id AS rollout_id, NEW.device_id AS device_id, "
                            "NEW.step_release_id AS step_release_id)")
    + " RETURN NULL; END $$",
    "CREATE TRIGGER rollout_devices_references_update "
    "AFTER UPDATE OF rollout_id, device_id, step_release_id ON rollout_devices FOR EACH ROW "
    "WHEN (OLD.rollout_id IS DISTINCT FROM NEW.rollout_id "
    "OR OLD.device_id IS DISTINCT FROM NEW.device_id "
    "OR OLD.step_release_id IS DISTINCT FROM NEW.step_release_id) "
    "EXECUTE FUNCTION rollout_devices_check_changed()",
    # Deletes of the named rows: entry writers in flight finish first (their entries are then
    # seen); devices and rollouts take their entries along, a named release is refused.
    "CREATE FUNCTION rollout_devices_parent_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "LOCK TABLE rollout_devices IN SHARE ROW EXCLUSIVE MODE; "
    "IF TG_TABLE_NAME = 'devices' THEN "
    "DELETE FROM rollout_devices e USING removed r WHERE e.device_id = r.id; "
    "ELSIF TG_TABLE_NAME = 'rollouts' THEN "
    "DELETE FROM rollout_devices e USING removed r WHERE e.rollout_id = r.id; "
    "ELSIF EXISTS (SELECT 1 FROM rollout_devices e JOIN removed r "
    "ON e.step_release_id = r.id) THEN "
    "RAISE EXCEPTION 'releases: an entry of a rollout names this release' "
    "USING ERRCODE = 'foreign_key_violation'; "
    "END IF; RETURN NULL; END $$",
    *(f"CREATE TRIGGER rollout_devices_{table}_deleted AFTER DELETE ON {table} "
      "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT "
      "EXECUTE FUNCTION rollout_devices_parent_deleted()"
      for table in ("devices", "rollouts", "releases")),
    # (One branch per table: PL/pgSQL plans a statement for the OLD row's type when it runs.)
    "CREATE FUNCTION rollout_devices_parent_renamed() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE named boolean; BEGIN "
    "LOCK TABLE rollout_devices IN SHARE ROW EXCLUSIVE MODE; "
    "IF TG_TABLE_NAME = 'devices' THEN "
    "named := EXISTS (SELECT 1 FROM rollout_devices WHERE device_id = OLD.id); "
    "ELSIF TG_TABLE_NAME = 'rollouts' THEN "
    "named := EXISTS (SELECT 1 FROM rollout_devices WHERE rollout_id = OLD.id); "
    "ELSE named := EXISTS (SELECT 1 FROM rollout_devices WHERE step_release_id = OLD.id); "
    "END IF; "
    "IF named THEN "
    "RAISE EXCEPTION '%: an entry of a rollout names this id', TG_TABLE_NAME "
    "USING ERRCODE = 'foreign_key_violation'; "
    "END IF; RETURN NEW; END $$",
    *(f"CREATE TRIGGER rollout_devices_{table}_renamed BEFORE UPDATE OF id ON {table} "
      "FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
      "EXECUTE FUNCTION rollout_devices_parent_renamed()"
      for table in ("devices", "rollouts", "releases")),
    "CREATE FUNCTION rollout_devices_parent_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN IF EXISTS (SELECT 1 FROM rollout_devices) THEN "
    "RAISE EXCEPTION '%: entries of rollouts name its rows', TG_TABLE_NAME "
    "USING ERRCODE = 'foreign_key_violation'; "
    "END IF; RETURN NULL; END $$",
    *(f"CREATE TRIGGER rollout_devices_{table}_truncated BEFORE TRUNCATE ON {table} "
      "FOR EACH STATEMENT EXECUTE FUNCTION rollout_devices_parent_truncated()"
      for table in ("devices", "rollouts", "releases")),
)
_POSTGRESQL_DROP = (
    *(f"DROP TRIGGER rollout_devices_{table}_{event} ON {table}"
      for table in ("devices", "rollouts", "releases")
      for event in ("deleted", "renamed", "truncated")),
    "DROP TRIGGER rollout_devices_references_insert ON rollout_devices",
    "DROP TRIGGER rollout_devices_references_update ON rollout_devices",
    *(f"DROP FUNCTION rollout_devices_{name}()" for name in (
        "check_added", "check_changed", "parent_deleted", "parent_renamed",
        "parent_truncated")),
)
#: Names for the keys SQLite created unnamed, so a batch copy can drop them.
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}
_KEYS = (("device_id", "devices", "id", "CASCADE"), ("rollout_id", "rollouts", "id", "CASCADE"),
         ("step_release_id", "releases", "id", None))
#: The index the device-first key replaces.
_DEVICE_STATE = ("ix_rollout_devices_device_state", ["device_id", "state"])


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index(_DEVICE_STATE[0], table_name="rollout_devices")
    if dialect == "postgresql":
        for column, _, _, _ in _KEYS:
            op.drop_constraint(f"rollout_devices_{column}_fkey", "rollout_devices",
                               type_="foreignkey")
        op.drop_constraint("rollout_devices_pkey", "rollout_devices", type_="primary")
        op.create_primary_key("rollout_devices_pkey", "rollout_devices",
                              ["device_id", "rollout_id"])
        for statement in _POSTGRESQL:
            op.execute(statement)
    else:
        with op.batch_alter_table("rollout_devices", naming_convention=_SQLITE_NAMES,
                                  recreate="always") as batch:
            for column, _, _, _ in _KEYS:
                batch.drop_constraint(f"fk_rollout_devices_{column}", type_="foreignkey")
            batch.create_primary_key("pk_rollout_devices", ["device_id", "rollout_id"])
        for statement in _SQLITE:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for statement in _POSTGRESQL_DROP:
            op.execute(statement)
        op.drop_constraint("rollout_devices_pkey", "rollout_devices", type_="primary")
        op.create_primary_key("rollout_devices_pkey", "rollout_devices",
                              ["rollout_id", "device_id"])
        for column, table, key, ondelete in _KEYS:
            op.create_foreign_key(f"rollout_devices_{column}_fkey", "rollout_devices", table,
                                  [column], [key], ondelete=ondelete)
    else:
        for statement in _SQLITE_DROP:
            op.execute(statement)
        with op.batch_alter_table("rollout_devices", recreate="always") as batch:
            batch.create_primary_key("pk_rollout_devices", ["rollout_id", "device_id"])
            for column, table, key, ondelete in _KEYS:
                batch.create_foreign_key(f"fk_rollout_devices_{column}", table, [column], [key],
                                         ondelete=ondelete)
    op.create_index(_DEVICE_STATE[0], "rollout_devices", _DEVICE_STATE[1])
