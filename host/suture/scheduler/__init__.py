"""The hospital's scheduler: device registry, releases, rollouts, the device API, the audit log.

Layers, outermost first:

- ``api``: FastAPI routes (device-facing and operator), built by ``api.app.create_app``;
- ``services``: one function per operation; each owns its transaction and writes its audit record;
- ``policies``: pure decisions (waves, thresholds, windows, deadlines, approval, path planning,
  the per-device schedule decision), no I/O;
- ``models`` (SQLAlchemy 2) and ``schemas`` (Pydantic), ``db`` (engine and sessions),
  ``migrations`` (Alembic).
"""
