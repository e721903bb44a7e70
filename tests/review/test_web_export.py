"""Exports from the web UI and the API: every format parses back, with the exact selection."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
import lxml.html
import pytest

from tests.review.seed import Seeded

# Every test that uses the store runs on SQLite and on PostgreSQL (tests/review/conftest.py).
STORE_BACKENDS = ("sqlite", "postgresql")

rispy = pytest.importorskip("rispy", reason="rispy is missing: pip install -e '.[test]' to run the RIS tests")

CSL_SCHEMA = Path(__file__).resolve().parent / "fixtures" / "csl-data.json"
ALL_BY_DATE = ["hostile", "french", "arabic", "mother", "indonesian", "kobani_near", "kobani", "deserter"]


def ids_of(seeded: Seeded, *names: str) -> list[int]:
    return [seeded.id(n) for n in names]


def test_csv_of_the_current_filter(client: Any, seeded: Seeded) -> None:
    response = client.get("/export?range=all&format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="dwatch-candidates-{seeded.today.isoformat()}.csv"')
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [int(r["candidate_id"]) for r in rows] == ids_of(seeded, *ALL_BY_DATE)
    by_id = {int(r["candidate_id"]): r for r in rows}
    hostile = by_id[seeded.id("hostile")]
    assert hostile["title"] == seeded.pages["hostile"].title
    assert hostile["archive_record_id"] == seeded.pages["hostile"].archive.record_id
    assert hostile["channel"] == "listing" and hostile["discovered_from"] == "https://clickbait.example/latest/"
    deserter = by_id[seeded.id("deserter")]
    assert (deserter["decision"], deserter["decided_by"], deserter["decision_note"]) == (
        "accept", "amal", "Clear first-person account; cite in chapter 3.")
    assert "text" not in rows[0]


def test_jsonl_with_the_text_of_a_status_filter(client: Any, seeded: Seeded) -> None:
    response = client.get("/export?range=all&status=accepted&format=jsonl&text=1")
    assert response.headers["content-type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [r["candidate_id"] for r in rows] == ids_of(seeded, "indonesian", "deserter")
    article = seeded.pages["indonesian"].analysis.article
    assert article is not None and rows[0]["text"] == article.text
    assert rows[0]["lang"] == "id" and rows[0]["decided_by"] == "amal"


def test_csl_json_of_ticked_rows_is_valid_csl(client: Any, seeded: Seeded) -> None:
    response = client.get(f"/export?format=csl-json&ids={seeded.id('kobani')}&ids={seeded.id('arabic')}")
    assert response.headers["content-type"] == "application/vnd.citationstyles.csl+json"
    items = json.loads(response.text)
    jsonschema.validate(items, json.loads(CSL_SCHEMA.read_text(encoding="utf-8")))
    by_id = {item["id"]: item for item in items}
    kobani = by_id[f"dwatch-{seeded.id('kobani')}"]
    published = seeded.today - timedelta(days=18)
    fetched = seeded.pages["kobani"].fetched_at
    assert {k: kobani[k] for k in ("type", "title", "container-title", "URL", "issued", "accessed",
                                   "author", "language")} == {
        "type": "article-newspaper", "title": seeded.pages["kobani"].title,
        "container-title": "Northern Ledger", "URL": "https://ledger.example/world/kobani-cook",
        "issued": {"date-parts": [[published.year, published.month, published.day]]},
        "accessed": {"date-parts": [[fetched.year, fetched.month, fetched.day]]},
        "author": [{"family": "Lindqvist", "given": "Sara"}], "language": "en",
    }
    assert set(by_id) == {f"dwatch-{seeded.id('kobani')}", f"dwatch-{seeded.id('arabic')}"}
    assert by_id[f"dwatch-{seeded.id('arabic')}"]["container-title"] == "صحيفة الرافدين"


def test_ris_parses_back_with_rispy(client: Any, seeded: Seeded) -> None:
    response = client.get(f"/export?format=ris&ids={seeded.id('french')},{seeded.id('hostile')}")
    assert response.headers["content-type"] == "application/x-research-info-systems"
    assert response.headers["content-disposition"].endswith('.ris"')
    entries = rispy.loads(response.text)
    by_url = {e["urls"][0]: e for e in entries}
    french = by_url["https://courrier-rhone.example/societe/ancien-jihadiste-fuite"]
    assert french["type_of_reference"] == "NEWS"
    assert french["title"] == seeded.pages["french"].title
    assert french["secondary_title"] == "Le Courrier du Rhône"
    hostile = by_url["https://clickbait.example/ex-fighter-left"]
    assert hostile["title"] == seeded.pages["hostile"].title
    assert len(entries) == 2


def test_the_export_form_carries_the_filter_and_ticked_rows(client: Any, seeded: Seeded) -> None:
    page = lxml.html.fromstring(client.get("/?range=all&lang=en&sort=score").text)
    form = page.xpath('//form[@data-testid="export-form"]')[0]
    assert (form.get("method"), form.get("action"), form.get("id")) == ("get", "/export", "export-form")
    hidden = [(i.get("name"), i.get("value")) for i in form.xpath('.//input[@type="hidden"]')]
    assert hidden == [("range", "all"), ("lang", "en"), ("sort", "score")]
    boxes = page.xpath('//input[@type="checkbox"][@form="export-form"][@name="ids"]')
    assert [int(b.get("value")) for b in boxes] == [
        int(r.get("data-candidate-id")) for r in page.xpath('//*[@data-testid="queue-row"]')]
    # what the browser sends with nothing ticked: the whole filter
    everything = client.get("/export?" + urlencode([*hidden, ("format", "jsonl")]))
    assert sorted(json.loads(line)["candidate_id"] for line in everything.text.splitlines()) == sorted(
        ids_of(seeded, "hostile", "mother", "kobani_near", "kobani", "deserter"))
    # ... and with two rows ticked: those two
    ticked = client.get("/export?" + urlencode([*hidden, ("format", "jsonl"),
                                                ("ids", str(seeded.id("mother"))),
                                                ("ids", str(seeded.id("kobani")))]))
    assert sorted(json.loads(line)["candidate_id"] for line in ticked.text.splitlines()) == sorted(
        ids_of(seeded, "mother", "kobani"))


def test_the_api_export_is_the_same_download(client: Any, seeded: Seeded) -> None:
    page = client.get("/export?range=all&format=ris")
    api = client.get("/api/export?range=all&format=ris")
    assert api.status_code == 200 and api.content == page.content
    assert api.headers["content-type"] == page.headers["content-type"]
    assert len(rispy.loads(api.text)) == 8


def test_an_empty_selection_is_a_valid_empty_file(client: Any) -> None:
    assert json.loads(client.get("/export?range=all&lang=xx&format=csl-json").text) == []
    assert client.get("/export?range=all&lang=xx&format=jsonl").text == ""


def test_a_bad_export_request_is_a_422_page(client: Any) -> None:
    response = client.get("/export?format=docx")
    assert response.status_code == 422
    detail = lxml.html.fromstring(response.text).xpath('//*[@data-testid="error-detail"]')[0]
    assert detail.text_content() == (
        "format: 'docx' is not an export format; use one of csv, jsonl, csl-json, ris")
