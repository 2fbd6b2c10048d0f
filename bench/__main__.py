"""Run the benchmarks: ``python -m bench`` (all) or ``python -m bench device stage0``."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    names = argv or _available()
    unknown = sorted(set(names) - set(_available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(_available())}")
        return 2
    console = Console()
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        console.rule(f"bench: {name}")
        started = time.monotonic()
        results = module.run()
        results["bench_wall_s"] = round(time.monotonic() - started, 3)
        table = Table("figure", "value", title=f"{name} ({module.__doc__.splitlines()[0]})")
        for key, value in results.items():
            table.add_row(key, str(value))
        console.print(table)
        out = RESULTS / f"{name}.json"
        out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        console.print(f"wrote {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
