"""The uncached template read with its credential, in one statement (the fast path's
miss): the auth domain's token lookup and the template domain's load, composed here at
the edge, which may see both (a domain never imports another domain's repository)."""

from __future__ import annotations

from templator.auth.repository import TokenLookup, lookup_sql
from templator.postgres import ReadPool
from templator.template.repository import LOAD_NAMES, LoadRow, load_sql

READ_WITH_TOKEN = f"SELECT * FROM ({lookup_sql('$1')}) tok LEFT JOIN ({load_sql('$2')}) tpl ON true"
"""The token's lookup and the template's load, from the same two statements, in one round
trip (asyncpg's $n placeholders)."""
_TOKEN_WIDTH = len(TokenLookup._fields)
_TEMPLATE_ID_AT = _TOKEN_WIDTH + LOAD_NAMES.index("id")


async def load_with_token(
    pool: ReadPool, prefix: str, template_id: str
) -> tuple[TokenLookup, LoadRow | None] | None:
    """The token with `prefix` and the template's row (as `TemplateRepository.load` reads
    it) in one statement on the hot-read pool: None when there is no such token, (token,
    None) when there is no such template. ReadUnavailable when the pool cannot answer."""
    row = await pool.fetchrow(READ_WITH_TOKEN, prefix, template_id)
    if row is None:
        return None
    token = TokenLookup(*row[:_TOKEN_WIDTH])
    if row[_TEMPLATE_ID_AT] is None:  # templates.id is never NULL: the join found nothing
        return token, None
    return token, LoadRow(row[_TOKEN_WIDTH:])
