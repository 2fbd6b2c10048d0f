"""Rollout target filters: semantics, clear errors, and no other exception on any input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from suture.scheduler.errors import FilterSyntaxError
from suture.scheduler.filterexpr import compile_filter

DEVICE = {"id": "pump-7", "board": "pico", "ward": "ICU", "location": "bed 4", "criticality": 3,
          "vendor_id": "v", "class_id": "c", "state": "idle", "busy": False, "last_seen": 100,
          "tags": ["pilot", "night"], "groups": ["3B"], "installed": {"app": 4, "loader": 2}}


@pytest.mark.parametrize(("expr", "expected"), [
    ('ward == "ICU"', True),
    ("ward == 'ICU' and criticality <= 2", False),
    ('tags has "pilot" or groups has "none"', True),
    ('not tags has "pilot"', False),
    ("installed.app < 5 and installed.loader >= 2", True),
    ("installed.nvm == 0", True),
    ('board in ["feather", "pico"]', True),
    ('criticality >= "high"', True),
    ("busy == false and (last_seen > 50 or ward == \"x\")", True),
    ('location == "bed \\"4\\""', False),
    ('id != "pump-7"', False),
])
def test_semantics(expr: str, expected: bool) -> None:
    assert compile_filter(expr)(DEVICE) is expected


@pytest.mark.parametrize(("expr", "message"), [
    ("", "empty"),
    ("ward ==", "end of expression"),
    ("nosuch == 1", "unknown field"),
    ("ward == 3", "string"),
    ("tags == \"x\"", "has"),
    ("busy < true", "booleans"),
    ("criticality == \"extreme\"", "unknown criticality"),
    ("ward == \"a\" ward", "unexpected"),
    ("__import__('os').system('x')", "unexpected character"),
    ("(" * 50 + "ward == \"a\"" + ")" * 50, "nested"),
    ("not " * 50 + "busy == true", "nested"),
    ("x" * 1001, "longer"),
    ("ward == \"ICU\" ; drop", "unexpected character"),
])
def test_errors_are_clear(expr: str, message: str) -> None:
    with pytest.raises(FilterSyntaxError, match=message):
        compile_filter(expr)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ward=!<>()[]," \'andornothas1.2installed.app'
                                             'tagsbusytruefalsecriticality')), max_size=60))
def test_fuzz_only_filter_errors(text: str) -> None:
    try:
        predicate = compile_filter(text)
    except FilterSyntaxError:
        return
    assert predicate(DEVICE) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_arbitrary_text(text: str) -> None:
    try:
        predicate = compile_filter(text)
    except FilterSyntaxError:
        return
    assert predicate(DEVICE) in (True, False)
