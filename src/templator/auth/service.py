"""API tokens: `tpl_<prefix>_<secret>`, looked up by prefix, verified by SHA-256.

Why opaque tokens rather than JWTs: they are revocable at once (a JWT stays valid until
it expires unless every node checks a deny list, which is a token table again), they
carry no claims that go stale when a role changes, and there is no signing key to
rotate or leak. A fast hash is right here: the secret is 256 random bits, so nothing
can be guessed offline, unlike a password. The prefix → (user, role, hash) record is
cached in Redis and invalidated on revocation, role change and erasure; each of those
also bumps the authentication epoch in PostgreSQL (`epoch.py`), and a cached record is
believed only at the epoch it was read at, so a change whose invalidation never reached
Redis is not undone when Redis returns.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import NotRequired, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from templator.audit import service as audit
from templator.auth import schemas
from templator.auth.cache import record_key, record_keys
from templator.auth.errors import AdminRequired, TokenNotFound
from templator.auth.repository import TokenLookup, TokenRepository
from templator.cache import Cache
from templator.exceptions import Unauthorized, ValidationFailed
from templator.kit.actor import Actor
from templator.kit.repository import JsonRow
from templator.kit.uow import after_commit_call, invalidate_now
from templator.models import UserRole

PREFIX = "tpl"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenRecord(TypedDict):
    """A token as the cache holds it (JSON; `token_record`), what `verify` reads: the
    fast path reads it from Redis too."""

    user_id: str
    role: str
    hash: str
    expires: float | None
    revoked: bool
    epoch: int
    scopes: NotRequired[list[str]]


def verify(record: TokenRecord | None, secret: str) -> Actor:
    """The actor of a token record whose secret is `secret`; Unauthorized otherwise."""
    if record is None or not hmac.compare_digest(record["hash"], _hash(secret)):
        raise Unauthorized("invalid API token")
    if record["revoked"]:
        raise Unauthorized("this API token has been revoked")
    if record["expires"] is not None and record["expires"] < datetime.now(UTC).timestamp():
        raise Unauthorized("this API token has expired; create a new one")
    return Actor(record["user_id"], UserRole(record["role"]), frozenset(record.get("scopes", ())))


def token_record(row: TokenLookup) -> TokenRecord:
    """The cached (JSON-ready) record of a looked-up token, as `verify` reads it."""
    return {
        "user_id": row.user_id,
        "role": row.role,
        "hash": row.secret_hash,
        "expires": row.expires_at.timestamp() if row.expires_at else None,
        "revoked": row.revoked_at is not None,
        "epoch": row.epoch,
        "scopes": list(row.scopes),
    }


def parse(token: str) -> tuple[str, str]:
    """(prefix, secret) of `tpl_<prefix>_<secret>`; Unauthorized when malformed."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or len(parts[2]) < 32:
        raise Unauthorized("malformed API token: expected tpl_<prefix>_<secret>")
    return parts[1], parts[2]


