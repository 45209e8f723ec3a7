"""The deployment file: what an organisation running the helpline decides.

Organisation name, emergency contacts per country or area, enabled languages, hours of human
cover and retention times. ``load_deployment`` validates the whole file and reports every
problem at once with its location (``emergency_contacts.NG[0].name.fr: missing``); nothing
falls back silently to a default.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

SUPPORTED_LANGUAGES = ("en", "fr", "ar", "es")
DEFAULT_AREA = "default"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER = re.compile(r"^\+?[0-9][0-9 ()\-]{1,24}$")
_RANGE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
_TOP_KEYS = {"organisation", "languages", "default_language", "emergency_contacts",
             "human_cover", "retention"}
_RETENTION_KEYS = {"conversation_idle_hours", "reply_route_idle_hours", "closed_case_days"}
_RETENTION_OPTIONAL = {"undelivered_reply_minutes": 60}
_OPTIONAL_KEYS = {"sms", "web_chat", "campaigns", "figures", "handoff"}
_HANDOFF_KEYS = {"max_new_cases_per_hour"}
_WEB_CHAT_KEYS = {"quick_exit_url"}
_FIGURES_KEYS = {"min_cell"}
# Aggregate figures never show a count below 3 (see bot/figures.py); 5 unless the file says more.
MIN_FIGURES_CELL = 3
# The web chat's quick exit: an https:// address, or a path on this site (not "//host").
_QUICK_EXIT_URL = re.compile(
    r"^(https://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[^\s\"'<>\\]*)?"
    r"|/([^\s\"'<>\\/][^\s\"'<>\\]*)?)$"
)
_SMS_KEYS = {"segment_budget", "fold_accents"}
MAX_SEGMENT_BUDGET = 10
_CAMPAIGN_KEYS = {"sms_price_per_segment", "currency", "twilio_messages_per_second",
                  "telegram_messages_per_second", "max_per_week", "daytime", "consent_months"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Telegram's own limit for a bot: about 30 messages per second overall.
MAX_TELEGRAM_PER_SECOND = 30
# A campaign's cap of messages per person per week may not exceed a daily message.
MAX_CAMPAIGN_PER_WEEK = 7
# A subscriber's consent lasts at most two years; asking again renews it.
MAX_CONSENT_MONTHS = 24


class DeploymentError(ValueError):
    """The deployment file cannot be used; ``problems`` lists every reason."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"deployment file {path} is not valid:\n{listed}")


@dataclass(frozen=True)
class EmergencyContact:
    """A number to call in danger, with its name in each enabled language."""

    names: Mapping[str, str]
    number: str

    def render(self, language: str) -> str:
        return f"{self.names[language]}: {self.number}"


