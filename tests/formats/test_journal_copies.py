"""Every hand-written copy of the journal format agrees with its one description
(host/suture/formats/journal.toml), both ways; and the check does fail when a copy is changed by
hand: a value altered, a constant removed, a constant added."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from format_mutations import assert_noticed, mutation_ids, sub
from suture.formats import journal as journal_format
from suture.formats.journal import FormatDescriptionError, JournalFormat
from suture.formats.journal_check import (
    C_HEADER,
    DOC,
    HOST,
    LOADER,
    check_all,
    check_c_header,
    check_doc,
    check_host,
    check_loader,
)

CHECKS: dict[str, Callable[[JournalFormat, str], list[str]]] = {
    C_HEADER: check_c_header,
    LOADER: check_loader,
    HOST: check_host,
    DOC: check_doc,
}


@pytest.fixture(scope="module")
def fmt() -> JournalFormat:
    return journal_format.load()


def test_every_copy_agrees_with_the_description(fmt: JournalFormat, repo_root: Path) -> None:
    assert check_all(fmt, repo_root) == []


def test_description_is_the_record_the_devices_write(fmt: JournalFormat) -> None:
    assert (fmt.record_size, fmt.magic, fmt.crc_span, fmt.sectors) == (64, 0x4C4E4A53, 60, 2)
    assert fmt.struct_format() == "<IIBBBBIII32sI"
    assert (fmt.flags["KEEP_BACKUP"], fmt.flag_mask) == (0x04, 0x07)
    assert (len(fmt.states), fmt.field("digest").offset) == (10, 24)


# (copy, mutation, a word the report must name)
MUTATIONS = [
    # the drift found in #15: the header without KEEP_BACKUP
    (C_HEADER, sub(r"^#define SUTURE_FLAG_KEEP_BACKUP .*\n", ""), "SUTURE_FLAG_KEEP_BACKUP"),
    (C_HEADER, sub(r"SUTURE_FLAG_MASK 0x07u", "SUTURE_FLAG_MASK 0x03u"), "SUTURE_FLAG_MASK"),
    (C_HEADER, sub(r"SUTURE_STATE_FAILED 10u", "SUTURE_STATE_FAILED 11u"), "SUTURE_STATE_FAILED"),
    (C_HEADER, sub(r"^/\* flags \*/\n", "/* flags */\n#define SUTURE_FLAG_FAST 0x08u\n"),
     "SUTURE_FLAG_FAST"),
    (C_HEADER, sub(r"uint8_t digest\[32\];", "uint8_t digest[28];"), "digest"),
    (C_HEADER, sub(r"reserved\) == 56", "reserved) == 52"), "reserved"),
    (LOADER, sub(r"^FLAG_KEEP_BACKUP = const\(0x04\)\n", ""), "FLAG_KEEP_BACKUP"),
    (LOADER, sub(r"^TRIAL = const\(6\)", "TRIAL = const(0x16)"), "TRIAL"),
    (LOADER, sub(r"^FAILED = const\(10\)\n", "FAILED = const(10)\nPAUSED = const(11)\n"),
     "PAUSED"),
    (LOADER, sub(r"^OFF_SIZE = const\(16\)", "OFF_SIZE = const(17)"), "OFF_SIZE"),
    (LOADER, sub(r'9: "REVERTED"', '9: "REVERTING"'), "STATE_NAMES"),
    (LOADER, sub(r'_FMT = "<IIBBBBIII32sI"', '_FMT = "<IIBBBBIII31sI"'), "_FMT"),
    (HOST, sub(r"^    KEEP_BACKUP = 0x04\n", ""), "Flag.KEEP_BACKUP"),
    (HOST, sub(r"^    NVM = 2\n", "    NVM = 2\n    BOOTLOADER = 3\n"), "Component.BOOTLOADER"),
    (HOST, sub(r"^MAGIC = 0x4C4E4A53", "MAGIC = 0x4C4E4A54"), "MAGIC"),
    (DOC, sub(r"^\| 10    \| `FAILED`", "| 11    | `FAILED`"), "state FAILED"),
    (DOC, sub(r"^\| 2   \| `0x04` \| `KEEP_BACKUP`.*\n", ""), "flag KEEP_BACKUP"),
    (DOC, sub(r"^\| 2     \| `NVM`", "| 3     | `NVM`"), "component NVM"),
    (DOC, sub(r"^\| 56     \| 4    \| `reserved`", "| 56     | 2    | `reserved`"),
     "field reserved"),
]


@pytest.mark.parametrize(("copy", "mutate", "named"), MUTATIONS, ids=mutation_ids(MUTATIONS))
def test_a_copy_changed_by_hand_fails_the_check(
    fmt: JournalFormat, repo_root: Path, copy: str, mutate: Callable[[str], str], named: str
) -> None:
    assert_noticed(CHECKS[copy], fmt, repo_root, copy, mutate, named)


@pytest.mark.parametrize(("change", "message"), [
    (("offset = 24, size = 32", "offset = 24, size = 30"), "fields are packed"),
    (("KEEP_BACKUP = 0x04", "KEEP_BACKUP = 0x06"), "KEEP_BACKUP"),
    (("FAILED = 10", "FAILED = 9"), "share a value"),
    (('"REVERTED", "FAILED"]', '"REVERTED", "DONE"]'), "DONE"),
])
def test_an_inconsistent_description_is_refused(change: tuple[str, str], message: str) -> None:
    text = journal_format.description_text()
    assert change[0] in text
    with pytest.raises(FormatDescriptionError, match=message):
        journal_format.parse(text.replace(change[0], change[1], 1))
