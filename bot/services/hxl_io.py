"""Import and export of the services directory as HXL-tagged CSV.

The file is a CSV whose first rows may be human headers, followed by a row of HXL hashtags
(the convention clusters use for service mapping and 3W data). Columns, by hashtag:

| hashtag | required | meaning |
| --- | --- | --- |
| `#org+name` | yes | organisation running the service |
| `#org+code` | no | stable organisation key (default: derived from the name) |
| `#service+code` | yes | stable, unique key of the service (what makes re-imports update) |
| `#service+name` | yes | name of the service |
| `#service+type` | yes | categories, `;`-separated, from data/services/categories.yml |
| `#description` | no | what it offers, in a sentence |
| `#country+code` | yes | ISO 3166 alpha-2 |
| `#adm1+name`, `#adm1+code`, `#adm2+name`, `#adm2+code` | no | admin areas and P-codes |
| `#loc+name` | no | camp, town or neighbourhood |
| `#geo+lat`, `#geo+lon` | yes | WGS 84 decimal degrees |
| `#contact+phone` | no | how to call |
| `#access+type` | no | `walk_in`, `phone`, `hotline`, `;`-separated |
| `#meta+languages` | no | languages spoken, ISO 639-1, `;`-separated |
| `#beneficiary+type` | no | who is served: `women`, `men`, `children` (default: all) |
| `#beneficiary+age+min`, `#beneficiary+age+max` | no | age range served |
| `#meta+hours` | no | opening hours (see bot/services/hours.py) |
| `#date+verified` | no | when the entry was last checked, YYYY-MM-DD |

Rows are validated one by one; a bad row is reported with its line number and reason and
skipped, the others are imported. Re-importing the same file changes nothing (upsert by
``#service+code`` and organisation code). ``export_file`` writes the same format back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.services.categories import CATEGORIES_FILE, sync_categories
from bot.services.hours import HoursError, parse_hours
from bot.services.models import (
    Organisation, Service, ServiceCategory, ServiceLanguage, bump_directory_version,
)
from bot.spreadsheet import plain_cell, safe_row

ACCESS = ("walk_in", "phone", "hotline")
GROUPS = ("women", "men", "children")
LANGUAGE = re.compile(r"^[a-z]{2}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")

# field -> (hashtag, required)
COLUMNS: dict[str, tuple[str, bool]] = {
    "org_name": ("#org+name", True),
    "org_code": ("#org+code", False),
    "code": ("#service+code", True),
    "name": ("#service+name", True),
    "categories": ("#service+type", True),
    "description": ("#description", False),
    "country": ("#country+code", True),
    "admin1_name": ("#adm1+name", False),
    "admin1_pcode": ("#adm1+code", False),
    "admin2_name": ("#adm2+name", False),
    "admin2_pcode": ("#adm2+code", False),
    "place_name": ("#loc+name", False),
    "lat": ("#geo+lat", True),
    "lon": ("#geo+lon", True),
    "phone": ("#contact+phone", False),
    "access": ("#access+type", False),
    "languages": ("#meta+languages", False),
    "served": ("#beneficiary+type", False),
    "age_min": ("#beneficiary+age+min", False),
    "age_max": ("#beneficiary+age+max", False),
    "hours": ("#meta+hours", False),
    "last_verified": ("#date+verified", False),
}
HUMAN_HEADERS = {
    "org_name": "Organisation", "org_code": "Organisation code", "code": "Service code",
    "name": "Service", "categories": "Categories", "description": "Description",
    "country": "Country", "admin1_name": "Admin 1", "admin1_pcode": "Admin 1 P-code",
    "admin2_name": "Admin 2", "admin2_pcode": "Admin 2 P-code", "place_name": "Place",
    "lat": "Latitude", "lon": "Longitude", "phone": "Phone", "access": "Access",
    "languages": "Languages", "served": "Who is served", "age_min": "Minimum age",
    "age_max": "Maximum age", "hours": "Opening hours", "last_verified": "Last verified",
}
LIMITS = {"org_name": 200, "org_code": 80, "name": 200, "description": 500, "admin1_name": 120,
          "admin1_pcode": 32, "admin2_name": 120, "admin2_pcode": 32, "place_name": 120,
          "phone": 40, "hours": 200}


class DirectoryFileError(ValueError):
    """The file as a whole cannot be imported (encoding, no hashtags, missing columns)."""


@dataclass(frozen=True)
class ServiceRecord:
    """One validated row, normalised."""

    org_name: str
    org_code: str
    code: str
    name: str
    categories: tuple[str, ...]
    description: str
    country: str
    admin1_name: str
    admin1_pcode: str
    admin2_name: str
    admin2_pcode: str
    place_name: str
    lat: float
    lon: float
    phone: str
    walk_in: bool
    by_phone: bool
    hotline: bool
    languages: tuple[str, ...]
    serves_women: bool
    serves_men: bool
    serves_children: bool
    age_min: Optional[int]
    age_max: Optional[int]
    hours: str
    last_verified: Optional[dt.date]


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    categories_added: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rejected(self) -> int:
        return len({line for line, _ in self.problems})

    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        return (f"{self.rows} rows: {self.created} {verb} created, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.rejected} rejected")


def slug(text: str) -> str:
    from unidecode import unidecode

    return re.sub(r"[^a-z0-9]+", "-", unidecode(text).lower()).strip("-")[:80] or "org"


def _split(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[;,]", value or "") if v.strip()]


def validate_row(values: dict[str, str], categories: set[str]) -> tuple[Optional[ServiceRecord], list[str]]:
    """Checks one row (field -> text); returns the record or the reasons it is refused."""
    problems: list[str] = []
    get = lambda key: (values.get(key) or "").strip()  # noqa: E731
    for key, (tag, required) in COLUMNS.items():
        if required and not get(key):
            problems.append(f"{tag} is empty")
        if key in LIMITS and len(get(key)) > LIMITS[key]:
            problems.append(f"{tag} is longer than {LIMITS[key]} characters")
    code = get("code")
    if code and not CODE.match(code):
        problems.append(f"#service+code {code!r}: use letters, digits, '.', '_', '-'")
    org_code = get("org_code") or slug(get("org_name"))
    if get("org_code") and not CODE.match(org_code):
        problems.append(f"#org+code {org_code!r}: use letters, digits, '.', '_', '-'")
    coordinates = []
    for key, low, high in (("lat", -90, 90), ("lon", -180, 180)):
        text = get(key)
        try:
            number = float(text.replace(",", ".")) if text else None
        except ValueError:
            number = None
            problems.append(f"{COLUMNS[key][0]} {text!r} is not a number")
        if number is not None and (number != number or not low <= number <= high):
            problems.append(f"{COLUMNS[key][0]} {text!r} is outside {low}..{high}")
            number = None
        coordinates.append(number)
    if coordinates == [0.0, 0.0]:
        problems.append("#geo+lat/#geo+lon 0,0 is not a real place (missing coordinates?)")
    wanted = _split(get("categories"))
    unknown = [c for c in wanted if c not in categories]
    if unknown:
        problems.append(f"unknown category {', '.join(map(repr, unknown))} "
                        f"(known: data/services/categories.yml)")
    country = get("country").upper()
    if country and not COUNTRY.match(country):
        problems.append(f"#country+code {get('country')!r}: use ISO 3166 alpha-2, e.g. NG")
    access = [a.lower().replace("-", "_").replace(" ", "_") for a in _split(get("access"))]
    if any(a not in ACCESS for a in access):
        problems.append(f"#access+type {get('access')!r}: use {', '.join(ACCESS)}")
    languages = [lang.lower() for lang in _split(get("languages"))]
    if any(not LANGUAGE.match(lang) for lang in languages):
        problems.append(f"#meta+languages {get('languages')!r}: use two-letter codes, e.g. en;ar")
    served = [g.lower() for g in _split(get("served"))] or list(GROUPS)
    if any(g not in GROUPS for g in served):
        problems.append(f"#beneficiary+type {get('served')!r}: use {', '.join(GROUPS)}")
    ages = []
    for key in ("age_min", "age_max"):
        text = get(key)
        if text and not (text.isdigit() and int(text) <= 120):
            problems.append(f"{COLUMNS[key][0]} {text!r} is not an age")
            text = ""
        ages.append(int(text) if text else None)
    if ages[0] is not None and ages[1] is not None and ages[0] > ages[1]:
        problems.append("#beneficiary+age+min is above #beneficiary+age+max")
    try:
        parse_hours(get("hours"))
    except HoursError as exc:
        problems.append(f"#meta+hours: {exc}")
    verified = None
    if get("last_verified"):
        try:
            verified = dt.date.fromisoformat(get("last_verified"))
        except ValueError:
            problems.append(f"#date+verified {get('last_verified')!r}: use YYYY-MM-DD")
    if problems:
        return None, problems
    return ServiceRecord(
        org_name=get("org_name"), org_code=org_code, code=code, name=get("name"),
        categories=tuple(sorted(set(wanted))), description=get("description"), country=country,
        admin1_name=get("admin1_name"), admin1_pcode=get("admin1_pcode"),
        admin2_name=get("admin2_name"), admin2_pcode=get("admin2_pcode"),
        place_name=get("place_name"), lat=round(coordinates[0], 6), lon=round(coordinates[1], 6),
        phone=get("phone"), walk_in="walk_in" in access, by_phone="phone" in access,
        hotline="hotline" in access, languages=tuple(sorted(set(languages))),
        serves_women="women" in served, serves_men="men" in served,
        serves_children="children" in served, age_min=ages[0], age_max=ages[1],
        hours=" ".join(get("hours").split()), last_verified=verified,
    ), []


def read_text(path: Path) -> str:
    """The file as text; refuses empty files and text that is not UTF-8, saying where."""
    data = path.read_bytes()
    if not data.strip():
        raise DirectoryFileError(f"{path.name}: the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DirectoryFileError(
            f"{path.name}: not UTF-8 text (byte {exc.start}, line {line}); save it as "
            f"'CSV UTF-8' and import again"
        ) from None


def read_rows(path: Path, columns: dict[str, tuple[str, bool]] = COLUMNS
              ) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, field -> text) for each data row of an HXL-tagged CSV.

    ``columns`` maps each field to its hashtag and whether it is required; a hashtag matches a
    column with exactly its attributes (``#loc+name`` is not ``#loc+name+i_fr``).
    """
    import hxl
    import hxl.input

    text = read_text(path)
    try:
        source = hxl.data(io.BytesIO(text.encode("utf-8")), hxl.input.InputOptions(encoding="utf-8"))
        found_columns = source.columns
    except hxl.input.HXLTagsNotFoundException:
        raise DirectoryFileError(f"{path.name}: no row of HXL hashtags (#org+name, ...) in the first "
                           f"25 rows") from None
    except hxl.input.HXLException as exc:
        raise DirectoryFileError(f"{path.name}: cannot read it as HXL CSV ({exc})") from None
    patterns = {key: hxl.model.TagPattern.parse(tag) for key, (tag, _) in columns.items()}
    positions: dict[str, int] = {}
    for key, pattern in patterns.items():
        for index, column in enumerate(found_columns):
            if column.tag and pattern.match(column) and len(column.attributes) == len(pattern.include_attributes):
                positions[key] = index
                break
    missing = [tag for key, (tag, required) in columns.items()
               if required and key not in positions]
    if missing:
        raise DirectoryFileError(f"{path.name}: missing column(s) {', '.join(missing)}")
    for row in source:
        values = row.values
        # An exported file's cells may carry the quote that keeps spreadsheets from running
        # them as formulas (bot.spreadsheet): taken off, so export and import round-trip.
        yield row.source_row_number + 1, {
            key: (plain_cell(values[i]) if i < len(values) and values[i] is not None else "")
            for key, i in positions.items()
        }


