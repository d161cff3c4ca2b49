"""``revintel asyncapi`` and ``revintel export-schemas``: the contracts as documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from worker.cli.common import console, settings


def asyncapi(
    out: Annotated[Path, typer.Option(help="directory to write asyncapi.json/.html")] = Path(
        "docs"
    ),
) -> None:
    """Export the AsyncAPI document of every topic the worker reads and writes."""
    from faststream.specification import get_asyncapi_html

    from worker.app import Worker, asyncapi_spec

    spec = asyncapi_spec(Worker(settings()).broker).to_specification()
    out.mkdir(parents=True, exist_ok=True)
    (out / "asyncapi.json").write_text(spec.to_json())
    (out / "asyncapi.html").write_text(get_asyncapi_html(spec))
    console.print(f"wrote {out / 'asyncapi.json'} and {out / 'asyncapi.html'}")


def export_schemas(
    directory: Annotated[Path | None, typer.Argument(help="default: schemas/json")] = None,
) -> None:
    """Write the JSON Schema of every message contract."""
    from schemas.export import export

    for path in export(directory):
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command()(asyncapi)
    app.command("export-schemas")(export_schemas)