@dataclass(frozen=True)
class HumanCover:
    """When caseworkers are on shift: weekday -> list of (start, end) local times."""

    timezone: str
    hours: Mapping[str, tuple[tuple[dt.time, dt.time], ...]]

    def is_covered(self, moment: dt.datetime) -> bool:
        """Whether ``moment`` (timezone-aware) falls inside the hours of cover."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        ranges = self.hours.get(WEEKDAYS[local.weekday()], ())
        now = local.time()
        return any(start <= now < end for start, end in ranges)

    def next_opening(self, moment: dt.datetime) -> Optional[dt.datetime]:
        """The next start of cover after ``moment``, in the helpline's local time (None: the
        week has no cover at all)."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        for days in range(8):
            day = (local + dt.timedelta(days=days)).date()
            for start, _ in sorted(self.hours.get(WEEKDAYS[day.weekday()], ())):
                opening = dt.datetime.combine(day, start, tzinfo=local.tzinfo)
                if opening > local:
                    return opening
        return None

    def periods(self, moment: dt.datetime, days: int = 8
                ) -> list[tuple[dt.datetime, dt.datetime]]:
        """The periods of cover (start, end; UTC) from the local day of ``moment`` for ``days``
        days, ranges that meet (Monday "20:00-24:00" and Tuesday "00:00-08:00") joined as one.
        Local times become UTC through the time zone's rules, so a shift across a change of
        daylight saving time lasts what the clocks on the wall say."""
        zone = ZoneInfo(self.timezone)
        first = moment.astimezone(zone).date()
        ranges = []
        for offset in range(days):
            day = first + dt.timedelta(days=offset)
            for start, end in self.hours.get(WEEKDAYS[day.weekday()], ()):
                until = (dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)
                         if end == dt.time.max else dt.datetime.combine(day, end, zone))
                ranges.append((dt.datetime.combine(day, start, zone).astimezone(dt.timezone.utc),
                               until.astimezone(dt.timezone.utc)))
        joined: list[tuple[dt.datetime, dt.datetime]] = []
        for start, end in sorted(ranges):
            if joined and start <= joined[-1][1]:
                joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
            else:
                joined.append((start, end))
        return joined

    def keep_until(self, moment: dt.datetime) -> dt.datetime:
        """Until when a request for a person made at ``moment`` must be answerable: the end of
        the period of cover that starts next after ``moment`` (at ``next_opening``, the time
        the person is told when nobody is on shift; made within a shift: the rest of it and
        the whole of the next). ``moment`` itself (UTC) when no period starts within a week:
        no cover at all, or cover without a break (where the ordinary idle times are enough).
        """
        now = moment.astimezone(dt.timezone.utc)
        for start, end in self.periods(now, days=16):  # a period that starts within the
            if now < start < now + dt.timedelta(days=7):  # week ends within 16 days
                return end
        return now

    def longest_gap(self, moment: dt.datetime) -> Optional[tuple[dt.datetime, dt.datetime]]:
        """The longest time without cover beginning in the week from ``moment`` (start, end;
        UTC), or None when there is no cover, or no break in it."""
        now = moment.astimezone(dt.timezone.utc)
        periods = self.periods(now, days=15)
        gaps = [(earlier[1], later[0]) for earlier, later in zip(periods, periods[1:])
                if now <= earlier[1] < now + dt.timedelta(days=7)]
        return max(gaps, key=lambda gap: gap[1] - gap[0], default=None)


@dataclass(frozen=True)
class Retention:
    """How long things are kept, from the deployment file. ``undelivered_reply_minutes``
    (optional, 60): how long a reply the provider did not take is tried again before it is
    dropped (``channels.redelivery``)."""

    conversation_idle_hours: int
    reply_route_idle_hours: int
    closed_case_days: int
    undelivered_reply_minutes: int = 60


@dataclass(frozen=True)
class SmsSettings:
    """How SMS turns are cut: at most ``segment_budget`` segments per message sent (the rest
    waits for "more"); ``fold_accents`` writes é as e where that keeps a text in GSM-7."""

    segment_budget: int = 2
    fold_accents: bool = True


@dataclass(frozen=True)
class CampaignSettings:
    """Awareness campaigns: the price of one SMS segment (for the preview's cost estimate),
    the providers' sending rates, and the most messages per person per week any campaign may
    send (what the subscription's consent message promises). ``consent_months``: how long a
    subscriber's yes lasts (calendar months, said in the consent message); after that the
    subscriber and the address are deleted (``helpline purge``, the dispatcher) unless the
    person asked to subscribe again, which renews it from that day. ``daytime``: the hours
    (minutes after midnight, start and end) outside which no campaign may send, in each
    recipient's local time: the consent message promises "never at night"."""

    sms_price_per_segment: Decimal = Decimal("0")
    currency: str = "USD"
    twilio_messages_per_second: float = 1.0
    telegram_messages_per_second: float = 30.0
    max_per_week: int = 2
    consent_months: int = 12
    daytime: tuple[int, int] = (8 * 60, 21 * 60)

    @property
    def daytime_text(self) -> str:
        (h1, m1), (h2, m2) = divmod(self.daytime[0], 60), divmod(self.daytime[1], 60)
        return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


