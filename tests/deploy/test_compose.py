"""deploy/docker-compose.yml runs as written: valid against the compose spec, every
variable defined, credentials that survive any character, least privilege, TLS, an
internal back-end network, pinned images, health checks, limits and log rotation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from templator.config import PROJECT_ROOT, Settings
from templator.deploy.secrets import is_secret, read_env, write_env
from tests.deploy.compose_render import MissingVariable, environment, render, variables

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
EXAMPLE = DEPLOY / ".env.example"
STORES = ("postgres", "redis", "seaweedfs")
# What people and `openssl rand -base64` produce; the old file pasted these into URLs.
AWKWARD = {
    "DB_PASSWORD": "p@ss/w:rd%#?+=",
    "REDIS_PASSWORD": "ab/cd+ef==",
    "DB_MIGRATION_PASSWORD": "m@/x:y",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """deploy/.env as `templator deploy secrets` writes it, plus awkward passwords."""
    target = tmp_path_factory.mktemp("deploy") / ".env"
    write_env(EXAMPLE, target)
    return {**read_env(target), **AWKWARD}


@pytest.fixture(scope="module")
def services(env: dict[str, str]) -> dict[str, Any]:
    rendered: dict[str, Any] = render(COMPOSE, env)["services"]
    return rendered


def _settings(service: dict[str, Any]) -> Settings:
    """The application's Settings from a service's rendered environment, as in the container."""
    values = {key.lower(): value for key, value in environment(service).items()}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_file_validates_against_the_compose_spec_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_are_the_stores_the_migration_the_api_pgadmin_and_prometheus(
    services: dict[str, Any],
) -> None:
    assert set(services) == {
        *("postgres", "redis", "seaweedfs", "migrate", "api", "pgadmin", "prometheus")
    }


def test_prometheus_scrapes_the_api_and_loads_our_alert_rules(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in prometheus["volumes"]
        if volume.startswith("./")
    }
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((DEPLOY / config_path).read_text())
    for rule_file in config["rule_files"]:  # relative to the config file's folder
        mounted = mounts[f"/etc/prometheus/{rule_file}"]
        assert (DEPLOY / mounted).resolve() == (DEPLOY / "prometheus" / "alerts.yml").resolve()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["templator-api"]
    assert api.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in api["static_configs"] for t in group["targets"]]
    assert targets == ["api:8000"]
    assert "--port" in services["api"]["command"] and "8000" in services["api"]["command"]
    # It reaches the API over the internal network and keeps running while the API is down
    # (so that ApiDown can fire).
    assert "backend" in prometheus["networks"] and "backend" in services["api"]["networks"]
    assert "depends_on" not in prometheus
    assert "prometheus_data:/prometheus" in prometheus["volumes"]


def test_every_variable_is_defined_in_the_env_example() -> None:
    defined = set(read_env(EXAMPLE))
    assert variables(COMPOSE) - defined == set()


def test_env_example_holds_no_usable_secret_and_the_generator_fills_each() -> None:
    example = read_env(EXAMPLE)
    secrets = [key for key in example if is_secret(key)]
    assert len(secrets) >= 8
    assert all(example[key] == "" for key in secrets)


def test_generated_env_keeps_existing_values_and_is_private(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    first = write_env(EXAMPLE, target)
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    values = read_env(target)
    assert len({values[key] for key in first.generated}) == len(first.generated)
    second = write_env(EXAMPLE, target)
    assert second.generated == [] and read_env(target) == values


def test_missing_secret_fails_rendering_with_its_name(env: dict[str, str]) -> None:
    with pytest.raises(MissingVariable, match="DB_PASSWORD"):
        render(COMPOSE, {**env, "DB_PASSWORD": ""})


def test_awkward_passwords_reach_the_api_as_the_right_host_user_and_password(
    services: dict[str, Any],
) -> None:
    """'p@ss' in DB_PASSWORD no longer turns into host 'ss@postgres'; '/' in the Redis
    password no longer fails with 'Port could not be cast to integer'."""
    conf = _settings(services["api"])
    assert conf.database_url is not None and conf.redis_url is not None
    database = make_url(conf.database_url)
    assert (database.host, database.port, database.username) == ("postgres", 5432, "templator_app")
    assert database.password == AWKWARD["DB_PASSWORD"]
    assert database.query["sslmode"] == "verify-full"
    from redis.connection import parse_url

    redis = parse_url(conf.redis_url)
    assert (redis["host"], redis["port"], redis["password"]) == (
        "redis",
        6379,
        AWKWARD["REDIS_PASSWORD"],
    )
    assert redis["ssl_cert_reqs"] == "required" and redis["ssl_ca_certs"] == "/certs/ca.crt"


def test_every_url_of_the_app_parses(services: dict[str, Any]) -> None:
    for name in ("api",):
        conf = _settings(services[name])
        for url in (conf.s3_endpoint_url, conf.s3_public_endpoint_url):
            assert url is not None
            parts = urlsplit(url)
            assert parts.scheme in ("http", "https") and parts.hostname and parts.port


def test_migrate_gets_the_database_settings_and_no_other_secret(
    services: dict[str, Any], env: dict[str, str]
) -> None:
    """It runs Alembic only: no Redis password or S3 key in its environment (#23)."""
    migrate = environment(services["migrate"])
    assert {"DB_HOST", "DB_USER", "DB_PASSWORD", "DB_SSLMODE"} <= set(migrate)
    for secret in ("REDIS_PASSWORD", "S3_SECRET_KEY", "S3_ADMIN_SECRET_KEY", "PGADMIN_PASSWORD"):
        assert env[secret] not in migrate.values(), secret
    conf = _settings(services["migrate"])
    assert conf.db_sslmode == "verify-full"


def test_api_reads_the_app_env_file_of_settings(services: dict[str, Any]) -> None:
    for name in ("api", "migrate"):
        assert services[name]["env_file"] == ["app.env"]
    tuning = read_env(DEPLOY / "app.env")
    known = {name.upper() for name in Settings.model_fields}
    assert set(tuning) <= known
    assert {"DB_POOL_SIZE", "CACHE_TTL_SECONDS", "DB_STATEMENT_TIMEOUT_MS"} <= set(tuning)
    assert not any(is_secret(key) for key in tuning)


def test_api_runs_as_the_application_role_and_migrate_as_the_migration_role(
    services: dict[str, Any], env: dict[str, str]
) -> None:
    api, migrate = environment(services["api"]), environment(services["migrate"])
    assert api["DB_USER"] == env["DB_USER"] != migrate["DB_USER"] == env["DB_MIGRATION_USER"]
    # The API holds none of the keys it does not need.
    for key in ("DB_SUPERUSER_PASSWORD", "DB_MIGRATION_PASSWORD", "S3_ADMIN_SECRET_KEY"):
        assert env[key] not in api.values(), key
    assert env["DB_SUPERUSER_PASSWORD"] not in migrate.values()


def test_api_waits_for_a_successful_migration_and_healthy_stores(
    services: dict[str, Any],
) -> None:
    depends = services["api"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name in STORES:
        assert depends[name]["condition"] == "service_healthy", name
    migrate = services["migrate"]
    assert migrate["command"] == ["templator", "db", "migrate"] and migrate["restart"] == "no"


def test_postgres_and_redis_speak_tls_only_and_the_app_verifies_them(
    services: dict[str, Any],
) -> None:
    command = services["postgres"]["command"]
    assert "ssl=on" in command and "hba_file=/etc/postgresql/pg_hba.conf" in command
    assert "shared_preload_libraries=pg_stat_statements" in command
    hba = [
        line.split()
        for line in (DEPLOY / "postgres" / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all(rule[-1] != "trust" for rule in hba)
    assert all(rule[-1] == "reject" for rule in hba if rule[0] in ("host", "hostnossl"))
    redis = " ".join(services["redis"]["entrypoint"])
    assert "--port 0 --tls-port 6379" in redis
    api = environment(services["api"])
    assert api["DB_SSLMODE"] == "verify-full" and api["REDIS_TLS"] == "true"
    servers = json.loads((DEPLOY / "pgadmin" / "servers.json").read_text())["Servers"]
    assert [s["ConnectionParameters"]["sslmode"] for s in servers.values()] == ["verify-full"]
    assert [s["Host"] for s in servers.values()] == ["postgres"]


def test_stores_live_on_an_internal_network_only(services: dict[str, Any]) -> None:
    document = render(COMPOSE, {key: "x" for key in variables(COMPOSE)})
    assert document["networks"]["backend"]["internal"] is True
    for name in ("postgres", "redis", "migrate"):
        assert services[name]["networks"] == ["backend"], name
        assert "ports" not in services[name], name


def test_published_ports_bind_to_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_images_are_pinned_by_exact_version_and_digest(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert re.fullmatch(r"templator-(api|postgres):\d+\.\d+\.\d+", image), (name, image)
            continue
        match = re.fullmatch(r"[\w./-]+:(?P<tag>[\w.-]+)@sha256:[0-9a-f]{64}", image)
        assert match, (name, image)
        # An exact version (prom/prometheus tags theirs vX.Y.Z), never a floating tag.
        assert re.match(r"v?\d+\.\d+", match["tag"]) and "latest" not in image, (name, image)


def test_long_running_services_have_health_checks_limits_and_rotated_logs(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        assert service["logging"]["options"]["max-size"], name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        if name == "migrate":
            continue
        assert service["healthcheck"]["start_period"], name
        assert service["restart"] == "unless-stopped", name
    assert services["postgres"]["shm_size"]


def test_backups_volume_is_where_backup_dir_points(services: dict[str, Any]) -> None:
    api = services["api"]
    target = environment(api)["BACKUP_DIR"]
    assert f"backups:{target}" in api["volumes"]
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert target in dockerfile  # created in the image, owned by the non-root user


def test_seaweedfs_replaces_minio(services: dict[str, Any]) -> None:
    assert "minio" not in COMPOSE.read_text().split("# ---")[0].lower().replace("minio, aws s3", "")
    health = services["seaweedfs"]["healthcheck"]["test"]
    assert health[:2] == ["CMD", "wget"] and health[-1].endswith("/healthz")
    assert services["seaweedfs"]["entrypoint"] == ["/bin/sh", "/etc/seaweedfs/start.sh"]
