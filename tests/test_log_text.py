"""``printable``: untrusted text becomes a bounded, single-line log fragment."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediation.log_text import LIMIT, printable


def test_ordinary_text_is_shown_as_it_is() -> None:
    text = "/subscriptions/6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f/resourceGroups/rg (x)/ü\\path"
    assert printable(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nel\x85", "nel\\x85"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("\u202eevil", "\\u202eevil"),  # a bidirectional override reorders what a reader sees
        ("tab\there", "tab\\there"),
        ("\x00", "\\x00"),
    ],
)
def test_control_and_invisible_characters_are_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_long_text_is_cut_saying_how_much_was_left_out() -> None:
    shown = printable("x" * 1_000_000)
    assert shown == "x" * LIMIT + "…(+999800 chars)"


def test_the_limit_counts_escaped_characters() -> None:
    shown = printable("\n" * 1000, limit=50)
    assert shown == "\\n" * 25 + "…(+975 chars)"


def test_values_that_are_not_strings_show_their_type_or_number() -> None:
    assert printable(None) == "None"
    assert printable(42) == "42"
    assert printable(True) == "True"
    assert printable(1.5) == "1.5"
    assert printable(["a\nb"] * 10**6) == "<list>"
    assert printable({"deep": {}}) == "<dict>"
    assert printable(10**5000) == "<int of 16610 bits>"


@given(st.one_of(st.text(), st.binary(), st.integers(), st.lists(st.text())), st.integers(1, 500))
def test_any_value_becomes_one_bounded_log_line(value: object, limit: int) -> None:
    shown = printable(value, limit=limit)
    assert len(shown) <= limit + len("…(+99999999999 chars)")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "event %s", (shown,), None)
    assert len(record.getMessage().splitlines()) == 1
    assert shown.isprintable()
