"""Every board definition in boards/ loads and passes `suture board check`; broken maps fail
with a message naming the board, the region and the numbers."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from suture.boards import (
    Board,
    BoardDefinitionError,
    UnknownBoardError,
    board_names,
    check_board,
    largest_payload,
    load_board,
    load_board_file,
    parse_board,
)

REQUIRED = {"sim", "adafruit-feather-nrf52840", "rpi-pico", "pyboard-stm32f405", "esp32-s3"}


def _raw(repo_root: Path, name: str) -> dict[str, Any]:
    with (repo_root / "boards" / name / "board.toml").open("rb") as fh:
        return tomllib.load(fh)


def _problems(data: dict[str, Any]) -> list[str]:
    return [str(p) for p in check_board(Board.model_validate(data))]


def _region(data: dict[str, Any], flash: str, name: str) -> dict[str, Any]:
    for region in data[flash]["regions"]:
        if region["name"] == name:
            return region  # type: ignore[no-any-return]
    raise AssertionError(f"no region {name}")


def test_required_boards_exist(repo_root: Path) -> None:
    assert set(board_names(repo_root / "boards")) >= REQUIRED


@pytest.mark.parametrize("name", sorted(board_names()))
def test_every_definition_passes_check(name: str) -> None:
    board = load_board(name)
    assert board.name == name
    assert check_board(board) == []


def test_sim_keeps_the_simulator_keys(repo_root: Path) -> None:
    data = _raw(repo_root, "sim")
    assert data["micropython"]["heapsize"] > 0
    for key in ("size", "sector", "page", "regions"):
        assert key in data["internal_flash"]
    roles = {r["name"] for r in data["external_flash"]["regions"]}
    assert {"journal", "nvm", "staging", "backup"} <= roles
    assert data["external_flash"]["jedec_id"] == 0xEF4016


def test_esp32_s3_says_why_it_has_no_stage0() -> None:
    board = load_board("esp32-s3")
    assert board.stage0 is False
    assert board.stage0_note is not None
    assert "Cortex-M" in board.stage0_note


def test_largest_payload_is_the_biggest_replaceable_region() -> None:
    assert largest_payload(load_board("pyboard-stm32f405")) == (0x80000, "loader")
    assert largest_payload(load_board("rpi-pico")) == (0x158000, "application")


def test_overlapping_regions_fail(repo_root: Path) -> None:
    data = _raw(repo_root, "rpi-pico")
    _region(data, "internal_flash", "application")["offset"] = 0x0A0000
    problems = _problems(data)
    assert any(
        "rpi-pico, region 'application': starts at offset 0x000A0000, inside region 'loader'" in p
        for p in problems
    ), problems


def test_region_past_the_end_fails(repo_root: Path) -> None:
    data = _raw(repo_root, "adafruit-feather-nrf52840")
    _region(data, "external_flash", "spare")["size"] = 0x0B1000
    problems = _problems(data)
    assert any(
        "region 'spare': ends at offset 0x00201000, past the end of the external flash "
        "(0x00200000" in p
        for p in problems
    ), problems


def test_misaligned_region_fails(repo_root: Path) -> None:
    data = _raw(repo_root, "sim")
    _region(data, "external_flash", "nvm")["offset"] = 0x002100
    _region(data, "external_flash", "nvm")["size"] = 0x00DF00
    problems = _problems(data)
    assert any(
        "sim, region 'nvm': starts at offset 0x00002100, not on a sector boundary "
        "of the external flash (4096-byte sectors)" in p
        for p in problems
    ), problems


def test_uneven_stm32_sectors_are_honoured(repo_root: Path) -> None:
    data = _raw(repo_root, "pyboard-stm32f405")
    # 0x10000 is a 16 KiB multiple but falls inside the 64 KiB sector 4 (0x10000 is its start,
    # 0x18000 is not a boundary at all).
    _region(data, "internal_flash", "spare")["size"] = 0x014000
    problems = _problems(data)
    assert any("region 'spare': ends at offset 0x00018000, not on a sector boundary" in p
               for p in problems), problems


def test_stage0_away_from_the_boot_address_fails(repo_root: Path) -> None:
    data = _raw(repo_root, "adafruit-feather-nrf52840")
    _region(data, "internal_flash", "stage0")["offset"] = 0x001000
    _region(data, "internal_flash", "stage0")["size"] = 0x007000
    problems = _problems(data)
    assert any(
        "region 'stage0': starts at 0x00001000, but the core boots from 0x00000000" in p
        for p in problems
    ), problems


def test_stm32_alias_is_accepted_and_required(repo_root: Path) -> None:
    data = _raw(repo_root, "pyboard-stm32f405")
    assert data["internal_flash"]["base"] == 0x08000000
    assert _problems(data) == []  # stage0 at 0x08000000, seen at 0x0 through the alias
    no_alias = copy.deepcopy(data)
    no_alias["internal_flash"]["aliases"] = []
    problems = _problems(no_alias)
    assert any("starts at 0x08000000, but the core boots from 0x00000000" in p for p in problems)
    booting_from_base = copy.deepcopy(no_alias)
    booting_from_base["boot_address"] = 0x08000000
    assert _problems(booting_from_base) == []


def test_staging_slot_smaller_than_the_largest_payload_fails(repo_root: Path) -> None:
    data = _raw(repo_root, "pyboard-stm32f405")
    _region(data, "external_flash", "staging")["size"] = 0x07F000
    problems = _problems(data)
    assert any(
        "region 'staging': the staging slot holds 520192 bytes (508 KiB), less than the "
        "largest payload the map allows: 524288 bytes (512 KiB) (region 'loader')" in p
        for p in problems
    ), problems


def test_backup_slot_too_small_after_growing_the_application(repo_root: Path) -> None:
    data = _raw(repo_root, "sim")
    _region(data, "internal_flash", "application")["size"] = 0x200000
    del data["internal_flash"]["regions"][1]
    problems = _problems(data)
    assert any("region 'backup': the backup slot holds" in p for p in problems), problems
    assert any("region 'staging': the staging slot holds" in p for p in problems), problems


def test_duplicate_region_names_fail(repo_root: Path) -> None:
    data = _raw(repo_root, "rpi-pico")
    _region(data, "internal_flash", "application")["name"] = "loader"
    problems = _problems(data)
    assert any("region 'loader': two regions of the internal flash share this name" in p
               for p in problems), problems


def test_missing_journal_and_short_journal_fail(repo_root: Path) -> None:
    data = _raw(repo_root, "sim")
    short = copy.deepcopy(data)
    _region(short, "external_flash", "journal")["size"] = 0x1000
    _region(short, "external_flash", "nvm")["offset"] = 0x1000
    _region(short, "external_flash", "nvm")["size"] = 0xF000
    assert any("the journal needs 2 sectors (8192 bytes (8 KiB)), has 4096 bytes"
               in p for p in _problems(short))
    data["external_flash"]["regions"] = [
        r for r in data["external_flash"]["regions"] if r["name"] != "journal"
    ]
    assert any("exactly one journal region, found 0" in p for p in _problems(data))


def test_stage0_on_a_non_cortex_m_core_fails(repo_root: Path) -> None:
    data = _raw(repo_root, "esp32-s3")
    data["stage0"] = True
    data["boot_address"] = 0
    problems = _problems(data)
    assert any("core 'xtensa-lx7' cannot run it" in p for p in problems), problems


def test_no_stage0_needs_a_reason(repo_root: Path) -> None:
    data = _raw(repo_root, "esp32-s3")
    del data["stage0_note"]
    assert any("stage0 = false needs a `stage0_note`" in p for p in _problems(data))


def test_jedec_capacity_must_match_size(repo_root: Path) -> None:
    data = _raw(repo_root, "rpi-pico")
    data["external_flash"]["jedec_id"] = 0xEF4017
    assert any("jedec_id 0xEF4017 says 2**23 bytes" in p for p in _problems(data))


def test_uneven_layout_must_cover_the_flash(repo_root: Path) -> None:
    data = _raw(repo_root, "pyboard-stm32f405")
    data["internal_flash"]["sector_layout"][2]["count"] = 6
    assert any("sector_layout covers" in p for p in _problems(data))


def test_schema_errors_name_the_file_and_key(tmp_path: Path, repo_root: Path) -> None:
    text = (repo_root / "boards" / "sim" / "board.toml").read_text()
    with pytest.raises(BoardDefinitionError, match=r"internal_flash\.size"):
        parse_board(text.replace("size = 0x200000", "size = -1", 1), source="x.toml")
    with pytest.raises(BoardDefinitionError, match=r"flashhh"):
        parse_board(text + "\nflashhh = 1\n", source="x.toml")
    with pytest.raises(BoardDefinitionError, match=r"bad\.toml: not valid TOML"):
        parse_board("name = ", source="bad.toml")
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "board.toml").write_text(text)
    with pytest.raises(BoardDefinitionError, match=r"name = 'sim', but the folder is 'other'"):
        load_board_file(folder / "board.toml")
    with pytest.raises(UnknownBoardError, match=r"no board named 'nope'"):
        load_board("nope", tmp_path)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_parse_board_fuzz_gives_a_board_or_a_named_error(text: str) -> None:
    error = None
    try:
        parse_board(text, source="fuzz.toml")
    except BoardDefinitionError as exc:
        error = str(exc)
    assert error is None or error.startswith("fuzz.toml: ")
