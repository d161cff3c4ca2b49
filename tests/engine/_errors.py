"""``pytest.raises(..., match=...)`` patterns that pin why an input was rejected."""

from __future__ import annotations

import re


def one_validation_error(model: str, message: str, field: str | None = None) -> str:
    """Pattern of a pydantic ValidationError with exactly one error: ``message`` on ``field``,
    or a model-level check's ``message`` (``Value error, ...``) when ``field`` is None."""
    where = "" if field is None else f"{field}\n"
    return re.escape(f"1 validation error for {model}\n{where}  {message}")
