"""deploy/seaweedfs/start.sh, run with the local `weed`: the API's S3 identity reaches its
own bucket only; the administrator's reaches every bucket."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from templator.config import PROJECT_ROOT
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import find_weed

START = PROJECT_ROOT / "deploy" / "seaweedfs" / "start.sh"
KEYS = {
    "S3_ADMIN_ACCESS_KEY": "ADMINKEY0000000000AA",
    "S3_ADMIN_SECRET_KEY": "admin/secret+key=",
    "S3_ACCESS_KEY": "APPKEY00000000000000",
    "S3_SECRET_KEY": "app/secret+key=",
    "S3_BUCKET": "templator-assets",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """`sh start.sh mini …` as the compose file's entrypoint runs `server …`."""
    folder = PROJECT_ROOT / "var" / f"test-s3-identities-{uuid.uuid4().hex[:8]}"
    (folder / "data").mkdir(parents=True)
    s3_port = free_port()
    ports = {name: free_port() for name in ("master", "volume", "filer", "admin")}
    args = ["sh", str(START), "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1"]
    args += ["-ip.bind=127.0.0.1", f"-s3.port={s3_port}", "-webdav=false"]
    args += [f"-{name}.port={port}" for name, port in ports.items()]
    args += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false"]
    args += ["-master.telemetry=false"]
    env = {
        **os.environ,
        **KEYS,
        "WEED": find_weed(),
        "SEAWEEDFS_S3_CONFIG": str(folder / "s3.json"),
    }
    with (folder / "weed.log").open("ab") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{s3_port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                # The compose health check's URL: 200 once the gateway serves.
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError((folder / "weed.log").read_text()[-2000:])
        assert oct((folder / "s3.json").stat().st_mode & 0o777) == "0o600"
        yield url
    finally:
        process.terminate()
        process.wait(20)
        shutil.rmtree(folder, ignore_errors=True)


def _client(endpoint: str, access: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEYS[access],
        aws_secret_access_key=KEYS[secret],
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            read_timeout=120,
        ),
    )


def test_app_identity_works_in_its_bucket_only(endpoint: str) -> None:
    app = _client(endpoint, "S3_ACCESS_KEY", "S3_SECRET_KEY")
    admin = _client(endpoint, "S3_ADMIN_ACCESS_KEY", "S3_ADMIN_SECRET_KEY")
    try:  # `weed mini` (not the compose file's `weed server`) pre-creates S3_BUCKET
        app.create_bucket(Bucket=KEYS["S3_BUCKET"])
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    app.put_object(Bucket=KEYS["S3_BUCKET"], Key="a.txt", Body=b"hi")
    body = app.get_object(Bucket=KEYS["S3_BUCKET"], Key="a.txt")["Body"].read()
    assert body == b"hi"
    admin.create_bucket(Bucket="other-bucket")
    admin.put_object(Bucket="other-bucket", Key="b.txt", Body=b"x")
    for call in (
        lambda: app.get_object(Bucket="other-bucket", Key="b.txt"),
        lambda: app.put_object(Bucket="other-bucket", Key="c.txt", Body=b"x"),
        lambda: app.create_bucket(Bucket="third-bucket"),
    ):
        with pytest.raises(ClientError) as denied:
            call()
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert admin.get_object(Bucket=KEYS["S3_BUCKET"], Key="a.txt")["Body"].read() == b"hi"


def test_start_script_refuses_a_key_that_would_break_its_json(tmp_path: Path) -> None:
    env = {**os.environ, **KEYS, "S3_SECRET_KEY": 'bad"key', "WEED": "true"}
    env["SEAWEEDFS_S3_CONFIG"] = str(tmp_path / "s3.json")
    result = subprocess.run(["sh", str(START)], env=env, capture_output=True, text=True)
    assert result.returncode == 64 and "may not contain" in result.stderr
    assert not (tmp_path / "s3.json").exists()
