"""``revintel``: the command line of the worker (typer).

One app; each module of this package adds its commands (or its command group) with
``register(app)``. Errors go to stderr through ``worker.cli.common.fail`` (exit 2, secrets
masked).
"""

from __future__ import annotations

import sys

import typer

from worker.cli import (
    alerts,
    backtest,
    changes,
    clock,
    data,
    deals,
    forecast,
    ingest,
    models,
    schemas,
    score,
    train,
    worker,
)
from worker.cli.common import protect_output

app = typer.Typer(
    help="revenue-intelligence: CRM events in, deal scores and alerts out.",
    no_args_is_help=True,
    # a traceback's local variables would show settings, and with them secrets
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _before_any_command() -> None:
    # before the command runs, so its output, errors and traceback are masked alike
    protect_output()


for _module in (
    worker,
    ingest,
    data,
    clock,
    deals,
    changes,
    alerts,
    forecast,
    backtest,
    score,
    schemas,
    train,
    models,
):
    _module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
