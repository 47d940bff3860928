"""The restore request's checks (backup/restore_flow.py), without any server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from templator.backup.errors import BackupConfigError
from templator.backup.restore_flow import RestoreRequest


def test_a_request_names_its_stores_and_its_moment() -> None:
    request = RestoreRequest.parse(
        "latest", only="postgres, redis", to_time="2026-12-01T10:00:00Z", wait=2
    )
    assert request.only == {"postgres", "redis"}
    assert request.to_time == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert request.wait == 2


def test_no_only_means_every_store() -> None:
    assert RestoreRequest.parse("latest").only is None


def test_an_unknown_store_is_refused_by_name() -> None:
    with pytest.raises(BackupConfigError, match=r"unknown store.*bucket"):
        RestoreRequest.parse("latest", only="postgres,bucket")


@pytest.mark.parametrize(
    ("text", "why"),
    [("yesterday", "not an ISO-8601 time"), ("2026-12-01T10:00:00", "needs a time zone")],
)
def test_a_moment_must_be_a_time_with_its_zone(text: str, why: str) -> None:
    with pytest.raises(BackupConfigError, match=why):
        RestoreRequest.parse("latest", to_time=text)
