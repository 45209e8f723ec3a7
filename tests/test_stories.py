"""Rasa test stories (tests/stories/): every flow in every language, NLU and rules end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.settings import PROJECT_ROOT
from tests.utils.assistant import quiet_env
from tests.utils.stories import LANGUAGES, STORIES_DIR, build


@pytest.mark.parametrize("language", LANGUAGES)
def test_story_files_are_current(language):
    path = STORIES_DIR / f"test_{language}.yml"
    assert path.read_text(encoding="utf-8") == build(language), (
        f"{path.name} is stale: run `python -m tests.utils.stories`"
    )


def test_rasa_data_validate_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "data", "validate", "--fail-on-warnings",
         "--domain", "bot/domain", "--data", "data/nlu", "data/stories", "--config", "bot/config.yml"],
        cwd=PROJECT_ROOT, env=quiet_env(), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.model
def test_every_story_passes_with_fail_on_prediction_errors(model_path, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "test", "core", "--model", str(model_path),
         "--stories", str(STORIES_DIR), "--e2e", "--fail-on-prediction-errors", "--out", str(tmp_path)],
        cwd=PROJECT_ROOT, env=quiet_env(), capture_output=True, text=True,
    )
    failed = tmp_path / "failed_test_stories.yml"
    detail = failed.read_text(encoding="utf-8") if failed.exists() else ""
    assert result.returncode == 0, (result.stdout[-2000:] + result.stderr[-4000:] + detail[-4000:])
    assert "stories" not in detail or "story:" not in detail, detail
