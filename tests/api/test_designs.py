"""Designs served back (presigned GETs) and direct browser uploads (presigned POST, then a
confirmation that checks the stored object before any row exists), against SeaweedFS."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from templator.connections import Connections
from templator.kit.ids import new_id
from templator.models import StoredObject
from templator.storage.direct import check_stored_design
from templator.storage.errors import ObjectMissing, UnsupportedContentType, UploadTooLarge
from templator.storage.service import ObjectStore
from tests.api.conftest import Caller
from tests.support.factories import image_bytes

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
HTML = b"<!DOCTYPE html><html><body><header><h1>Acme</h1></header></body></html>"


async def _session(client: httpx.AsyncClient, owner: Caller) -> str:
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "P"}, headers=h)).json()
    body = {"project_id": project["id"]}
    sid: str = (await client.post("/api/v1/sessions", json=body, headers=h)).json()["id"]
    return sid


async def _rows(conns: Connections, sid: str) -> int:
    async with conns.sessionmaker() as session:
        stmt = select(func.count()).select_from(StoredObject).where(StoredObject.session_id == sid)
        return int((await session.execute(stmt)).scalar_one())


async def _direct(
    client: httpx.AsyncClient, owner: Caller, sid: str, *, content_type: str, size: int
) -> httpx.Response:
    body = {"filename": "design.html", "content_type": content_type, "size": size}
    return await client.post(
        f"/api/v1/sessions/{sid}/designs/direct", json=body, headers=owner.headers
    )


async def _send(post: dict[str, Any], data: bytes, content_type: str) -> httpx.Response:
    async with httpx.AsyncClient() as browser:
        return await browser.post(
            post["url"], data=post["fields"], files={"file": ("f", data, content_type)}
        )


async def _confirm(client: httpx.AsyncClient, owner: Caller, sid: str, key: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/sessions/{sid}/designs/confirm", json={"key": key}, headers=owner.headers
    )


async def test_a_sessions_designs_are_listed_with_download_links(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    sid = await _session(client, owner)
    up = await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("d.html", HTML, "text/html")},
        headers=owner.headers,
    )
    listed = await client.get(f"/api/v1/sessions/{sid}/designs", headers=owner.headers)
    assert listed.status_code == 200
    [design] = listed.json()["items"]
    assert design["key"] == up.json()["key"]
    assert (design["size"], design["content_type"]) == (len(HTML), "text/html")
    async with httpx.AsyncClient() as outside:
        got = await outside.get(design["url"])
    assert got.content == HTML
    assert got.headers["content-disposition"].startswith("attachment;")
    other = await make_caller()
    hidden = await client.get(f"/api/v1/sessions/{sid}/designs", headers=other.headers)
    assert hidden.status_code == 404


async def test_a_direct_upload_is_recorded_only_once_confirmed(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    sid = await _session(client, owner)
    direct = await _direct(client, owner, sid, content_type="text/html", size=len(HTML))
    assert direct.status_code == 201, direct.text
    post = direct.json()
    assert post["key"].startswith(f"designs/{sid}/") and post["max_bytes"] == len(HTML)
    assert (await _send(post, HTML, "text/html")).status_code in (200, 201, 204)
    assert await _rows(store_connections, sid) == 0
    confirmed = await _confirm(client, owner, sid, post["key"])
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json() == {"key": post["key"], "size": len(HTML), "content_type": "text/html"}
    again = await _confirm(client, owner, sid, post["key"])
    assert again.json() == confirmed.json()
    assert await _rows(store_connections, sid) == 1
    listed = await client.get(f"/api/v1/sessions/{sid}/designs", headers=owner.headers)
    assert [d["key"] for d in listed.json()["items"]] == [post["key"]]


async def test_the_store_enforces_the_policys_size_and_type(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    sid = await _session(client, owner)
    post = (await _direct(client, owner, sid, content_type="text/html", size=len(HTML))).json()
    too_big = await _send(post, HTML + b"<p>more</p>", "text/html")
    assert too_big.status_code >= 400  # EntityTooLarge: content-length-range
    retyped = dict(post, fields={**post["fields"], "Content-Type": "image/png"})
    assert (await _send(retyped, HTML, "image/png")).status_code == 403
    missing = await _confirm(client, owner, sid, post["key"])
    assert missing.status_code == 404 and missing.json()["code"] == "object_missing"
    assert await _rows(store_connections, sid) == 0


async def test_an_object_that_is_not_its_type_is_refused_and_deleted(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    sid = await _session(client, owner)
    store = store_connections.store
    assert store is not None
    # As a store that does not enforce POST policies would keep it.
    key = f"designs/{sid}/1.png"
    store.client.put_object(Bucket=store.bucket, Key=key, Body=HTML, ContentType="image/png")
    refused = await _confirm(client, owner, sid, key)
    assert refused.status_code == 415 and refused.json()["code"] == "content_type_mismatch"
    assert not store.exists(key)
    key = f"designs/{sid}/2.html"
    store.client.put_object(Bucket=store.bucket, Key=key, Body=HTML, ContentType="image/svg+xml")
    refused = await _confirm(client, owner, sid, key)
    assert refused.status_code == 415 and refused.json()["code"] == "unsupported_content_type"
    assert not store.exists(key)
    assert await _rows(store_connections, sid) == 0


async def test_a_key_of_another_session_is_missing(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    mine, theirs = await _session(client, owner), await _session(client, owner)
    post = (await _direct(client, owner, theirs, content_type="text/html", size=len(HTML))).json()
    await _send(post, HTML, "text/html")
    wrong = await _confirm(client, owner, mine, post["key"])
    assert wrong.status_code == 404 and wrong.json()["code"] == "object_missing"


async def test_a_direct_upload_of_a_refused_type_or_size_gets_no_policy(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    sid = await _session(client, owner)
    svg = await _direct(client, owner, sid, content_type="image/svg+xml", size=10)
    assert svg.status_code == 415 and svg.json()["code"] == "unsupported_content_type"
    limit = store_connections.settings.upload_max_bytes
    big = await _direct(client, owner, sid, content_type="image/png", size=limit + 1)
    assert big.status_code == 413 and big.json()["code"] == "upload_too_large"


def test_a_stored_object_over_the_limit_is_refused_and_deleted(object_store: ObjectStore) -> None:
    key = f"designs/{new_id()}/1.png"
    data = image_bytes("PNG", size=(16, 16), noise=True)
    object_store.client.put_object(
        Bucket=object_store.bucket, Key=key, Body=data, ContentType="image/png"
    )
    with pytest.raises(UploadTooLarge):
        check_stored_design(object_store, key, max_bytes=len(data) - 1)
    assert not object_store.exists(key)


def test_a_stored_image_is_decoded_whole(object_store: ObjectStore) -> None:
    key = f"designs/{new_id()}/1.png"
    data = image_bytes("PNG", size=(16, 16), noise=True)
    object_store.client.put_object(
        Bucket=object_store.bucket, Key=key, Body=data + HTML, ContentType="image/png"
    )
    with pytest.raises(Exception, match="bytes after the end of the image"):
        check_stored_design(object_store, key, max_bytes=10_000_000)
    assert not object_store.exists(key)
    with pytest.raises(ObjectMissing):
        check_stored_design(object_store, key, max_bytes=10_000_000)
    with pytest.raises(UnsupportedContentType):
        object_store.client.put_object(
            Bucket=object_store.bucket, Key=key, Body=data, ContentType="text/plain"
        )
        check_stored_design(object_store, key, max_bytes=10_000_000)