def _fields(record: ServiceRecord) -> dict:
    data = asdict(record)
    for key in ("org_name", "org_code", "categories", "languages"):
        data.pop(key)
    return data


def import_file(session: Session, path: Path, dry_run: bool = False,
                progress: Optional[Callable[[int], None]] = None,
                categories_file: Path = CATEGORIES_FILE) -> ImportReport:
    """Validates and upserts every row of ``path``; commits unless ``dry_run``.

    The categories in ``categories_file`` are added to the database first, so that a new
    category is one line of YAML.
    """
    report = ImportReport(dry_run=dry_run)
    report.categories_added = sync_categories(session, categories_file)
    session.flush()
    categories = set(session.execute(sa.select(ServiceCategory.code)).scalars())
    category_rows = {c.code: c for c in session.execute(sa.select(ServiceCategory)).scalars()}
    organisations = {o.code: o for o in session.execute(sa.select(Organisation)).scalars()}
    existing = {s.code: s for s in session.execute(sa.select(Service)).scalars()}
    seen: dict[str, int] = {}
    for line, values in read_rows(path):
        report.rows += 1
        if progress:
            progress(1)
        record, problems = validate_row(values, categories)
        if record is not None and record.code in seen:
            problems = [f"duplicate #service+code {record.code!r} (first on line {seen[record.code]})"]
        if problems:
            report.problems += [(line, p) for p in problems]
            continue
        seen[record.code] = line
        organisation = organisations.get(record.org_code)
        if organisation is None:
            organisation = organisations[record.org_code] = Organisation(code=record.org_code,
                                                                         name=record.org_name)
            session.add(organisation)
        elif organisation.name != record.org_name:
            organisation.name = record.org_name
        service = existing.get(record.code)
        fields = _fields(record)
        if service is None:
            service = Service(organisation=organisation, **fields)
            service.categories = [category_rows[c] for c in record.categories]
            service.languages = [ServiceLanguage(language=lang) for lang in record.languages]
            session.add(service)
            existing[record.code] = service
            report.created += 1
            continue
        changed = service.organisation is not organisation
        for key, value in fields.items():
            if getattr(service, key) != value:
                setattr(service, key, value)
                changed = True
        if tuple(c.code for c in service.categories) != record.categories:
            service.categories = [category_rows[c] for c in record.categories]
            changed = True
        if tuple(lang.language for lang in service.languages) != record.languages:
            service.languages = [ServiceLanguage(language=lang) for lang in record.languages]
            changed = True
        service.organisation = organisation
        report.updated += changed
        report.unchanged += not changed
    if dry_run:
        session.rollback()
    else:
        if report.created or report.updated or report.categories_added:
            bump_directory_version(session)
        session.commit()
    return report


