"""A campaign as an NGO writes it (YAML), validated against the deployment and the gazetteer.

``load_campaign(path, deployment, places)`` reads a campaign file and returns a frozen
``CampaignDefinition``, or raises ``CampaignError`` listing every problem found, each naming
its field (``texts.fr: 3 SMS segments, the deployment allows 2 (sms.segment_budget)``)::

    name: fake-job-offers-2026-12     # lowercase letters, digits, hyphens; unique
    texts:                            # per language; only the deployment's languages
      en: "..."
      fr: "..."
    audience:                         # optional
      languages: [en, fr]             # default: every language with a text
      areas: [NG008]                  # default: everywhere; place codes, admin-1/admin-2
                                      # p-codes or country codes of the gazetteer
      channels: [sms, telegram]       # default: both; [] with telegram_channel: the channel only
    window: {start: "09:00", end: "19:00"}   # the audience's local time; end after start,
                                      # within the deployment's campaigns.daytime
    cap_per_week: 2                   # optional, default (and at most) campaigns.max_per_week
    telegram_channel:                 # optional: also post once to the NGO's Telegram channel
      chat: "@example_ngo_channel"
      language: en

Texts are checked as they will be sent: for SMS after ``sms_friendly`` (typographic
punctuation and, if the deployment allows, accents folded into GSM-7), within the deployment's
``sms.segment_budget``; for Telegram within 4096 characters.

Every text sent to subscribers says how to stop, in words the assistant understands. For
SMS (audience channel ``sms``): one of the stop words of its language in
``channels/sms_keywords.yml`` or of every language (STOP; ARRET, DESABONNER... in French,
BAJA, PARAR... in Spanish, توقف... in Arabic), found as a whole word in any case, accents and
punctuation ignored as the SMS channel ignores them. For Telegram (channel ``telegram``): the
``/stop`` command, the only way to end a subscription there (a typed STOP goes to the model,
which reads it as "stop the questions"); ``/stop`` counts on SMS too, where it is STOP. A
text missing it: ``texts.fr: say how to stop (one of: STOP, ARRET, ...)``, with both
channels ``texts.fr: say how to stop (on SMS one of: STOP, ARRET, ...; on Telegram /stop,
which SMS understands too)``. The post to a Telegram channel (``telegram_channel``) needs
none: no one is subscribed through it.

The definition's JSON form (``to_json`` / ``from_json``) is what ``campaigns.definition``
stores and what the dispatcher reads::

    {"name": str, "texts": {lang: text},
     "audience": {"languages": [..], "areas": [..] or null, "channels": [..]},
     "area_codes": [..] or null,     # the areas expanded to every gazetteer place code inside
                                     # them, and the areas themselves (a subscriber's area may
                                     # be a country code): what subscribers.area is compared with
     "window": {"start": "HH:MM", "end": "HH:MM"}, "cap_per_week": int,
     "telegram_channel": {"chat": str, "language": str} or null,
     "consent_reminder": true}       # only on the consent reminders (absent: false)

The consent reminders (``bot.campaigns.reminders``, ``helpline campaign remind``) are
definitions too, built from the message catalog and validated by ``parse_campaign`` with
``consent_reminder=True``: their names start with ``consent-reminder-`` (``REMINDER_PREFIX``,
which a campaign file may not use), and the dispatcher does not hold them back for the weekly
cap (``cap_per_week`` is stored all the same; they still count towards the cap of the other
campaigns).

The sending window is in the recipient's local time: the time zone of the country of the
subscriber's coarse area (``timezone_for_area``), else the deployment's ``human_cover``
time zone (also used for the Telegram channel's post).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union
from zoneinfo import ZoneInfo

import yaml

from bot.campaigns.models import SUBSCRIBER_CHANNELS
from bot.deployment import Deployment
from bot.services.lookup import COUNTRY_TIMEZONES
from bot.services.places import Gazetteer, Place

LANGUAGE_NAMES = {"en": "English", "fr": "French", "ar": "Arabic", "es": "Spanish"}
TELEGRAM_MAX_CHARS = 4096
MAX_NAME_LENGTH = 80  # campaigns.name
REMINDER_PREFIX = "consent-reminder-"  # the names of the consent reminders' daily campaigns
_KEYS = ("name", "texts", "audience", "window", "cap_per_week", "telegram_channel")
_AUDIENCE_KEYS = ("languages", "areas", "channels")
_WINDOW_KEYS = ("start", "end")
_TELEGRAM_KEYS = ("chat", "language")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
# A channel's public username (@name, 5-32 letters, digits, underscores) or its numeric id.
_TELEGRAM_CHAT = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{4,31}|-100[0-9]{5,20})$")


class CampaignError(ValueError):
    """A campaign cannot be used; ``problems`` lists every reason, each naming its field."""

    def __init__(self, problems: list[str], path: Optional[Path] = None):
        self.problems = list(problems)
        self.path = path
        if path is not None:
            listed = "\n".join(f"  - {p}" for p in self.problems)
            message = f"campaign file {path} is not valid:\n{listed}"
        elif len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = "the campaign is not valid:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


@dataclass(frozen=True)
class TelegramChannelPost:
    """One post to a Telegram channel the NGO owns (no subscriber is stored for it)."""

    chat: str
    language: str


@dataclass(frozen=True)
class CampaignDefinition:
    """A validated campaign. ``texts`` must not be changed (a dict only for JSON's sake)."""

    name: str
    texts: Mapping[str, str]
    languages: tuple[str, ...]  # the audience's languages; each has a text
    areas: Optional[tuple[str, ...]]  # as written; None: everywhere
    area_codes: Optional[tuple[str, ...]]  # the areas, their gazetteer place codes; None: everywhere
    channels: tuple[str, ...]  # subscriber channels: sms, telegram (may be empty)
    window_start: dt.time
    window_end: dt.time
    cap_per_week: int
    telegram_channel: Optional[TelegramChannelPost] = None
    # a consent reminder (bot.campaigns.reminders): not held back by the weekly cap
    consent_reminder: bool = False
    # sha256 of the file it was read from (not part of the JSON; campaigns.file_hash keeps it)
    file_hash: str = field(default="", compare=False)

    # -- the texts as sent -----------------------------------------------------------------

    def sms_text(self, language: str, fold_accents: bool = True) -> str:
        """The SMS as it is sent: ``sms_friendly`` of the text (GSM-7 where only punctuation
        or, with ``fold_accents``, accents keep it out)."""
        from channels.sms_text import sms_friendly

        return sms_friendly(self.texts[language], fold_accents)

    def telegram_text(self, language: str) -> str:
        """The Telegram message as it is sent: the text itself, plain (no markup)."""
        return self.texts[language]

    # -- the sending window ------------------------------------------------------------------

    def in_window(self, moment: dt.datetime, timezone: str) -> bool:
        """Whether ``moment`` (aware) is inside the window in ``timezone``'s local time."""
        local = moment.astimezone(ZoneInfo(timezone)).time()
        return self.window_start <= local < self.window_end

    def next_window(self, moment: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime]:
        """The window now open or the next one, as (start, end) in ``timezone``'s local time;
        the start is ``moment`` itself (local) when the window is open now."""
        zone = ZoneInfo(timezone)
        local = moment.astimezone(zone)
        for days in range(3):
            day = local.date() + dt.timedelta(days=days)
            start = dt.datetime.combine(day, self.window_start, tzinfo=zone)
            end = dt.datetime.combine(day, self.window_end, tzinfo=zone)
            if start <= local < end:
                return local, end
            if local < start:
                return start, end
        raise AssertionError("a daily window always opens within two days")  # pragma: no cover

    # -- JSON (campaigns.definition, read by the dispatcher) -----------------------------------

    def to_dict(self) -> dict:
        data = {
            "name": self.name,
            "texts": dict(self.texts),
            "audience": {
                "languages": list(self.languages),
                "areas": None if self.areas is None else list(self.areas),
                "channels": list(self.channels),
            },
            "area_codes": None if self.area_codes is None else list(self.area_codes),
            "window": {"start": self.window_start.strftime("%H:%M"),
                       "end": self.window_end.strftime("%H:%M")},
            "cap_per_week": self.cap_per_week,
            "telegram_channel": (None if self.telegram_channel is None else
                                 {"chat": self.telegram_channel.chat,
                                  "language": self.telegram_channel.language}),
        }
        if self.consent_reminder:  # absent otherwise: the JSON of campaign files is unchanged
            data["consent_reminder"] = True
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: Union[str, bytes], file_hash: str = "") -> "CampaignDefinition":
        """The definition stored by ``to_json`` (not validated again: it was when queued).

        Raises:
            CampaignError: the text is not a stored definition.
        """
        try:
            data = json.loads(text)
            audience, window, post = data["audience"], data["window"], data["telegram_channel"]
            areas, codes = audience["areas"], data["area_codes"]
            return cls(
                name=str(data["name"]),
                texts={str(k): str(v) for k, v in data["texts"].items()},
                languages=tuple(audience["languages"]),
                areas=None if areas is None else tuple(areas),
                area_codes=None if codes is None else tuple(codes),
                channels=tuple(audience["channels"]),
                window_start=_parse_time(window["start"]),
                window_end=_parse_time(window["end"]),
                cap_per_week=int(data["cap_per_week"]),
                telegram_channel=(None if post is None
                                  else TelegramChannelPost(str(post["chat"]), str(post["language"]))),
                consent_reminder=data.get("consent_reminder", False) is True,
                file_hash=file_hash,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CampaignError([f"the stored campaign definition is not valid ({exc!r})"]) from None


def _parse_time(text: str) -> dt.time:
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"{text!r} is not HH:MM")
    return dt.time(int(match.group(1)), int(match.group(2)))


