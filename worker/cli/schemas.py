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
    asyncapi.json and asyncapi.html (self-contained: it renders offline) in --out."""
    from worker.app import Worker, asyncapi_document
    from worker.http.asyncapi_doc import render_html

    document = asyncapi_document(Worker(settings()).broker)
    text = json.dumps(document, indent=2)
    if out is None:
        typer.echo(text)
        return
    _mkdir(out)
    (out / "asyncapi.json").write_text(text)
    (out / "asyncapi.html").write_text(render_html(document))
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
