"""Every hand-written copy of the device's error codes agrees with the one table
(host/suture/formats/error_codes.toml), both ways; the layers' ranges are disjoint; and the
check does fail when a copy is changed by hand: a code altered, removed or added."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from format_mutations import assert_noticed, mutation_ids, sub
from suture.formats import error_codes
from suture.formats.error_codes import ErrorCodes, ErrorTableError
from suture.formats.error_codes_check import (
    DOC,
    check_agent,
    check_all,
    check_c_header,
    check_doc,
    check_loader,
)

C_HEADER = "stage0/include/suture/errors.h"
LOADER = "loader/loader/errors.py"
AGENT = "device/agent/errors.py"
CHECKS: dict[str, Callable[[ErrorCodes, str], list[str]]] = {
    C_HEADER: check_c_header,
    LOADER: check_loader,
    AGENT: check_agent,
    DOC: check_doc,
}


@pytest.fixture(scope="module")
def table() -> ErrorCodes:
    return error_codes.load()


def test_every_copy_agrees_with_the_table(table: ErrorCodes, repo_root: Path) -> None:
    assert check_all(table, repo_root) == []


def test_the_copies_are_where_the_table_says(table: ErrorCodes) -> None:
    assert {n: layer.copy for n, layer in table.layers.items()} == {
        "stage0": C_HEADER, "loader": LOADER, "agent": AGENT}


def test_the_layers_ranges_are_disjoint_and_hold_their_codes(table: ErrorCodes) -> None:
    spans = {n: (layer.first, layer.last) for n, layer in table.layers.items()}
    assert spans == {"stage0": (1, 19), "loader": (20, 99), "agent": (100, 199)}
    seen: dict[int, str] = {}
    for layer in table.layers.values():
        for e in layer.codes.values():
            assert e.code in layer, e
            assert table.layer_of(e.code) is layer
            assert e.code not in seen, (e, seen.get(e.code))
            seen[e.code] = e.name
    # the overlap of #15: stage0's 1 and 10 were the loader's "any other error" and CborError
    assert (table.lookup(1), table.lookup(10)) == (
        table.layers["stage0"].codes["EFLASH"], table.layers["stage0"].codes["ECOPY"])
    assert table.code("loader", "LoaderError") != 1
    assert table.code("loader", "CborError") != 10


def test_the_host_explains_a_code(table: ErrorCodes) -> None:
    assert table.explain(33) == "loader NoSpaceError (33): littlefs has no room for the bundle"
    assert table.name(6) == "stage0 EROLLBACK"
    assert table.name(150) == "agent NO_TRIAL_TO_REVERT"
    assert table.name(0) == "none"
    assert table.name(77) == "loader code 77"
    assert table.explain(77) == "unknown error code 77 (in loader's range, not in its table)"
    assert table.name(4242) == "code 4242"
    assert "in no layer's range" in table.explain(4242)
    assert error_codes.explain(43).startswith("loader ABORTED (43)")


# (copy, mutation, a word the report must name)
MUTATIONS = [
    (C_HEADER, sub(r"SUTURE_ECOPY = 10,", "SUTURE_ECOPY = 11,"), "SUTURE_ECOPY"),
    (C_HEADER, sub(r"^\s*SUTURE_EKEY = 8,.*\n", ""), "SUTURE_EKEY"),
    (C_HEADER, sub(r"(SUTURE_ECOPY = 10,.*\n)", r"\1    SUTURE_EBROWNOUT = 11,\n"),
     "SUTURE_EBROWNOUT"),
    (C_HEADER, sub(r"^#endif", "#define SUTURE_EWATCHDOG 12u\n#endif"), "SUTURE_EWATCHDOG"),
    (C_HEADER, sub(r"SUTURE_EMAGIC = 2,", "SUTURE_EMAGIC,"), "SUTURE_EMAGIC"),
    # the overlap of #15 brought back: the loader's catch-all at stage0's 1
    (LOADER, sub(r"^    code = 90$", "    code = 1"), "LoaderError"),
    (LOADER, sub(r"^    code = 28$", "    code = 10"), "CborError"),
    (LOADER, sub(r"^ABORTED = const\(43\).*\n", ""), "ABORTED"),
    (LOADER, sub(r"^class NvmFull\(NvmError\):\n    code = 61\n",
                  "class NvmFull(NvmError):\n    code = 61\n\n\nclass NvmWorn(NvmError):\n"
                  "    code = 63\n"), "NvmWorn"),
    (LOADER, sub(r"^class NvmFull\(NvmError\):\n    code = 61\n",
                  "class NvmFull(NvmError):\n    pass\n"), "NvmFull"),
    (AGENT, sub(r"^UNHEALTHY = const\(151\)", "UNHEALTHY = const(152)"), "UNHEALTHY"),
    (AGENT, sub(r"^NO_TRIAL_TO_REVERT = const\(150\).*\n", ""), "NO_TRIAL_TO_REVERT"),
    (AGENT, sub(r"^    code = 140$", "    code = 140\n\n\nclass ClockError(AgentError):\n"
                 "    code = 141"), "ClockError"),
    (DOC, sub(r"^\| 33 \| loader \| `NoSpaceError`", "| 35 | loader | `NoSpaceError`"),
     "loader NoSpaceError"),
    (DOC, sub(r"^\| 151 \| agent \| `UNHEALTHY`.*\n", ""), "agent UNHEALTHY"),
    (DOC, sub(r"^\| 10 \| stage0 \| `ECOPY`(.*)\n", r"| 10 | stage0 | `ECOPY`\1\n"
               r"| 11 | stage0 | `EBROWNOUT` | brown-out |\n"), "stage0 EBROWNOUT"),
    (DOC, sub(r"^\| loader \| 20    \| 99 ", "| loader | 10    | 99 "), "range loader"),
]


@pytest.mark.parametrize(("copy", "mutate", "named"), MUTATIONS, ids=mutation_ids(MUTATIONS))
def test_a_copy_changed_by_hand_fails_the_check(
    table: ErrorCodes, repo_root: Path, copy: str, mutate: Callable[[str], str], named: str
) -> None:
    assert_noticed(CHECKS[copy], table, repo_root, copy, mutate, named)


@pytest.mark.parametrize(("change", "message"), [
    (("first = 20", "first = 10"), "overlap"),
    (("last = 19", "last = 25"), "overlap"),
    (("CborError = { code = 28", "CborError = { code = 10"), "outside loader's range"),
    (("CborError = { code = 28", "CborError = { code = 27"), "is also loader SequenceNumberError"),
    (("UNHEALTHY = { code = 151", "UNHEALTHY = { code = 43"), "outside agent's range"),
    (("ECOPY = { code = 10,", "ECOPY = { code = 10.5,"), "ECOPY"),
    (("none = 0", "none = 1"), "none must be 0"),
])
def test_an_inconsistent_table_is_refused(change: tuple[str, str], message: str) -> None:
    text = error_codes.description_text()
    assert change[0] in text
    with pytest.raises(ErrorTableError, match=message):
        error_codes.parse(text.replace(change[0], change[1], 1))


def test_the_host_names_the_codes_it_shows() -> None:
    """The ward's live view names an agent event's code; the scheduler's rollout entry names a
    report's code, and knows the agent's NO_TRIAL_TO_REVERT by the table."""
    from suture.scheduler.schemas import ReportError
    from suture.scheduler.services import reports
    from suture.ward.fleet import DeviceView, take_line

    v = DeviceView("bed-1")
    assert take_line(v, 2, 'SUTURE-AGENT {"ev": "error", "where": "staging", "code": 31, '
                           '"message": "payload does not match"}')
    assert take_line(v, 2, 'SUTURE-AGENT {"ev": "refused", "code": 113, "message": "old"}')
    assert take_line(v, 2, 'SUTURE-AGENT {"ev": "error", "where": "cycle", "code": 0, '
                           '"message": "OSError: 104"}')
    assert v.errors == ["staging: payload does not match [loader DigestError]",
                        "schedule refused: old [agent ScheduleReplayError]",
                        "cycle: OSError: 104"]
    assert error_codes.load().code("agent", "NO_TRIAL_TO_REVERT") == reports.NO_TRIAL_TO_REVERT
    text = reports._error_text(ReportError(code=6, message="update failed (error 6)"))
    assert text == "error 6 (stage0 EROLLBACK): update failed (error 6)"
