"""Settings: read from the environment, validated, and all documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from templator.config import PROJECT_ROOT, Settings

EXAMPLE = PROJECT_ROOT / ".env.example"


def _documented_names() -> set[str]:
    pattern = re.compile(r"^#?\s?([A-Z][A-Z0-9_]+)=")
    return {m.group(1) for line in EXAMPLE.read_text().splitlines() if (m := pattern.match(line))}


def test_env_example_documents_every_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert _documented_names() == fields


def test_env_example_values_are_valid(tmp_path: Path) -> None:
    settings = Settings(_env_file=EXAMPLE)  # type: ignore[call-arg]
    assert settings.s3_bucket == "templator-assets"
    assert settings.database_url is None


def test_plain_postgres_url_gets_the_psycopg_driver() -> None:
    settings = Settings(_env_file=None, database_url="postgresql://u@h:5432/d")  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+psycopg://u@h:5432/d"


def test_foreign_database_url_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL must start with postgresql"):
        Settings(_env_file=None, database_url="mysql://u@h/d")  # type: ignore[call-arg]


def test_presign_expiry_over_seven_days_is_refused() -> None:
    with pytest.raises(ValidationError, match="presign_default_expiry"):
        Settings(_env_file=None, presign_default_expiry=8 * 24 * 3600)  # type: ignore[call-arg]
