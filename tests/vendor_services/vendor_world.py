"""What the vendor side's tests share by name (the fixtures are in conftest.py): the vendor's
public URL in tests, the manual clock's start, the releases of the test data directory."""

from __future__ import annotations

BASE = "http://testserver"
START = 1_800_000_000.0
RELEASES = ("app-1.0.0", "app-2.0.0")