# -- places and time zones ---------------------------------------------------------------------

PlacesLike = Union[Gazetteer, Mapping[str, Place], Iterable[Place]]


def _places_of(places: PlacesLike) -> dict[str, Place]:
    if isinstance(places, Gazetteer):
        return places.places
    if isinstance(places, Mapping):
        return dict(places)
    return {place.code: place for place in places}


def expand_area(area: str, places: PlacesLike) -> list[str]:
    """Every gazetteer place code inside ``area`` (a place code, an admin-1 or admin-2
    p-code, or a country code), the place itself included; [] when the gazetteer has none."""
    return sorted(code for code, place in _places_of(places).items()
                  if area in (code, place.country, place.admin1_pcode, place.admin2_pcode))


def timezone_for_area(area: Optional[str], places: PlacesLike, default: str) -> str:
    """The time zone of a subscriber's coarse area: its country's (``COUNTRY_TIMEZONES``),
    else ``default`` (the deployment's ``human_cover.timezone``)."""
    place = _places_of(places).get(area) if area else None
    country = place.country if place is not None else (area if area in COUNTRY_TIMEZONES else None)
    return COUNTRY_TIMEZONES.get(country, default) if country else default


# -- loading -----------------------------------------------------------------------------------


def file_hash_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def load_campaign(path: Union[str, Path], deployment: Deployment,
                  places: PlacesLike) -> CampaignDefinition:
    """Reads and validates a campaign file.

    Raises:
        CampaignError: listing every problem found (or that the file cannot be read).
    """
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CampaignError([f"cannot read the file: {exc.strerror}"], path) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise CampaignError(["the file is not UTF-8 text"], path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CampaignError([f"not valid YAML: {exc}"], path) from None
    return parse_campaign(data, deployment, places, path, file_hash_of(content))


def parse_campaign(data: Any, deployment: Deployment, places: PlacesLike,
                   path: Optional[Path] = None, file_hash: str = "", *,
                   consent_reminder: bool = False) -> CampaignDefinition:
    """Validates already-parsed YAML; see ``load_campaign``. ``consent_reminder``: the
    definition of a consent reminder (``bot.campaigns.reminders``), whose name starts with
    ``REMINDER_PREFIX`` (refused otherwise)."""
    if not isinstance(data, dict):
        raise CampaignError([f"the file must be a mapping with {', '.join(_KEYS)}"], path)
    problems: list[str] = []
    _unknown_keys(data, _KEYS, "", problems)
    for key in ("name", "texts", "window"):
        if data.get(key) is None:
            problems.append(f"{key}: missing")
    name = _name(data.get("name"), problems, consent_reminder)
    texts = _texts(data.get("texts"), deployment, problems)
    # languages whose text was given but refused: reported once, not again as missing
    # (no texts at all: that one problem, not one per language)
    given = (set(data["texts"]) if isinstance(data.get("texts"), dict) and data["texts"]
             else set(deployment.languages))
    audience = data.get("audience", {})
    if audience is None:
        audience = {}
    if not isinstance(audience, dict):
        problems.append("audience: must be a mapping with " + ", ".join(_AUDIENCE_KEYS))
        audience = {}
    _unknown_keys(audience, _AUDIENCE_KEYS, "audience.", problems)
    languages = _languages(audience, texts, given, deployment, problems)
    areas, area_codes = _areas(audience, places, problems)
    channels = _channels(audience, problems)
    window = _window(data["window"], problems) if data.get("window") is not None else None
    if window is not None:
        _check_daytime(window, deployment, problems)
    cap = _cap(data, deployment, problems)
    post = _telegram_channel(data.get("telegram_channel"), texts, given, deployment, problems)
    if "channels" in audience and channels == () and post is None:
        problems.append("audience.channels: empty and there is no telegram_channel: the "
                        "campaign would reach no one")
    _check_lengths(texts, languages, channels, post, deployment, problems)
    _check_stop(texts, languages, channels, deployment, problems)
    if problems:
        raise CampaignError(problems, path)
    assert window is not None
    return CampaignDefinition(name=name, texts=texts, languages=languages, areas=areas,
                              area_codes=area_codes, channels=channels, window_start=window[0],
                              window_end=window[1], cap_per_week=cap, telegram_channel=post,
                              consent_reminder=consent_reminder, file_hash=file_hash)


def _unknown_keys(data: dict, known: tuple[str, ...], where: str, problems: list[str]) -> None:
    for key in data:
        if key not in known:
            problems.append(f"{where}{key}: unknown key (expected one of {', '.join(known)})")


def _name(value: Any, problems: list[str], consent_reminder: bool = False) -> str:
    if value is None:
        return ""
    if (not isinstance(value, str) or not _NAME.match(value)
            or len(value) > MAX_NAME_LENGTH):
        problems.append(f"name: {value!r} must be lowercase letters, digits and hyphens, at most "
                        f"{MAX_NAME_LENGTH} characters (like fake-job-offers-2026-12)")
        return ""
    if value.startswith(REMINDER_PREFIX) != consent_reminder:
        problems.append(f"name: {value!r}: names starting with {REMINDER_PREFIX!r} are kept for "
                        f"the consent reminders (helpline campaign remind)" if not consent_reminder
                        else f"name: {value!r}: a consent reminder's name starts with "
                             f"{REMINDER_PREFIX!r}")
        return ""
    return value


def _language_list(deployment: Deployment) -> str:
    return ", ".join(deployment.languages)


def _texts(value: Any, deployment: Deployment, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        problems.append("texts: must map languages to texts, like en: \"...\"")
        return {}
    texts: dict[str, str] = {}
    for language, text in value.items():
        where = f"texts.{language}"
        if language not in deployment.languages:
            problems.append(f"{where}: {language!r} is not one of the deployment's languages "
                            f"({_language_list(deployment)})")
            continue
        if not isinstance(text, str):
            problems.append(f"{where}: must be a text, got {text!r}")
            continue
        if not text.strip():
            problems.append(f"{where}: empty")
            continue
        texts[language] = text.strip()
    return texts


def _languages(audience: dict, texts: dict[str, str], given: set, deployment: Deployment,
               problems: list[str]) -> tuple[str, ...]:
    if "languages" not in audience or audience["languages"] is None:
        return tuple(lang for lang in deployment.languages if lang in texts)
    value = audience["languages"]
    if not isinstance(value, list) or not value:
        problems.append("audience.languages: must be a non-empty list of language codes "
                        "(leave it out for every language with a text)")
        return ()
    languages: list[str] = []
    for index, language in enumerate(value):
        where = f"audience.languages[{index}]"
        if language not in deployment.languages:
            problems.append(f"{where}: {language!r} is not one of the deployment's languages "
                            f"({_language_list(deployment)})")
        elif language in languages:
            problems.append(f"{where}: {language!r} is listed twice")
        else:
            languages.append(language)
            if language not in given:
                problems.append(f"texts: no text for {language!r} (the audience includes "
                                f"{LANGUAGE_NAMES.get(language, language)} speakers)")
    return tuple(languages)


def _areas(audience: dict, places: PlacesLike, problems: list[str]
           ) -> tuple[Optional[tuple[str, ...]], Optional[tuple[str, ...]]]:
    if "areas" not in audience or audience["areas"] is None:
        return None, None
    value = audience["areas"]
    if not isinstance(value, list) or not value:
        problems.append("audience.areas: must be a non-empty list of place codes "
                        "(leave it out for every area)")
        return None, None
    known = _places_of(places)
    areas: list[str] = []
    codes: set[str] = set()
    for index, area in enumerate(value):
        area = str(area)
        inside = expand_area(area, known)
        if not inside:
            problems.append(f"audience.areas: {area!r} is not a place code of the gazetteer"
                            + _suggestion(area, places, known))
            continue
        if area in areas:
            problems.append(f"audience.areas[{index}]: {area!r} is listed twice")
            continue
        areas.append(area)
        codes.update(inside)
        codes.add(area)  # a subscriber's area may be the code itself: a country ("NG")
    return tuple(areas), tuple(sorted(codes))


def _suggestion(area: str, places: PlacesLike, known: dict[str, Place]) -> str:
    """" (did you mean 'NG008'?)" for a code in other capitals or a place's name."""
    folded = area.casefold()
    candidates = {c for place in known.values()
                  for c in (place.code, place.country, place.admin1_pcode, place.admin2_pcode)
                  if c and c.casefold() == folded}
    if not candidates and isinstance(places, Gazetteer):
        candidates = {place.code for place in places.named(area)}
    if not candidates:
        return " (nor an admin-1 / admin-2 p-code or country code of its places)"
    return " (did you mean " + " or ".join(repr(c) for c in sorted(candidates)) + "?)"


def _channels(audience: dict, problems: list[str]) -> tuple[str, ...]:
    if "channels" not in audience or audience["channels"] is None:
        return SUBSCRIBER_CHANNELS
    value = audience["channels"]
    if not isinstance(value, list):
        problems.append(f"audience.channels: must be a list from {', '.join(SUBSCRIBER_CHANNELS)}")
        return SUBSCRIBER_CHANNELS
    channels: list[str] = []
    for index, channel in enumerate(value):
        if channel not in SUBSCRIBER_CHANNELS:
            problems.append(f"audience.channels[{index}]: {channel!r} is not a channel campaigns "
                            f"send on ({', '.join(SUBSCRIBER_CHANNELS)}; a Telegram channel "
                            f"is telegram_channel)")
        elif channel in channels:
            problems.append(f"audience.channels[{index}]: {channel!r} is listed twice")
        else:
            channels.append(channel)
    return tuple(channels)


def _time(value: Any, where: str, problems: list[str]) -> Optional[dt.time]:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 19:00 as the sexagesimal number 1140
        problems.append(f"{where}: {value!r} is not a time (HH:MM); put the time in quotes, "
                        f"like \"19:00\"")
        return None
    if not isinstance(value, str) or not _TIME.match(value.strip()):
        problems.append(f"{where}: {value!r} is not a time (HH:MM)")
        return None
    return _parse_time(value.strip())


def _window(value: Any, problems: list[str]) -> Optional[tuple[dt.time, dt.time]]:
    if not isinstance(value, dict):
        problems.append("window: must give start and end, like {start: \"09:00\", end: \"19:00\"} "
                        "(the audience's local time)")
        return None
    _unknown_keys(value, _WINDOW_KEYS, "window.", problems)
    times = []
    for key in _WINDOW_KEYS:
        if key not in value:
            problems.append(f"window.{key}: missing")
            times.append(None)
        else:
            times.append(_time(value[key], f"window.{key}", problems))
    start, end = times
    if start is None or end is None:
        return None
    if end <= start:
        problems.append(f"window.end: {end:%H:%M} is not after window.start {start:%H:%M} "
                        f"(a window is within one day)")
        return None
    return start, end


def _check_daytime(window: tuple[dt.time, dt.time], deployment: Deployment,
                   problems: list[str]) -> None:
    """The consent message promises "never at night": a window stays within the deployment's
    ``campaigns.daytime``."""
    first, last = deployment.campaigns.daytime
    start = window[0].hour * 60 + window[0].minute
    end = window[1].hour * 60 + window[1].minute
    if start < first or end > last:
        problems.append(f"window: {window[0]:%H:%M}-{window[1]:%H:%M} reaches into the night; "
                        f"subscribers were promised no message outside "
                        f"{deployment.campaigns.daytime_text} (campaigns.daytime, their local "
                        f"time)")


def _cap(data: dict, deployment: Deployment, problems: list[str]) -> int:
    most = deployment.campaigns.max_per_week
    value = data.get("cap_per_week", most)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        problems.append(f"cap_per_week: must be a whole number from 1 to {most} (the "
                        f"deployment's campaigns.max_per_week), got {value!r}")
        return most
    return value


def _telegram_channel(value: Any, texts: dict[str, str], given: set, deployment: Deployment,
                      problems: list[str]) -> Optional[TelegramChannelPost]:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append("telegram_channel: must give chat and language")
        return None
    _unknown_keys(value, _TELEGRAM_KEYS, "telegram_channel.", problems)
    chat, language = value.get("chat"), value.get("language")
    ok = True
    if chat is None:
        problems.append("telegram_channel.chat: missing")
        ok = False
    else:
        chat = str(chat).strip()
        if not _TELEGRAM_CHAT.match(chat):
            problems.append(f"telegram_channel.chat: {chat!r} is not a channel's @username or "
                            f"numeric id (-100...)")
            ok = False
    if language is None:
        problems.append("telegram_channel.language: missing")
        ok = False
    elif language not in deployment.languages:
        problems.append(f"telegram_channel.language: {language!r} is not one of the "
                        f"deployment's languages ({_language_list(deployment)})")
        ok = False
    elif language not in texts:
        ok = False
        if language not in given:
            problems.append(f"texts: no text for {language!r} (telegram_channel.language is "
                            f"{LANGUAGE_NAMES.get(language, language)})")
    return TelegramChannelPost(chat, language) if ok else None


def _check_lengths(texts: dict[str, str], languages: tuple[str, ...], channels: tuple[str, ...],
                   post: Optional[TelegramChannelPost], deployment: Deployment,
                   problems: list[str]) -> None:
    """Each text that will be sent fits its channel: SMS within the segment budget (after
    ``sms_friendly``), Telegram within 4096 characters."""
    from channels.segments import count_segments
    from channels.sms_text import sms_friendly

    budget = deployment.sms.segment_budget
    telegram = set(languages) if "telegram" in channels else set()
    if post is not None:
        telegram.add(post.language)
    for language in deployment.languages:
        text = texts.get(language)
        if text is None:
            continue
        if "sms" in channels and language in languages:
            count = count_segments(sms_friendly(text, deployment.sms.fold_accents))
            if count.segments > budget:
                problems.append(f"texts.{language}: {count.segments} SMS segments, the deployment "
                                f"allows {budget} (sms.segment_budget)")
        if language in telegram:
            length = len(text.encode("utf-16-le")) // 2  # Telegram counts UTF-16 units
            if length > TELEGRAM_MAX_CHARS:
                problems.append(f"texts.{language}: {length} characters, Telegram allows "
                                f"{TELEGRAM_MAX_CHARS} in a message")


# How to stop: on Telegram only the /stop command ends a subscription (channels.telegram); a
# typed STOP goes to the model, which reads it as "stop the questions" (intent stop).
TELEGRAM_STOP = "/stop"
_TELEGRAM_STOP = re.compile(r"(?<![\w/])/stop(?:@\w+)?(?!\w)", re.IGNORECASE)


def says_how_to_stop_by_sms(text: str, words: Iterable[str]) -> bool:
    """Whether ``text`` contains one of the (normalised) SMS stop ``words`` as a whole word
    written in capitals (STOP, ARRÊT, BAJA; Arabic has no capitals), compared as the SMS
    channel compares: lower case, accents and punctuation dropped (``bot.keywords.normalise``).
    Capitals because some stop words are everyday words: "to end these messages" is not an
    instruction, "reply END" is."""
    from bot.keywords import normalise

    tokens = [normalise(token) if token == token.upper() else "|" for token in text.split()]
    padded = f" {' '.join(tokens)} "
    return any(f" {word} " in padded for word in words)


def says_how_to_stop_on_telegram(text: str) -> bool:
    """Whether ``text`` names the /stop command (any case, also /stop@botname)."""
    return _TELEGRAM_STOP.search(text) is not None


def _check_stop(texts: dict[str, str], languages: tuple[str, ...], channels: tuple[str, ...],
                deployment: Deployment, problems: list[str]) -> None:
    """Each text sent to subscribers says how to stop in words the assistant understands: one
    of the language's stop words of ``channels/sms_keywords.yml`` (or those of every language:
    STOP), which end a subscription on SMS and, typed by a subscriber, on Telegram; a text for
    Telegram only may give the /stop command instead. The post to a Telegram channel has no
    subscribers and needs none."""
    from channels.sms_keywords import stop_words

    if "sms" not in channels and "telegram" not in channels:
        return
    for language in deployment.languages:
        text = texts.get(language)
        if text is None or language not in languages:
            continue
        words = stop_words(language)
        if says_how_to_stop_by_sms(text, words):
            continue
        if "sms" not in channels and says_how_to_stop_on_telegram(text):
            continue
        accepted = ", ".join(word.upper() for word in words)
        if "sms" in channels:
            problems.append(f"texts.{language}: say how to stop (one of, in capitals: "
                            f"{accepted})")
        else:
            problems.append(f"texts.{language}: say how to stop (one of, in capitals: "
                            f"{accepted}; or {TELEGRAM_STOP})")