"""``revintel asyncapi`` and ``revintel export-schemas``: the contracts as documents, printed
on stdout, or written to ``--out DIR`` (never into the repository unless asked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from worker.cli.common import console, fail, settings

OutDir = Annotated[
    Path | None,
    typer.Option("--out", help="directory to write the files to (default: print on stdout)"),
]


def asyncapi(out: OutDir = None) -> None:
    """The AsyncAPI document of every topic the worker reads and writes: JSON on stdout, or
    asyncapi.json and asyncapi.html in --out."""
    from faststream.specification import get_asyncapi_html

    from worker.app import Worker, asyncapi_spec

    spec = asyncapi_spec(Worker(settings()).broker).to_specification()
    if out is None:
        typer.echo(spec.to_json())
        return
    _mkdir(out)
    (out / "asyncapi.json").write_text(spec.to_json())
    (out / "asyncapi.html").write_text(get_asyncapi_html(spec))
    console.print(f"wrote {out / 'asyncapi.json'} and {out / 'asyncapi.html'}")


def export_schemas(out: OutDir = None) -> None:
    """The JSON Schema of every message contract: one JSON object (file name -> schema) on
    stdout, or one file each in --out (schemas/json is the repository's copy)."""
    from schemas.export import export, render

    if out is None:
        typer.echo(json.dumps({name: json.loads(text) for name, text in render().items()}))
        return
    _mkdir(out)
    for path in export(out):
        console.print(f"wrote {path}")


def _mkdir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror or exc}")


def register(app: typer.Typer) -> None:
    app.command()(asyncapi)
    app.command("export-schemas")(export_schemas)
