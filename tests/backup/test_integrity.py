"""A damaged, truncated or foreign set is refused naming the file; the others stay usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from templator.backup import catalog, create, restore, retention
from templator.backup.crypto import BackupKey, generate_key_file
from templator.backup.errors import BackupCorrupt, BackupKeyError
from templator.backup.manifest import Manifest
from templator.backup.set_store import FolderRepository
from tests.backup.conftest import Stores, add_object, add_user, emails


def _all_files(repo: FolderRepository, manifest: Manifest) -> list[Path]:
    folder = repo.root / manifest.name
    blobs = [repo.root / "blobs" / b.path[:2] / b.path for b in manifest.blobs]
    return sorted(p for p in folder.rglob("*") if p.is_file()) + blobs


def test_one_flipped_byte_in_any_file_is_refused_naming_it(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "flip@example.com")
    add_object(stores, "designs/s/a.png", b"object body")
    stores.redis.set("bak-test:k", b"v")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key)
    files = _all_files(repo, manifest)
    assert {p.name for p in files} >= {"manifest.json", "redis.bin", "objects.index", "toc.dat"}
    for path in files:
        original = path.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x01
        path.write_bytes(bytes(damaged))
        label = "manifest.json" if path.name == "manifest.json" else path.name
        with pytest.raises(BackupCorrupt, match=label.replace(".", r"\.")):
            catalog.verify(repo, manifest.name, key)
        path.write_bytes(original)
    catalog.verify(repo, manifest.name, key)


def test_a_truncated_file_is_refused_and_nothing_is_restored(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "before@example.com")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key)
    add_user(stores, "after@example.com")
    redis_file = repo.root / manifest.name / "redis.bin"
    redis_file.write_bytes(redis_file.read_bytes()[:-5])
    with pytest.raises(BackupCorrupt, match=r"redis\.bin is \d+ bytes.*truncated"):
        restore.restore_backup(stores.settings, stores.urls, repo, manifest.name, key=key)
    assert emails(stores) == {"before@example.com", "after@example.com"}


def test_a_wrong_or_missing_key_is_refused_naming_the_set(
    stores: Stores, repo: FolderRepository, key: BackupKey, tmp_path: Path
) -> None:
    manifest = create.create_backup(
        stores.settings, stores.urls, repo, key=key, include_objects=False
    )
    other = generate_key_file(tmp_path / "other.key")
    with pytest.raises(
        BackupKeyError, match=f"{manifest.name} was made with backup key {key.key_id}"
    ):
        restore.restore_backup(stores.settings, stores.urls, repo, manifest.name, key=other)
    with pytest.raises(BackupKeyError, match=f"{manifest.name} is encrypted"):
        restore.restore_backup(stores.settings, stores.urls, repo, manifest.name, key=None)


def test_an_encrypted_set_holds_no_plaintext_user_data(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "secret-person@example.com")
    add_object(stores, "designs/s/doc.txt", b"confidential-object-body " * 50)
    stores.redis.set("bak-test:user", b"cached-secret-person@example.com")
    create.create_backup(stores.settings, stores.urls, repo, key=key)
    for path in repo.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in (b"secret-person", b"confidential-object-body", b"designs/s/doc.txt"):
                assert needle not in data, (path, needle)
    assert key.secret not in b"".join(p.read_bytes() for p in repo.root.rglob("*") if p.is_file())


def test_a_damaged_set_is_listed_as_such_and_does_not_stop_list_or_prune(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    sets = [
        create.create_backup(stores.settings, stores.urls, repo, key=key, include_objects=False)
        for _ in range(3)
    ]
    damaged = repo.root / sets[1].name / "manifest.json"
    damaged.write_bytes(damaged.read_bytes()[:40])
    listed = catalog.list_sets(repo, key)
    assert [(s.name, s.valid) for s in listed] == [
        (sets[2].name, True),
        (sets[1].name, False),
        (sets[0].name, True),
    ]
    assert "manifest.json is unreadable" in (listed[1].problem or "")
    assert catalog.resolve(repo, "latest", key).name == sets[2].name
    result = retention.prune(repo, retention.Policy(last=1, daily=0, weekly=0, monthly=0), key=key)
    assert result.delete == [sets[0].name]
    assert result.damaged and sets[1].name in result.damaged[0]
    assert {s.name for s in catalog.list_sets(repo, key)} == {sets[2].name, sets[1].name}


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "k")
    with pytest.raises(BackupKeyError, match="refusing to overwrite"):
        generate_key_file(tmp_path / "k")
