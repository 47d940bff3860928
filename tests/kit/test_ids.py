"""Ids have the cuid-like shape and do not collide."""

from __future__ import annotations

from templator.kit.ids import ID_LENGTH, is_valid_id, new_id, new_ids


def test_ids_are_25_lowercase_alphanumerics_starting_with_a_letter() -> None:
    for value in [new_id(), *new_ids(1000)]:
        assert len(value) == ID_LENGTH
        assert is_valid_id(value), value


def test_a_million_ids_are_unique() -> None:
    ids = new_ids(1_000_000)
    assert len(set(ids)) == len(ids)


def test_characters_are_spread_over_the_whole_alphabet() -> None:
    body = "".join(value[1:] for value in new_ids(2000))
    assert set(body) == set("0123456789abcdefghijklmnopqrstuvwxyz")
