"""structlog configuration: JSON lines on stderr with bound context (deal id, event id, offset).

Libraries (aiokafka, FastStream, uvicorn) log through stdlib logging; their records go through
the same processors and renderer (``structlog.stdlib.ProcessorFormatter``), so with JSON on every
line is JSON. Every rendered line, ours or theirs, has the configured secrets masked last.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog

MASK = "***"
# Library loggers that attach their own (coloured, plain text) handlers: sent to ours instead.
LIBRARY_LOGGERS = ("faststream", "faststream.access", "uvicorn", "uvicorn.error", "aiokafka")


class Masker:
    """Replaces every secret in a text, also as it appears escaped in JSON or in a repr."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants = set()
        for secret in secrets:
            if secret:
                variants |= {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]}
        self.variants = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for variant in self.variants:
            if variant in text:
                text = text.replace(variant, MASK)
        return text

    def processor(self, _logger: Any, _name: str, rendered: Any) -> Any:
        """The last processor, after the renderer: masks the rendered line."""
        return self(rendered) if isinstance(rendered, str) else rendered


class MaskingStream:
    """A text stream (stdout, stderr) that masks secrets in everything written to it."""

    def __init__(self, stream: TextIO, masker: Masker) -> None:
        self._stream = stream
        self._masker = masker

    def write(self, text: str) -> int:
        self._stream.write(self._masker(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, flush, encoding...
        return getattr(self._stream, name)


def _renderer(json_lines: bool) -> Any:
    if json_lines:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


def configure_logging(level: str = "INFO", json: bool = True, secrets: Iterable[str] = ()) -> None:
    mask = Masker(secrets)
    renderer = _renderer(json)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer, mask.processor],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
                mask.processor,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    # Libraries stay quiet (warnings and errors) unless we debug.
    root.setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers = []
        library.propagate = True
        library.setLevel(logging.NOTSET)


def library_logger(name: str) -> logging.Logger:
    """A stdlib logger for a library that takes one (FastStream): no handler of its own, so its
    lines go through ours."""
    logger = logging.getLogger(f"revintel.{name}")
    logger.handlers = []
    logger.propagate = True
    return logger


def get_logger(**context: object) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger("revintel").bind(**context)