@dataclass(frozen=True)
class Deployment:
    """A validated deployment file."""

    organisation_name: str
    languages: tuple[str, ...]
    default_language: str
    emergency_contacts: Mapping[str, tuple[EmergencyContact, ...]]
    human_cover: HumanCover
    retention: Retention
    sms: SmsSettings = SmsSettings()
    # Where the web chat's quick exit goes; None: the channel's own neutral page.
    web_quick_exit_url: Optional[str] = None
    campaigns: CampaignSettings = CampaignSettings()
    # Aggregate figures for NGOs show no count below this (bot/figures.py).
    figures_min_cell: int = 5
    # New hand-off cases one channel may open in an hour (``handoff.max_new_cases_per_hour``):
    # a script cannot bury real cases under made-up ones.
    max_new_cases_per_hour: int = 30
    # language -> what the organisation can and cannot keep confidential (organisation.
    # confidentiality), for the caseworkers' canned reply; empty: that reply is not offered.
    confidentiality: Mapping[str, str] = field(default_factory=dict)

    def contacts_for(self, area: Optional[str]) -> tuple[EmergencyContact, ...]:
        """Emergency contacts of ``area`` (a country or area code), else the default list."""
        if area and area in self.emergency_contacts:
            return self.emergency_contacts[area]
        return self.emergency_contacts[DEFAULT_AREA]

    def render_contacts(self, language: str, area: Optional[str] = None) -> str:
        """The emergency contacts as one line of text in ``language``."""
        return "; ".join(c.render(language) for c in self.contacts_for(area))

    def language_or_default(self, language: Optional[str]) -> str:
        return language if language in self.languages else self.default_language


def load_deployment(path: Path) -> Deployment:
    """Reads and validates a deployment file.

    Raises:
        DeploymentError: listing every problem found, or that the file can't be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DeploymentError(Path(path), [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise DeploymentError(Path(path), ["the file is not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeploymentError(Path(path), [f"not valid YAML: {exc}"]) from None
    return parse_deployment(data, Path(path))


@lru_cache(maxsize=8)
def cached_deployment(path: Path) -> Deployment:
    """``load_deployment`` once per path and process (the file is validated at start)."""
    return load_deployment(path)


def parse_deployment(data: Any, path: Path = Path("<memory>")) -> Deployment:
    """Validates already-parsed YAML; see ``load_deployment``."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise DeploymentError(path, ["the file must be a mapping of settings"])
    for key in sorted(set(data) - _TOP_KEYS - _OPTIONAL_KEYS):
        problems.append(f"{key}: unknown setting (expected one of "
                        f"{sorted(_TOP_KEYS | _OPTIONAL_KEYS)})")
    for key in sorted(_TOP_KEYS - set(data)):
        problems.append(f"{key}: missing")

    name = _organisation_name(data.get("organisation"), problems)
    languages = _languages(data.get("languages"), problems)
    default_language = data.get("default_language")
    if "default_language" in data and default_language not in languages:
        problems.append(
            f"default_language: {default_language!r} is not one of the enabled languages"
        )
    contacts = _emergency_contacts(data.get("emergency_contacts"), languages, problems)
    cover = _human_cover(data.get("human_cover"), problems)
    retention = _retention(data.get("retention"), problems)
    sms = _sms(data.get("sms"), problems)
    quick_exit_url = _web_chat(data.get("web_chat"), problems)
    campaigns = _campaigns(data.get("campaigns"), problems)
    figures_min_cell = _figures(data.get("figures"), problems)
    max_new_cases = _handoff(data.get("handoff"), problems)
    confidentiality = _confidentiality(data.get("organisation"), languages, problems)
    if problems:
        raise DeploymentError(path, problems)
    return Deployment(
        organisation_name=name,
        languages=languages,
        default_language=default_language,
        emergency_contacts=contacts,
        human_cover=cover,
        retention=retention,
        sms=sms,
        web_quick_exit_url=quick_exit_url,
        campaigns=campaigns,
        figures_min_cell=figures_min_cell,
        max_new_cases_per_hour=max_new_cases,
        confidentiality=confidentiality,
    )


CONFIDENTIALITY_MAX_CHARS = 300  # one canned reply: within two SMS segments


def _confidentiality(value: Any, languages: tuple[str, ...], problems: list[str]
                     ) -> dict[str, str]:
    """``organisation.confidentiality``: a text per enabled language, or nothing."""
    texts = value.get("confidentiality") if isinstance(value, dict) else None
    if texts is None:
        return {}
    if not isinstance(texts, dict):
        problems.append("organisation.confidentiality: must give a text per language")
        return {}
    result = {}
    for language in languages:
        text = texts.get(language)
        where = f"organisation.confidentiality.{language}"
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: missing")
        elif len(text.strip()) > CONFIDENTIALITY_MAX_CHARS:
            problems.append(f"{where}: {len(text.strip())} characters (at most "
                            f"{CONFIDENTIALITY_MAX_CHARS})")
        elif "{" in text or "}" in text:
            problems.append(f"{where}: no placeholders")
        else:
            result[language] = text.strip()
    return result  # texts in languages not enabled are left unused, as in the sample


