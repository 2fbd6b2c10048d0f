"""Suite-wide test policy.

- With ``SUTURE_FORBID_SKIPS=1`` (set by ``make test`` and so by CI) a skipped test is reported
  as a failure: every marker must really run.
- ``--full-sweep`` (or ``SUTURE_FULL_SWEEP=1``) runs the power-cut sweeps whole: every hard
  kind of cut at every operation and every double cut, instead of CI's deterministic sample.
- ``figures`` lets a test report a measured figure (cut points covered, sizes, counts); they are
  printed together in a "suture figures" section at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

pytest_plugins = ["suture.sim.pytest_fixtures"]

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "vectors"
_FIGURE = "suture-figure"
_FIGURES: list[tuple[str, str]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full-sweep", action="store_true",
                     help="power-cut sweeps: every hard cut and every double cut (no sample)")


def pytest_configure(config: pytest.Config) -> None:
    # a terminated run (CI's timeout, a cancelled job) still stops every QEMU machine it started
    from suture.qemu import processes

    processes.end_on_sigterm()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # a worker of pytest -n starts with COLUMNS=80 and LINES=24 set, which a CLI's console
        # made at import would keep; each test sets the terminal it means, as in one process
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)
    if config.getoption("--full-sweep"):
        os.environ["SUTURE_FULL_SWEEP"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("SUTURE_FULL_SWEEP") != "1":
        return
    # a whole sweep runs for as long as its cuts take (the loader delta's double cuts: about an
    # hour); the per-test timeout bounds CI's samples, not these
    for item in items:
        if item.get_closest_marker("powercut") is not None:
            item.add_marker(pytest.mark.timeout(0))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's top folder."""
    return REPO


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """``tests/vectors``: public test vectors (SUIT examples, Wycheproof); see its README."""
    return VECTORS


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Record a figure for the end-of-run summary: ``figures("cut points", 1234)``."""

    def record(name: str, value: object) -> None:
        # carried by the test's reports, so a run in several workers (pytest -n) prints them too
        request.node.user_properties.append((_FIGURE, f"{name} = {value}"))

    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if os.environ.get("SUTURE_FORBID_SKIPS") == "1" and report.skipped:
        if hasattr(report, "wasxfail"):
            return
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and skips are failures in this run: {reason}"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _FIGURES.extend((report.nodeid, str(text)) for key, text in report.user_properties
                        if key == _FIGURE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("suture figures")
    for nodeid, figure in _FIGURES:
        terminalreporter.write_line(f"{nodeid}: {figure}")
