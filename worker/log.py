"""structlog configuration: JSON lines on stderr with bound context (deal id, event id, offset)."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    renderer = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, faststream) log through stdlib logging: keep them quiet and on stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)


def get_logger(**context: object) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger("revintel").bind(**context)