def _organisation_name(value: Any, problems: list[str]) -> str:
    if value is None:
        return ""
    name = value.get("name") if isinstance(value, dict) else None
    if not isinstance(name, str) or not name.strip():
        problems.append("organisation.name: missing or empty")
        return ""
    return name.strip()


def _languages(value: Any, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        problems.append("languages: must be a non-empty list of language codes")
        return ()
    seen: list[str] = []
    for index, code in enumerate(value):
        if code not in SUPPORTED_LANGUAGES:
            problems.append(
                f"languages[{index}]: {code!r} is not supported (supported: "
                f"{', '.join(SUPPORTED_LANGUAGES)})"
            )
        elif code in seen:
            problems.append(f"languages[{index}]: {code!r} is listed twice")
        else:
            seen.append(code)
    return tuple(seen)


def _emergency_contacts(
    value: Any, languages: tuple[str, ...], problems: list[str]
) -> dict[str, tuple[EmergencyContact, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append("emergency_contacts: must map areas to lists of contacts")
        return {}
    if DEFAULT_AREA not in value:
        problems.append(
            f"emergency_contacts.{DEFAULT_AREA}: missing (used when the person's area is unknown)"
        )
    result: dict[str, tuple[EmergencyContact, ...]] = {}
    for area, entries in value.items():
        where = f"emergency_contacts.{area}"
        if not isinstance(entries, list) or not entries:
            problems.append(f"{where}: no emergency contact given")
            continue
        contacts = []
        for index, entry in enumerate(entries):
            contact = _contact(entry, f"{where}[{index}]", languages, problems)
            if contact:
                contacts.append(contact)
        result[str(area)] = tuple(contacts)
    return result


def _contact(
    entry: Any, where: str, languages: tuple[str, ...], problems: list[str]
) -> Optional[EmergencyContact]:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must have a name and a number")
        return None
    number = entry.get("number")
    if number is None or str(number).strip() == "":
        problems.append(f"{where}.number: missing")
    elif not _NUMBER.match(str(number).strip()):
        problems.append(f"{where}.number: {number!r} is not a phone number")
    names = entry.get("name")
    if not isinstance(names, dict):
        problems.append(f"{where}.name: must give the name in each enabled language")
        return None
    ok = True
    for language in languages:
        label = names.get(language)
        if not isinstance(label, str) or not label.strip():
            problems.append(f"{where}.name.{language}: missing")
            ok = False
    if not ok or number is None:
        return None
    return EmergencyContact(names={k: str(v).strip() for k, v in names.items()},
                            number=str(number).strip())


def _human_cover(value: Any, problems: list[str]) -> HumanCover:
    empty = HumanCover(timezone="UTC", hours={})
    if value is None:
        return empty
    if not isinstance(value, dict):
        problems.append("human_cover: must have a timezone and hours")
        return empty
    timezone = value.get("timezone")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"human_cover.timezone: unknown time zone {timezone!r}")
        timezone = "UTC"
    hours_in = value.get("hours")
    if not isinstance(hours_in, dict):
        problems.append("human_cover.hours: must map weekdays to hours like '08:00-17:00'")
        return HumanCover(timezone=str(timezone), hours={})
    hours: dict[str, tuple[tuple[dt.time, dt.time], ...]] = {}
    for day, spec in hours_in.items():
        if day not in WEEKDAYS:
            problems.append(f"human_cover.hours.{day}: not a weekday (use {', '.join(WEEKDAYS)})")
            continue
        ranges = []
        for text in [] if spec in (None, "closed") else (spec if isinstance(spec, list) else [spec]):
            match = _RANGE.match(str(text).strip())
            if not match:
                problems.append(
                    f"human_cover.hours.{day}: {text!r} is not a range like '08:00-17:00'"
                )
                continue
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start = dt.time(h1, m1)
            end = dt.time.max if (h2, m2) == (24, 0) else dt.time(min(h2, 23), m2)
            if h2 == 24 and m2 != 0:
                problems.append(f"human_cover.hours.{day}: {text!r} ends after midnight")
                continue
            if end <= start:
                problems.append(f"human_cover.hours.{day}: {text!r} ends before it starts")
                continue
            ranges.append((start, end))
        hours[day] = tuple(ranges)
    return HumanCover(timezone=str(timezone), hours=hours)


def _retention(value: Any, problems: list[str]) -> Retention:
    empty = Retention(0, 0, 0)
    if value is None:
        return empty
    if not isinstance(value, dict):
        problems.append("retention: must give " + ", ".join(sorted(_RETENTION_KEYS)))
        return empty
    for key in sorted(set(value) - _RETENTION_KEYS - set(_RETENTION_OPTIONAL)):
        problems.append(f"retention.{key}: unknown setting")
    numbers = {}
    for key in sorted(_RETENTION_KEYS):
        number = value.get(key)
        if number is None:
            problems.append(f"retention.{key}: missing")
        elif isinstance(number, bool) or not isinstance(number, int) or number <= 0:
            problems.append(f"retention.{key}: must be a whole number above 0, got {number!r}")
        numbers[key] = number if isinstance(number, int) else 0
    for key, default in _RETENTION_OPTIONAL.items():
        number = value.get(key, default)
        if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
            problems.append(f"retention.{key}: must be a whole number above 0, got {number!r}")
            number = default
        numbers[key] = number
    return Retention(**numbers)


def _sms(value: Any, problems: list[str]) -> SmsSettings:
    if value is None:
        return SmsSettings()
    if not isinstance(value, dict):
        problems.append("sms: must be a mapping with " + ", ".join(sorted(_SMS_KEYS)))
        return SmsSettings()
    for key in sorted(set(value) - _SMS_KEYS):
        problems.append(f"sms.{key}: unknown setting")
    budget = value.get("segment_budget", SmsSettings.segment_budget)
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= MAX_SEGMENT_BUDGET:
        problems.append(f"sms.segment_budget: must be a whole number from 1 to "
                        f"{MAX_SEGMENT_BUDGET}, got {budget!r}")
        budget = SmsSettings.segment_budget
    fold = value.get("fold_accents", SmsSettings.fold_accents)
    if not isinstance(fold, bool):
        problems.append(f"sms.fold_accents: must be true or false, got {fold!r}")
        fold = SmsSettings.fold_accents
    return SmsSettings(budget, fold)


def _handoff(value: Any, problems: list[str]) -> int:
    """New hand-off cases one channel may open in an hour (``handoff.max_new_cases_per_hour``)."""
    default = Deployment.max_new_cases_per_hour
    if value is None:
        return default
    if not isinstance(value, dict):
        problems.append("handoff: must be a mapping with " + ", ".join(sorted(_HANDOFF_KEYS)))
        return default
    for key in sorted(set(value) - _HANDOFF_KEYS):
        problems.append(f"handoff.{key}: unknown setting")
    cap = value.get("max_new_cases_per_hour", default)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 100_000:
        problems.append("handoff.max_new_cases_per_hour: must be a whole number from 1 to "
                        f"100000, got {cap!r}")
        return default
    return cap


def _figures(value: Any, problems: list[str]) -> int:
    """The smallest count aggregate figures show (``figures.min_cell``)."""
    default = Deployment.figures_min_cell
    if value is None:
        return default
    if not isinstance(value, dict):
        problems.append("figures: must be a mapping with " + ", ".join(sorted(_FIGURES_KEYS)))
        return default
    for key in sorted(set(value) - _FIGURES_KEYS):
        problems.append(f"figures.{key}: unknown setting")
    cell = value.get("min_cell", default)
    if isinstance(cell, bool) or not isinstance(cell, int) or not MIN_FIGURES_CELL <= cell <= 1000:
        problems.append(f"figures.min_cell: must be a whole number from {MIN_FIGURES_CELL} to "
                        f"1000, got {cell!r}")
        return default
    return cell


def _web_chat(value: Any, problems: list[str]) -> Optional[str]:
    """The web chat's quick-exit address: an https:// address or a path on this site."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append("web_chat: must be a mapping with " + ", ".join(sorted(_WEB_CHAT_KEYS)))
        return None
    for key in sorted(set(value) - _WEB_CHAT_KEYS):
        problems.append(f"web_chat.{key}: unknown setting")
    url = value.get("quick_exit_url")
    if url is None:
        return None
    if not isinstance(url, str) or not _QUICK_EXIT_URL.match(url.strip()):
        problems.append(f"web_chat.quick_exit_url: must be an https:// address or a path "
                        f"starting with / on this site, got {url!r}")
        return None
    return url.strip()


def _campaigns(value: Any, problems: list[str]) -> CampaignSettings:
    """The optional ``campaigns:`` section; every value has a default."""
    default = CampaignSettings()
    if value is None:
        return default
    if not isinstance(value, dict):
        problems.append("campaigns: must be a mapping with " + ", ".join(sorted(_CAMPAIGN_KEYS)))
        return default
    for key in sorted(set(value) - _CAMPAIGN_KEYS):
        problems.append(f"campaigns.{key}: unknown setting (expected one of "
                        f"{sorted(_CAMPAIGN_KEYS)})")
    given = value.get("sms_price_per_segment", default.sms_price_per_segment)
    try:
        if isinstance(given, bool) or not isinstance(given, (int, float, Decimal)):
            raise InvalidOperation
        price = Decimal(str(given))  # 0.0075 stays 0.0075, not the float's binary value
        if not price.is_finite() or price < 0:
            raise InvalidOperation
    except InvalidOperation:
        problems.append(f"campaigns.sms_price_per_segment: must be a number of 0 or more "
                        f"(the price of one SMS segment), got {given!r}")
        price = default.sms_price_per_segment
    currency = value.get("currency", default.currency)
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        problems.append(f"campaigns.currency: must be a 3-letter currency code in capitals "
                        f"like USD, got {currency!r}")
        currency = default.currency
    twilio = _rate(value, "twilio_messages_per_second", default.twilio_messages_per_second,
                   None, problems)
    telegram = _rate(value, "telegram_messages_per_second", default.telegram_messages_per_second,
                     MAX_TELEGRAM_PER_SECOND, problems)
    cap = value.get("max_per_week", default.max_per_week)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_CAMPAIGN_PER_WEEK:
        problems.append(f"campaigns.max_per_week: must be a whole number from 1 to "
                        f"{MAX_CAMPAIGN_PER_WEEK}, got {cap!r}")
        cap = default.max_per_week
    months = value.get("consent_months", default.consent_months)
    if (isinstance(months, bool) or not isinstance(months, int)
            or not 1 <= months <= MAX_CONSENT_MONTHS):
        problems.append(f"campaigns.consent_months: must be a whole number of months from 1 to "
                        f"{MAX_CONSENT_MONTHS}, got {months!r}")
        months = default.consent_months
    daytime = _daytime(value.get("daytime"), default.daytime, problems)
    return CampaignSettings(price, currency, twilio, telegram, cap, months, daytime)


def _daytime(value: Any, default: tuple[int, int], problems: list[str]) -> tuple[int, int]:
    """``campaigns.daytime``: "HH:MM-HH:MM" within one day, at least an hour long."""
    if value is None:
        return default
    match = _RANGE.match(str(value).strip())
    start = end = 0
    if match:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
    if not match or end > 24 * 60 or end - start < 60:
        problems.append(f"campaigns.daytime: must be the hours campaigns may send in, like "
                        f"'08:00-21:00' (within one day, an hour at least), got {value!r}")
        return default
    return start, end


def _rate(section: dict, key: str, default: float, most: Optional[float],
          problems: list[str]) -> float:
    """A messages-per-second setting: a number above 0 (and at most ``most``)."""
    rate = section.get(key, default)
    ok = (not isinstance(rate, bool) and isinstance(rate, (int, float))
          and rate == rate and 0 < rate < float("inf") and (most is None or rate <= most))
    if not ok:
        limit = f" and at most {most:g}" if most is not None else ""
        problems.append(f"campaigns.{key}: must be a number above 0{limit}, got {rate!r}")
        return default
    return float(rate)
