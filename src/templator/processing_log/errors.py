"""Processing log errors (an unknown session is `ai_session.errors.AiSessionNotFound`)."""

from __future__ import annotations

from templator.exceptions import PayloadTooLarge


class LogBatchTooLarge(PayloadTooLarge):
    """More lines in one append than a batch may hold."""

    code = "log_batch_too_large"

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"{count:,} lines in one batch; the limit is {limit:,}: split the batch", field="lines"
        )


class LogLineTooLarge(PayloadTooLarge):
    """One line's JSON data over its limit."""

    code = "log_line_too_large"

    def __init__(self, index: int, size: int, limit: int) -> None:
        super().__init__(
            f"lines[{index}].data is {size:,} bytes encoded; the limit is {limit:,}",
            field=f"lines[{index}].data",
        )