class TokenService:
    """Create, verify, list and revoke tokens."""

    def __init__(self, session: AsyncSession, cache: Cache) -> None:
        self.session = session
        self.cache = cache
        self.repository = TokenRepository(session)

    async def create(
        self,
        user_id: str,
        data: schemas.TokenCreate,
        *,
        origin: audit.Origin,
        max_days: int | None = None,
        owner_role: UserRole | None = None,
    ) -> schemas.TokenCreated:
        """A new token; its secret is returned once and never stored (audited). With
        `max_days` (TOKEN_MAX_DAYS) a longer lifetime, or none, is refused; the default
        lifetime is shortened to it. A scoped (worker) token is an ADMIN's only:
        `owner_role` is the role of the user it is made for."""
        if data.scopes and owner_role is not UserRole.ADMIN:
            raise AdminRequired
        if max_days is not None and "expires_days" not in data.model_fields_set:
            data = data.model_copy(
                update={"expires_days": min(schemas.DEFAULT_TOKEN_DAYS, max_days)}
            )
        if max_days is not None and (data.expires_days is None or data.expires_days > max_days):
            raise ValidationFailed(
                f"expires_days must be at most {max_days} (TOKEN_MAX_DAYS); "
                "tokens that never expire are not allowed",
                field="expires_days",
            )
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        expires = (
            datetime.now(UTC) + timedelta(days=data.expires_days) if data.expires_days else None
        )
        row = await self.repository.insert(
            user_id=user_id,
            prefix=prefix,
            secret_hash=_hash(secret),
            name=data.name,
            expires_at=expires,
            scopes=list(data.scopes),
        )
        await audit.record(
            self.session,
            origin,
            "token.create",
            target_type="token",
            target_id=row.id,
            details={"user": user_id, **({"scopes": list(data.scopes)} if data.scopes else {})},
        )
        return schemas.TokenCreated(**row.model_dump(), token=f"{PREFIX}_{prefix}_{secret}")

    async def _record(self, prefix: str) -> TokenRecord | None:
        row = await self.repository.lookup(prefix)
        return None if row is None else token_record(row)

    async def authenticate(self, token: str) -> Actor:
        """The actor a bearer token stands for; Unauthorized for anything wrong with it."""
        prefix, secret = parse(token)
        record = await self.cache.get_or_load(
            record_key(self.cache, prefix),
            lambda: self._record(prefix),
            encode=lambda r: r,
            decode=lambda r: r,
            ttl=60,
            believe=self.cache.epoch.believes,
        )
        return verify(record, secret)

    async def is_valid(self, token: str) -> bool:
        """Whether `token` still authenticates (not revoked, expired, or of an erased
        user): the check a long-lived response repeats for its caller."""
        try:
            await self.authenticate(token)
        except Unauthorized:
            return False
        return True

    async def list_for(self, user_id: str) -> list[schemas.TokenInfo]:
        """A user's tokens (without secrets)."""
        return await self.repository.list_for_user(user_id)

    async def revoke(
        self, actor: Actor, token_id: str, *, origin: audit.Origin
    ) -> schemas.TokenInfo:
        """Revoke a token of the actor's (any, for ADMIN); effective immediately; audited."""
        owner = await self.repository.owner(token_id)
        if owner is None or not actor.may_access(owner.user_id):
            raise TokenNotFound(token_id)
        info = await self.repository.revoke(token_id)
        await self.distrust_cached_records()
        await invalidate_now(self.session, self.cache, record_key(self.cache, owner.prefix))
        await audit.record(
            self.session,
            origin,
            "token.revoke",
            target_type="token",
            target_id=token_id,
            details={"user": owner.user_id},
        )
        return info

    async def prefixes_of_user(self, user_id: str) -> list[str]:
        """Prefixes of all of a user's tokens (the keys of their cached records)."""
        return await self.repository.prefixes_of(user_id)

    async def export_of_user(self, user_id: str) -> list[JsonRow]:
        """The user's tokens as JSON, without their secret hashes (a GDPR export)."""
        return await self.repository.export_of_user(user_id)

    async def forget_user(self, user_id: str) -> None:
        """Drop cached token records of a user (after a role change or erasure), and
        distrust every record cached before this transaction."""
        await self.distrust_cached_records()
        keys = record_keys(self.cache, await self.repository.prefixes_of(user_id))
        if keys:
            await invalidate_now(self.session, self.cache, *keys)

    async def distrust_cached_records(self) -> None:
        """Bump the authentication epoch in this transaction: once it commits, no token
        record cached before it is believed, whether or not Redis hears of the change
        (this process knows the new epoch at its commit, the others at its NOTIFY)."""
        epoch = await self.repository.bump_epoch()

        async def advance() -> None:
            self.cache.epoch.advance(epoch)

        after_commit_call(self.session, advance)