def export_file(session: Session, out: io.TextIOBase) -> int:
    """Writes every service as HXL-tagged CSV; returns how many rows. A cell a spreadsheet
    could run as a formula gets a leading quote (``bot.spreadsheet``; numbers stay numbers),
    which ``read_rows`` takes off again."""
    writer = csv.writer(out)
    writer.writerow([HUMAN_HEADERS[key] for key in COLUMNS])
    writer.writerow([tag for tag, _ in COLUMNS.values()])
    count = 0
    for service in session.execute(sa.select(Service).order_by(Service.code)).scalars():
        served = [g for g, on in zip(GROUPS, (service.serves_women, service.serves_men,
                                               service.serves_children)) if on]
        access = [a for a, on in zip(ACCESS, (service.walk_in, service.by_phone, service.hotline)) if on]
        row = {
            "org_name": service.organisation.name, "org_code": service.organisation.code,
            "code": service.code, "name": service.name,
            "categories": ";".join(c.code for c in service.categories),
            "description": service.description, "country": service.country,
            "admin1_name": service.admin1_name, "admin1_pcode": service.admin1_pcode,
            "admin2_name": service.admin2_name, "admin2_pcode": service.admin2_pcode,
            "place_name": service.place_name, "lat": f"{service.lat:.6f}".rstrip("0").rstrip("."),
            "lon": f"{service.lon:.6f}".rstrip("0").rstrip("."), "phone": service.phone,
            "access": ";".join(access), "languages": ";".join(l.language for l in service.languages),
            "served": ";".join(served),
            "age_min": "" if service.age_min is None else str(service.age_min),
            "age_max": "" if service.age_max is None else str(service.age_max),
            "hours": service.hours,
            "last_verified": service.last_verified.isoformat() if service.last_verified else "",
        }
        writer.writerow(safe_row([row[key] for key in COLUMNS]))
        count += 1
    return count
