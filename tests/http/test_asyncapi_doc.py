"""The AsyncAPI document names the deal and account payloads, and its page renders offline
(issue 10: the page loaded its viewer from a CDN and was blank without internet, and the deal
and account payload schemas were empty)."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from worker.app import Worker, asyncapi_document
from worker.cli import app
from worker.http.asyncapi_doc import render_html
from worker.settings import Settings


def document() -> dict:
    return asyncapi_document(Worker(Settings()).broker)


def test_the_consumed_topics_have_their_payload_schemas():
    schemas = document()["components"]["schemas"]
    deal = schemas["deal-events:Message:Payload"]
    assert {"deal.created", "deal.closed_won", "clock.tick"} <= set(
        deal["discriminator"]["mapping"]
    )
    account = schemas["account-events:Message:Payload"]
    assert "account.churned" in account["discriminator"]["mapping"]
    # every $ref resolves inside the document
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(schemas))
    assert refs and set(refs) <= set(schemas)
    assert "Vendor webhook body" in json.dumps(schemas["vendor-events:Message:Payload"])


def test_the_page_loads_nothing_from_elsewhere():
    page = render_html(document())
    assert "<script" not in page and "https://" not in page and "http://" not in page
    assert "crm.deal-events" in page and "DealCreated" in page


def test_the_cli_writes_the_completed_document_and_the_offline_page(tmp_path):
    done = CliRunner().invoke(app, ["asyncapi", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    doc = json.loads((tmp_path / "asyncapi.json").read_text())
    assert doc["components"]["schemas"]["deal-events:Message:Payload"]["discriminator"]
    assert "<script" not in (tmp_path / "asyncapi.html").read_text()
