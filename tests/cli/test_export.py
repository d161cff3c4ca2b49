"""`export-schemas` and `asyncapi` print on stdout unless given `--out DIR`: run from the
repository without it, neither writes into it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from schemas.export import schema_dir
from worker.cli import app


def _files(directory: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_without_out_both_print_and_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _files(schema_dir())
    done = CliRunner().invoke(app, ["export-schemas"])
    assert done.exit_code == 0, done.output
    schemas = json.loads(done.stdout)
    assert (
        "deal-event.schema.json" in schemas and "discriminator" in schemas["deal-event.schema.json"]
    )
    done = CliRunner().invoke(app, ["asyncapi"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["asyncapi"].startswith("3.")
    assert list(tmp_path.iterdir()) == []
    assert _files(schema_dir()) == before


def test_out_writes_the_files_there(tmp_path):
    done = CliRunner().invoke(app, ["export-schemas", "--out", str(tmp_path / "json")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "json" / "deal-event.schema.json").read_text() == (
        schema_dir() / "deal-event.schema.json"
    ).read_text()
    done = CliRunner().invoke(app, ["asyncapi", "--out", str(tmp_path / "api")])
    assert done.exit_code == 0, done.output
    assert {p.name for p in (tmp_path / "api").iterdir()} == {"asyncapi.json", "asyncapi.html"}
