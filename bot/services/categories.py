"""The closed list of service categories, with names per language (data/services/categories.yml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Mapping

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from bot.deployment import SUPPORTED_LANGUAGES
from bot.services.models import ServiceCategory
from bot.settings import PROJECT_ROOT

CATEGORIES_FILE = PROJECT_ROOT / "data" / "services" / "categories.yml"


class CategoriesError(ValueError):
    """The categories file cannot be used."""


@lru_cache(maxsize=None)
def load_categories(path: Path = CATEGORIES_FILE) -> Mapping[str, Mapping[str, str]]:
    """code -> {language: name}; every category needs a name in every supported language."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CategoriesError(f"{path}: cannot read it ({exc})") from None
    categories = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(categories, dict) or not categories:
        raise CategoriesError(f"{path}: expected a 'categories:' mapping")
    problems = []
    for code, names in categories.items():
        if not isinstance(code, str) or not code.replace("_", "").isalnum() or code != code.lower():
            problems.append(f"{code!r}: codes are lower-case letters, digits and _")
        missing = [lang for lang in SUPPORTED_LANGUAGES if not (names or {}).get(lang)]
        if missing:
            problems.append(f"{code}: no name in {', '.join(missing)}")
    if problems:
        raise CategoriesError(f"{path}: " + "; ".join(problems))
    return categories


def sync_categories(session: Session, path: Path = CATEGORIES_FILE) -> int:
    """Adds the file's categories missing from the database; returns how many were added."""
    known = set(session.execute(sa.select(ServiceCategory.code)).scalars())
    added = [code for code in load_categories(path) if code not in known]
    session.add_all(ServiceCategory(code=code) for code in added)
    return len(added)
