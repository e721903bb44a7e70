"""The JSON API: list, get, overview, facets, its errors, and /openapi.json describing it all."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from extract import load_rules
from review.web import APP_TITLE
from tests.review.seed import Seeded


def test_list_with_filters_total_counts_and_paging(client: Any, seeded: Seeded) -> None:
    body = client.get("/api/candidates?range=all&limit=3&offset=2").json()
    assert [item["id"] for item in body["items"]] == [
        seeded.id(n) for n in ("arabic", "mother", "indonesian")]
    assert (body["total"], body["limit"], body["offset"]) == (8, 3, 2)
    assert body["counts"] == {"new": 6, "accepted": 2, "rejected": 0, "duplicate": 0,
                              "needs_translation": 0, "unflagged": 0}
    first = body["items"][0]
    arabic = seeded.pages["arabic"]
    assert first == {
        "id": seeded.id("arabic"), "document_id": arabic.document_id, "status": "new", "score": 1.0,
        "lang": "ar", "title": arabic.title, "url": arabic.url, "canonical_url": arabic.url,
        "source_id": "rafidain", "channel": "feed",
        "published": f"{(seeded.today - timedelta(days=5)).isoformat()}T00:00:00Z",
        "queued_at": arabic.fetched_at.isoformat().replace("+00:00", "Z"),
        "story_id": first["story_id"], "story_size": 1, "duplicate_count": 0,
        "narratives": ["corruption_and_privilege", "fear_for_family"],
    }
    # the page's default: what was queued today
    today = client.get("/api/candidates").json()
    assert today["total"] == 6
    accepted = client.get("/api/candidates?range=all&lang=en&status=accepted").json()
    assert [i["id"] for i in accepted["items"]] == [seeded.id("deserter")]
    by_score = client.get("/api/candidates?range=all&sort=score&order=asc&limit=1").json()
    assert by_score["items"][0]["score"] == 1.0 and by_score["total"] == 8


def test_get_one_candidate_with_everything(client: Any, seeded: Seeded) -> None:
    kobani = seeded.pages["kobani"]
    body = client.get(f"/api/candidates/{seeded.id('kobani')}").json()
    verdict = kobani.analysis.verdict
    assert verdict is not None
    assert body["title"] == kobani.title and body["sitename"] == "Northern Ledger"
    assert body["author"] == "Sara Lindqvist"
    assert body["verdict"]["rules_version"] == verdict.rules_version
    assert [c["rule"] for c in body["verdict"]["contributions"]] == [c.rule for c in verdict.contributions]
    assert [n["rule"] for n in body["verdict"]["negatives"]] == ["left_the_group/not"]
    assert len(body["verdict"]["matches"]) == len(verdict.matches)
    provenance = body["provenance"]
    assert {k: provenance[k] for k in ("source_id", "channel", "discovered_from", "entry_id",
                                       "http_status", "body_sha256", "extractor", "rules_version")} == {
        "source_id": "northern-ledger", "channel": "feed",
        "discovered_from": "https://ledger.example/feeds/world.rss", "entry_id": "ledger-4711",
        "http_status": 200, "body_sha256": hashlib.sha256(kobani.body).hexdigest(),
        "extractor": "trafilatura", "rules_version": load_rules(seeded.settings.rules_path).version,
    }
    assert provenance["archive"] == {"path": kobani.archive.path, "offset": kobani.archive.offset,
                                     "length": kobani.archive.length, "record_id": kobani.archive.record_id}
    assert datetime.fromisoformat(provenance["fetched_at"]) == kobani.fetched_at
    assert [d["document_id"] for d in body["story"]] == [kobani.document_id,
                                                         seeded.pages["kobani_near"].document_id]
    assert [d["url"] for d in body["duplicates"]] == ["https://syndicate.example/story/88213"]
    assert body["decisions"] == []
    assert (body["raw_url"], body["archived_url"]) == (f"/candidates/{seeded.id('kobani')}/raw",
                                                       f"/candidates/{seeded.id('kobani')}/archived")
    decided = client.get(f"/api/candidates/{seeded.id('indonesian')}").json()["decisions"]
    assert [(d["decision"], d["decided_by"], d["note"]) for d in decided] == [
        ("reject", "ben", "Looks like a returnee programme piece."),
        ("accept", "amal", "It is his own account: accept.")]


def test_unknown_candidate_is_a_json_404(client: Any) -> None:
    response = client.get("/api/candidates/424242")
    assert response.status_code == 404
    assert response.json() == {"detail": "there is no candidate 424242; go back to the queue to find one"}


@pytest.mark.parametrize(("path", "detail"), [
    ("/api/candidates?since=01/05/2024", "since: '01/05/2024' is not a date; use the format YYYY-MM-DD "
                                        "(e.g. 2024-05-01)"),
    ("/api/candidates?until=2024-02-30", "until: '2024-02-30' is not a date; use the format YYYY-MM-DD "
                                        "(e.g. 2024-05-01)"),
    ("/api/overview?since=soon", "since: 'soon' is not a date; use the format YYYY-MM-DD (e.g. 2024-05-01)"),
    ("/api/export?format=xlsx",
     "format: 'xlsx' is not an export format; use one of csv, jsonl, csl-json, ris"),
    ("/api/export?ids=1,two", "ids: 'two' is not a candidate id; use numbers like 12,15"),
    ("/api/candidates?channel=email",
     "channel: 'email' is not one of feed, sitemap, listing, backfill, manual"),
    ("/api/candidates?limit=0", "limit: Input should be greater than or equal to 1"),
])
def test_bad_parameters_are_422_naming_the_parameter(client: Any, path: str, detail: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_overview_counts_per_week(client: Any, seeded: Seeded) -> None:
    body = client.get("/api/overview").json()
    expected: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    for name in seeded.candidate_names:
        page = seeded.pages[name]
        day = (page.published or page.fetched_at).date()
        expected[monday(day).isoformat()] += 1
        accepted[monday(day).isoformat()] += name in ("deserter", "indonesian")
    totals = {row["week"]: (row["candidates"], row["accepted"]) for row in body["totals"]}
    assert {week: counts for week, counts in totals.items() if counts != (0, 0)} == {
        week: (count, accepted[week]) for week, count in expected.items()}
    assert body["weeks"] == sorted(totals)
    langs = Counter()
    for row in body["by_language"]:
        langs[row["key"]] += row["candidates"]
    assert langs == Counter({"en": 5, "ar": 1, "fr": 1, "id": 1})
    since = (seeded.today - timedelta(days=6)).isoformat()
    recent = client.get(f"/api/overview?since={since}").json()
    assert sum(row["candidates"] for row in recent["totals"]) == 3   # hostile, french, arabic


def test_facets_list_the_values_filters_accept(client: Any) -> None:
    assert client.get("/api/facets").json() == {
        "statuses": ["new", "accepted", "rejected", "duplicate", "needs_translation", "unflagged"],
        "decisions": {"accept": "accepted", "reject": "rejected", "duplicate": "duplicate",
                      "translate": "needs_translation"},
        "languages": ["ar", "en", "fr", "id"],
        "sources": ["clickbait-daily", "courrier-rhone", "harbour-review", "levant-observer",
                    "meridian-wire", "northern-ledger", "rafidain", "warta-nusantara"],
        "channels": ["feed", "listing", "sitemap"],
        "narratives": ["brutality_against_sunnis", "corruption_and_privilege", "fear_for_family",
                       "fights_sunni_rebels", "harsh_disappointing_life", "religious_disillusion"],
        "export_formats": ["csv", "jsonl", "csl-json", "ris"],
    }


def test_openapi_describes_every_api_route_with_its_schemas(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == APP_TITLE == "defector-watch review API"
    api_routes = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert api_routes == {
        ("/api/candidates", "get"), ("/api/candidates/{candidate_id}", "get"),
        ("/api/candidates/{candidate_id}/decision", "post"), ("/api/export", "get"),
        ("/api/overview", "get"), ("/api/facets", "get"),
    }
    schemas = spec["components"]["schemas"]

    def response_schema(path: str, method: str = "get") -> str:
        content = spec["paths"][path][method]["responses"]["200"]["content"]
        return str(content["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]

    assert response_schema("/api/candidates") == "CandidateList"
    assert response_schema("/api/candidates/{candidate_id}") == "CandidateDetailOut"
    assert response_schema("/api/candidates/{candidate_id}/decision", "post") == "DecisionOut"
    assert response_schema("/api/overview") == "OverviewOut"
    assert response_schema("/api/facets") == "FacetsOut"
    decide = spec["paths"]["/api/candidates/{candidate_id}/decision"]["post"]
    assert decide["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DecisionIn")
    assert set(schemas["DecisionIn"]["required"]) == {"decision"}
    assert {"provenance", "verdict", "decisions", "story", "duplicates"} <= set(
        schemas["CandidateDetailOut"]["properties"])
    assert decide["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    listed = {p["name"] for p in spec["paths"]["/api/candidates"]["get"]["parameters"]}
    assert listed == {"range", "since", "until", "dates", "status", "lang", "source", "narrative",
                      "channel", "min_score", "sort", "order", "limit", "offset"}
    export = spec["paths"]["/api/export"]["get"]
    assert set(export["responses"]["200"]["content"]) >= {
        "text/csv", "application/x-ndjson", "application/vnd.citationstyles.csl+json",
        "application/x-research-info-systems"}
    # the HTML pages are not part of the API description
    assert not [p for p in spec["paths"] if not p.startswith("/api/")]
