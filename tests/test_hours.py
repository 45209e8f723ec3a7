"""Opening hours: the directory's notation and whether a service is open now."""

import datetime as dt

import pytest

from bot.services.hours import HoursError, parse_hours

MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0)  # a Monday


def test_day_ranges_lists_and_split_times():
    hours = parse_hours("mon-fri 08:00-12:00 14:00-17:00; sat 09:00-12:00")
    assert hours.is_open(MONDAY_9) is True
    assert hours.is_open(MONDAY_9.replace(hour=13)) is False
    assert hours.is_open(MONDAY_9 + dt.timedelta(days=5)) is True  # Saturday 09:00
    assert hours.is_open(MONDAY_9 + dt.timedelta(days=6)) is False  # Sunday


def test_lists_wrapping_ranges_midnight_and_always():
    assert parse_hours("tue,thu 09:00-13:00").is_open(MONDAY_9 + dt.timedelta(days=1)) is True
    assert parse_hours("sat-mon 10:00-24:00").is_open(MONDAY_9.replace(hour=23, minute=59)) is True
    assert parse_hours("24/7").is_open(MONDAY_9) is True
    assert parse_hours("").is_open(MONDAY_9) is None  # unknown, not closed


@pytest.mark.parametrize(
    "text, message",
    [("mornings", "expected days then times"), ("mon-fry 08:00-12:00", "unknown day"),
     ("mon 8-12", "expected HH:MM-HH:MM"), ("mon 12:00-08:00", "ends before it starts"),
     ("mon 25:00-26:00", "expected HH:MM-HH:MM")],
)
def test_unreadable_hours_name_the_part(text, message):
    with pytest.raises(HoursError, match=message):
        parse_hours(text)
