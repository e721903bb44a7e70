"""Researchers' exports (review/export.py): every format parses back with the tool a researcher
would use (csv, json, jsonschema + the official CSL schema, rispy), exact fields, hostile titles,
and `dwatch export` on a seeded store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

import cli
from cli import main
from review.export import (
    EXPORT_FORMATS,
    csl_item,
    filename,
    media_type,
    parse_authors,
    ris_record,
    write_export,
)
from store import open_session, queue, upgrade_database
from tests.store.pages import make_page

rispy = pytest.importorskip("rispy", reason="rispy is missing: pip install -e '.[test]' to run the RIS tests")

CSL_SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "csl-data.json").read_text("utf-8"))

# a crawled title that tries to be a spreadsheet formula, close the RIS record and start another,
# and break JSON Lines readers that split on Unicode line separators
HOSTILE_TITLE = (
    '=HYPERLINK("http://evil.example","click"), "quoted"\nER  - \r\nTY  - JOUR\u2028line\ttab'
)
HOSTILE_ONE_LINE = '=HYPERLINK("http://evil.example","click"), "quoted" ER - TY - JOUR line tab'
PROVENANCE = (
    "defector-watch candidate {id}; status {status}; score {score}; rules rules-1; "
    "archived WARC record <urn:uuid:{url}>"
)


# ---------------------------------------------------------------- a seeded store


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'dwatch.sqlite3'}"
    upgrade_database(url)
    return url


def seed(url: str) -> dict[str, int]:
    """Three candidates through the store API: accepted (two authors), hostile, Arabic."""
    with open_session(url) as s:
        left = queue.record_page(s, make_page(
            "https://example.org/left", title="How I left the Islamic State",
            author="Charlie Winter; Aymenn Jawad Al-Tamimi", sitename="Example News", score=0.91,
            published=datetime(2024, 5, 1, 12, tzinfo=UTC),
            fetched_at=datetime(2024, 5, 2, 8, 30, tzinfo=UTC),
        ))
        hostile = queue.record_page(s, make_page(
            "https://example.net/x?a=1,2", title=HOSTILE_TITLE, author="Staff Reporter",
            sitename=None, source_id="evil-news", published=None, score=0.5,
        ))
        arabic = queue.record_page(s, make_page(
            "https://example.net/ar/1", title="قصة منشق عن داعش", author="حسن حسن", lang="ar",
            sitename="الشرق", score=0.7, published=datetime(2023, 12, 31, 23, 59, tzinfo=UTC),
            fetched_at=datetime(2024, 1, 3, 1, 0, tzinfo=UTC),
        ))
        ids = {"left": left.candidate_id, "hostile": hostile.candidate_id, "arabic": arabic.candidate_id}
        assert None not in ids.values()
        queue.record_decision(s, ids["left"], "accept", note="First-hand\naccount; named sources", by="ana")
        queue.record_decision(s, ids["hostile"], "reject", by="ben")
    return {k: int(v) for k, v in ids.items() if v is not None}


@pytest.fixture
def rows(store_url: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    ids = seed(store_url)
    with open_session(store_url) as s:
        exported = list(queue.iter_export(s))
    assert sorted(r["candidate_id"] for r in exported) == sorted(ids.values())
    return ids, exported


def by_id(rows: list[dict[str, Any]], candidate_id: int) -> dict[str, Any]:
    return next(r for r in rows if r["candidate_id"] == candidate_id)


def export(rows: list[dict[str, Any]], fmt: str) -> tuple[int, str]:
    out = io.StringIO(newline="")
    count = write_export(iter(rows), fmt, out)
    return count, out.getvalue()


# ---------------------------------------------------------------- CSV and JSON Lines


def test_csv_parses_back_to_every_row_and_quotes_a_formula(
    rows: tuple[dict[str, int], list[dict[str, Any]]],
) -> None:
    ids, exported = rows
    count, text = export(exported, "csv")
    assert count == 3
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table[0] == list(exported[0])  # one header row, the store's column order
    assert len(table) == 1 + len(exported)
    for row, cells in zip(exported, table[1:], strict=True):
        want = {k: "" if v is None else str(v) for k, v in row.items()}
        if row["candidate_id"] == ids["hostile"]:
            want["title"] = "'" + HOSTILE_TITLE  # a spreadsheet shows it as text, never runs it
        assert dict(zip(table[0], cells, strict=True)) == want
    assert "score" in table[0] and "archive_record_id" in table[0] and "fetched_at" in table[0]
    assert not any(line.startswith("=") for line in text.splitlines())


def test_csv_prefixes_every_formula_start_but_keeps_numbers() -> None:
    base = {"candidate_id": 1, "score": -0.5}
    starts = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "plain", "a=b"]
    _, text = export([{**base, "title": t} for t in starts], "csv")
    cells = [line[2] for line in list(csv.reader(io.StringIO(text, newline="")))[1:]]
    assert cells == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "plain", "a=b"]
    assert list(csv.reader(io.StringIO(text, newline="")))[1][1] == "-0.5"


def test_jsonl_parses_back_line_by_line_even_with_unicode_line_separators(
    rows: tuple[dict[str, int], list[dict[str, Any]]],
) -> None:
    ids, exported = rows
    count, text = export(exported, "jsonl")
    assert count == 3
    lines = text.splitlines()  # str.splitlines() splits on U+2028 too: it must not appear raw
    assert [json.loads(line) for line in lines] == exported
    hostile_line = lines[[r["candidate_id"] for r in exported].index(ids["hostile"])]
    assert json.loads(hostile_line)["title"] == HOSTILE_TITLE
    assert "قصة منشق عن داعش" in text  # UTF-8 as written, not \u escapes


# ---------------------------------------------------------------- CSL-JSON


def test_csl_json_is_valid_against_the_official_schema_with_exact_fields(
    rows: tuple[dict[str, int], list[dict[str, Any]]],
) -> None:
    ids, exported = rows
    count, text = export(exported, "csl-json")
    assert count == 3
    items = json.loads(text)
    jsonschema.validate(items, CSL_SCHEMA, cls=jsonschema.Draft7Validator)
    got = {item["id"]: item for item in items}
    assert got[f"dwatch-{ids['left']}"] == {
        "id": f"dwatch-{ids['left']}",
        "type": "article-newspaper",
        "title": "How I left the Islamic State",
        "container-title": "Example News",
        "author": [
            {"family": "Winter", "given": "Charlie"}, {"family": "Al-Tamimi", "given": "Aymenn Jawad"},
        ],
        "issued": {"date-parts": [[2024, 5, 1]]},
        "accessed": {"date-parts": [[2024, 5, 2]]},
        "URL": "https://example.org/left",
        "language": "en",
        "abstract": "First-hand account; named sources",
        "note": PROVENANCE.format(id=ids["left"], status="accepted", score="0.91", url="https://example.org/left"),
    }
    hostile = got[f"dwatch-{ids['hostile']}"]
    assert hostile["title"] == HOSTILE_ONE_LINE
    assert hostile["container-title"] == "evil-news"  # no site name: the source id
    assert hostile["author"] == [{"literal": "Staff Reporter"}]
    assert "issued" not in hostile and hostile["accessed"] == {"date-parts": [[2024, 5, 2]]}
    assert hostile["URL"] == "https://example.net/x?a=1,2" and "abstract" not in hostile
    assert hostile["note"].startswith(
        f"defector-watch candidate {ids['hostile']}; status rejected; score 0.5;"
    )
    arabic = got[f"dwatch-{ids['arabic']}"]
    assert (arabic["title"], arabic["container-title"], arabic["language"]) == (
        "قصة منشق عن داعش", "الشرق", "ar",
    )
    assert arabic["author"] == [{"literal": "حسن حسن"}]
    assert arabic["issued"] == {"date-parts": [[2023, 12, 31]]}
    assert arabic["accessed"] == {"date-parts": [[2024, 1, 3]]}


def test_csl_json_of_nothing_is_an_empty_array_and_an_unparsable_date_is_kept_as_literal() -> None:
    assert export([], "csl-json") == (0, "[]\n")
    item = csl_item({"candidate_id": 9, "published": "spring 2024", "fetched_at": None, "status": "new"})
    jsonschema.validate([item], CSL_SCHEMA, cls=jsonschema.Draft7Validator)
    assert item["issued"] == {"literal": "spring 2024"} and "accessed" not in item


def test_csl_json_is_written_item_by_item() -> None:
    out = io.StringIO()

    def produced() -> Iterator[dict[str, Any]]:
        for n in (1, 2, 3):
            if n > 1:  # the previous item is already out before the next row is read
                assert f'"id": "dwatch-{n - 1}"' in out.getvalue()
            yield {"candidate_id": n, "title": f"Story {n}"}

    assert write_export(produced(), "csl-json", out) == 3
    assert [i["title"] for i in json.loads(out.getvalue())] == ["Story 1", "Story 2", "Story 3"]


# ---------------------------------------------------------------- RIS


def test_ris_parses_back_with_rispy_with_exact_fields(
    rows: tuple[dict[str, int], list[dict[str, Any]]],
) -> None:
    ids, exported = rows
    count, text = export(exported, "ris")
    assert count == 3
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # CRLF line ends only
    records = {r["id"]: r for r in rispy.loads(text)}
    assert len(records) == 3  # the hostile title opened no record of its own
    assert records[f"dwatch-{ids['left']}"] == {
        "type_of_reference": "NEWS",
        "id": f"dwatch-{ids['left']}",
        "title": "How I left the Islamic State",
        "secondary_title": "Example News",
        "authors": ["Winter, Charlie", "Al-Tamimi, Aymenn Jawad"],
        "year": "2024",
        "date": "2024/05/01",
        "access_date": "2024/05/02",
        "urls": ["https://example.org/left"],
        "language": "en",
        "abstract": "First-hand account; named sources",
        "notes": [PROVENANCE.format(id=ids["left"], status="accepted", score="0.91", url="https://example.org/left")],
    }
    hostile = records[f"dwatch-{ids['hostile']}"]
    assert hostile["title"] == HOSTILE_ONE_LINE and hostile["secondary_title"] == "evil-news"
    assert hostile["authors"] == ["Staff Reporter"] and "year" not in hostile and "date" not in hostile
    assert hostile["type_of_reference"] == "NEWS" and hostile["access_date"] == "2024/05/02"
    arabic = records[f"dwatch-{ids['arabic']}"]
    assert (arabic["title"], arabic["authors"], arabic["language"]) == ("قصة منشق عن داعش", ["حسن حسن"], "ar")
    assert (arabic["year"], arabic["date"], arabic["access_date"]) == ("2023", "2023/12/31", "2024/01/03")


def test_ris_record_lines_are_tag_two_spaces_dash_value() -> None:
    record = ris_record({"candidate_id": 4, "title": "A\nB", "sitename": "Outlet", "url": "https://e.org/4",
                         "status": "new", "score": 0.25, "rules_version": "r9", "archive_record_id": None})
    assert record.split("\r\n") == [
        "TY  - NEWS", "ID  - dwatch-4", "TI  - A B", "T2  - Outlet", "UR  - https://e.org/4",
        "N1  - defector-watch candidate 4; status new; score 0.25; rules r9; archived WARC record none",
        "ER  - ", "",
    ]


# ---------------------------------------------------------------- names, formats


@pytest.mark.parametrize(("byline", "names"), [
    ("Jane Doe", [{"family": "Doe", "given": "Jane"}]),
    ("By Hassan Hassan", [{"family": "Hassan", "given": "Hassan"}]),
    ("Jane Doe and John Smith", [{"family": "Doe", "given": "Jane"}, {"family": "Smith", "given": "John"}]),
    ("Jane Doe, John Smith", [{"family": "Doe", "given": "Jane"}, {"family": "Smith", "given": "John"}]),
    ("Smith, John", [{"literal": "Smith, John"}]),            # ambiguous: never split into two people
    ("Reuters", [{"literal": "Reuters"}]),
    ("Staff Reporter; AFP", [{"literal": "Staff Reporter"}, {"literal": "AFP"}]),
    ("John Smith Jr.", [{"literal": "John Smith Jr."}]),
    ("abu Bakr al-Baghdadi", [{"literal": "abu Bakr al-Baghdadi"}]),
    ("حسن حسن", [{"literal": "حسن حسن"}]),
    ("  \n ", []),
    (None, []),
])
def test_bylines_become_csl_names_or_literals(byline: str | None, names: list[dict[str, str]]) -> None:
    assert parse_authors(byline) == names


def test_formats_have_media_types_and_file_names_and_an_unknown_one_is_refused() -> None:
    assert [media_type(f) for f in EXPORT_FORMATS] == [
        "text/csv", "application/x-ndjson", "application/vnd.citationstyles.csl+json",
        "application/x-research-info-systems",
    ]
    assert [filename(f, "accepted-2024-05") for f in EXPORT_FORMATS] == [
        "accepted-2024-05.csv", "accepted-2024-05.jsonl", "accepted-2024-05.json", "accepted-2024-05.ris",
    ]
    with pytest.raises(ValueError) as refused:
        write_export([], "bibtex", io.StringIO())
    assert str(refused.value) == "unknown export format 'bibtex'; use one of csv, jsonl, csl-json, ris"
    assert [export([], f) for f in ("csv", "jsonl", "ris")] == [(0, ""), (0, ""), (0, "")]


# ---------------------------------------------------------------- dwatch export


def dwatch(store_url: str, *args: str) -> Any:
    data_dir = store_url.removeprefix("sqlite:///").rsplit("/", 1)[0]
    return CliRunner().invoke(main, ["export", *args], env={
        "DWATCH_DATA_DIR": data_dir, "DWATCH_DATABASE_URL": store_url, "DWATCH_CONFIG_DIR": None,
    }, catch_exceptions=False)


def test_dwatch_export_ris_and_csl_json_of_a_selection(store_url: str, tmp_path: Path) -> None:
    assert cli.EXPORT_FORMATS == EXPORT_FORMATS  # the CLI spells them out to keep its start-up light
    ids = seed(store_url)
    accepted = dwatch(store_url, "--format", "ris", "--status", "accepted")
    assert accepted.exit_code == 0, accepted.output
    assert [r["id"] for r in rispy.loads(accepted.stdout)] == [f"dwatch-{ids['left']}"]
    assert "exported 1 candidate(s)" in accepted.stderr

    out = tmp_path / "selection.json"
    selection = f"{ids['arabic']},{ids['hostile']}"
    chosen = dwatch(store_url, "--format", "csl-json", "--ids", selection, "-o", str(out))
    assert chosen.exit_code == 0, chosen.output
    items = json.loads(out.read_text("utf-8"))
    jsonschema.validate(items, CSL_SCHEMA, cls=jsonschema.Draft7Validator)
    assert sorted(i["id"] for i in items) == sorted(f"dwatch-{ids[k]}" for k in ("arabic", "hostile"))

    arabic = dwatch(store_url, "--format", "csl-json", "--lang", "ar", "--until", "2024-01-01")
    assert [i["title"] for i in json.loads(arabic.stdout)] == ["قصة منشق عن داعش"]
    dated = dwatch(store_url, "--format", "jsonl", "--since", "2024-05-01", "--until", "2024-05-01")
    assert [json.loads(line)["candidate_id"] for line in dated.stdout.splitlines()] == [ids["left"]]

    bad = dwatch(store_url, "--format", "ris", "--ids", "3,x")
    assert bad.exit_code == 2 and "--ids" in bad.output and "'x'" in bad.output
