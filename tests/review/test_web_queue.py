"""The queue page: today's queue by default, date ranges, filters, counts, sorting and paging.

The seeded store (seed.py) queued kobani, kobani_near, french, arabic, indonesian and hostile
today, deserter 3 days ago and mother (undated) 9 days ago; deserter and indonesian are
accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest

from review.web import create_app
from store import open_session, queue, upgrade_database
from tests.review.conftest import BASE_URL, LOOPBACK_CLIENT, test_client_class
from tests.review.seed import Seeded, settings_for
from tests.store.pages import make_page, signature, verdict

# Every test that uses the store runs on SQLite and on PostgreSQL (tests/review/conftest.py).
STORE_BACKENDS = ("sqlite", "postgresql")

TODAY = ["hostile", "indonesian", "arabic", "french", "kobani_near", "kobani"]   # queued order
ALL_BY_DATE = ["hostile", "french", "arabic", "mother", "indonesian", "kobani_near", "kobani",
               "deserter"]


def doc(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return lxml.html.fromstring(response.text)


def row_ids(response: Any) -> list[int]:
    return [int(row.get("data-candidate-id"))
            for row in doc(response).xpath('//*[@data-testid="queue-row"]')]


def names(seeded: Seeded, ids: list[int]) -> list[str]:
    by_id = {page.candidate_id: name for name, page in seeded.pages.items()}
    return [by_id[i] for i in ids]


def test_the_default_queue_is_what_was_queued_today(client: Any, seeded: Seeded) -> None:
    response = client.get("/")
    assert names(seeded, row_ids(response)) == TODAY
    heading = doc(response).xpath('//*[@data-testid="queue-heading"]')[0].text_content()
    assert heading == "6 candidates queued today (UTC)"
    # quick links: today, last 7 days, all new, all
    links = {a.text_content(): a.get("href") for a in doc(response).xpath("//nav[@class='quick']//a")}
    assert links == {"Today": "/", "Last 7 days": "/?range=7d", "All new": "/?range=all&status=new",
                     "All": "/?range=all"}


def test_quick_ranges(client: Any, seeded: Seeded) -> None:
    assert names(seeded, row_ids(client.get("/?range=7d"))) == ["hostile", "indonesian", "arabic",
                                                                  "french", "kobani_near", "kobani",
                                                                  "deserter"]
    assert names(seeded, row_ids(client.get("/?range=all"))) == ALL_BY_DATE
    assert names(seeded, row_ids(client.get("/?range=all&status=new"))) == [
        n for n in ALL_BY_DATE if n not in ("deserter", "indonesian")]


def test_counts_per_status_are_links_to_that_status(client: Any, seeded: Seeded) -> None:
    page = doc(client.get("/?range=all"))
    counts = {a.get("data-testid"): a.xpath('.//span[@class="count"]')[0].text
              for a in page.xpath('//a[starts-with(@data-testid, "status-count-")]')}
    assert counts == {
        "status-count-any": "8", "status-count-new": "6", "status-count-accepted": "2",
        "status-count-rejected": "0", "status-count-duplicate": "0",
        "status-count-needs_translation": "0", "status-count-unflagged": "0",
    }
    href = page.xpath('//a[@data-testid="status-count-accepted"]')[0].get("href")
    assert parse_qs(urlsplit(href).query) == {"range": ["all"], "status": ["accepted"]}
    assert sorted(names(seeded, row_ids(client.get(href)))) == ["deserter", "indonesian"]
    # the counts follow the other filters (here: English only)
    page = doc(client.get("/?range=all&lang=en"))
    assert page.xpath('//a[@data-testid="status-count-new"]/span')[0].text == "4"
    assert page.xpath('//a[@data-testid="status-count-accepted"]/span')[0].text == "1"


@pytest.mark.parametrize(("query", "expected"), [
    ("lang=ar", ["arabic"]),
    ("lang=fr", ["french"]),
    ("lang=id", ["indonesian"]),
    ("source=levant-observer", ["kobani_near"]),
    ("channel=sitemap", ["indonesian", "deserter"]),
    ("channel=listing", ["hostile", "mother", "kobani_near"]),
    ("narrative=fights_sunni_rebels", ["deserter"]),
    ("narrative=fear_for_family&lang=en", ["mother", "kobani_near", "kobani"]),
    ("status=accepted&channel=sitemap", ["indonesian", "deserter"]),
    ("min_score=0.99&lang=ar", ["arabic"]),
])
def test_filters_return_exactly_the_matching_candidates(
    client: Any, seeded: Seeded, query: str, expected: list[str]
) -> None:
    assert names(seeded, row_ids(client.get(f"/?range=all&{query}"))) == expected


def test_a_date_range_by_publication_or_by_queueing(client: Any, seeded: Seeded) -> None:
    today = seeded.today
    week_ago = (today - timedelta(days=6)).isoformat()
    published = client.get(f"/?since={week_ago}&until={today.isoformat()}&dates=published")
    assert names(seeded, row_ids(published)) == ["hostile", "french", "arabic"]
    heading = doc(published).xpath('//*[@data-testid="queue-heading"]')[0].text_content()
    assert heading == f"3 candidates published from {week_ago} to {today.isoformat()}"
    three_days_ago = (today - timedelta(days=3)).isoformat()
    queued = client.get(f"/?since={three_days_ago}&until={three_days_ago}&dates=queued")
    assert names(seeded, row_ids(queued)) == ["deserter"]
    # the undated page counts by the day it was queued
    nine = (today - timedelta(days=9)).isoformat()
    assert names(seeded, row_ids(client.get(f"/?since={nine}&until={nine}"))) == ["mother"]
    # an empty range form means every date
    assert len(row_ids(client.get("/?since=&until=&dates=published"))) == 8


def test_each_row_shows_what_a_researcher_scans(client: Any, seeded: Seeded) -> None:
    page = doc(client.get("/?range=all"))
    rows = {int(r.get("data-candidate-id")): r for r in page.xpath('//*[@data-testid="queue-row"]')}

    def cells(name: str) -> dict[str, str]:
        row = rows[seeded.id(name)]
        return {td.get("data-field"): " ".join(td.text_content().split())
                for td in row.xpath("./td[@data-field]")}

    kobani = cells("kobani")
    queued_at = datetime.fromisoformat(client.get(f"/api/candidates/{seeded.id('kobani')}").json()[
        "queued_at"])
    assert kobani.pop("queued") == queued_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert kobani == {
        "score": "1.00", "source": "northern-ledger via feed", "lang": "en",
        "published": (seeded.today - timedelta(days=18)).isoformat(),
        "narratives": "brutality against sunnis corruption and privilege fear for family "
                      "harsh disappointing life religious disillusion",
        "status": "new", "story": "2 / 1",
    }
    assert cells("deserter")["status"] == "accepted"
    assert cells("kobani_near")["story"] == "2 / 0"
    assert cells("mother")["published"] == f"— (queued {(seeded.today - timedelta(days=9)).isoformat()})"
    title = rows[seeded.id("arabic")].xpath('.//a[@data-field="title"]')[0]
    assert title.text_content() == seeded.pages["arabic"].title


def test_row_links_keep_the_filter_and_position_for_prev_next(client: Any, seeded: Seeded) -> None:
    page = doc(client.get("/?range=all&lang=en"))
    links = [r.xpath('.//a[@data-field="title"]')[0].get("href")
             for r in page.xpath('//*[@data-testid="queue-row"]')]
    assert links[0] == f"/candidates/{seeded.id('hostile')}?range=all&lang=en&i=0"
    assert links[2] == f"/candidates/{seeded.id('kobani_near')}?range=all&lang=en&i=2"


@pytest.mark.parametrize(("query", "message"), [
    ("since=2024-13-01", "since: '2024-13-01' is not a date; use the format YYYY-MM-DD (e.g. 2024-05-01)"),
    ("until=yesterday", "until: 'yesterday' is not a date; use the format YYYY-MM-DD (e.g. 2024-05-01)"),
    ("since=2024-05-02&until=2024-05-01",
     "since 2024-05-02 is after until 2024-05-01: the date range is empty"),
    ("status=maybe", "status: 'maybe' is not one of new, accepted, rejected, duplicate, needs_translation, "
                     "unflagged"),
    ("min_score=2", "min_score: '2' is not a score; use a number from 0 to 1 (e.g. 0.6)"),
    ("range=month", "range: 'month' is not one of today, 7d, all"),
    ("page=0", "page: '0' is not a page number; use 1, 2, 3 ..."),
])
def test_bad_filter_values_get_a_422_page_that_says_how_to_fix_them(
    client: Any, query: str, message: str
) -> None:
    response = client.get(f"/?{query}")
    assert response.status_code == 422
    page = lxml.html.fromstring(response.text)
    assert page.xpath('//*[@data-testid="error-detail"]')[0].text_content() == message


# ---------------------------------------------------------------- many candidates


@pytest.fixture
def big_client(tmp_path: Path, store_url: str) -> Iterator[Any]:
    """A store of 205 candidates with scores 0.55..0.99, published over 205 days."""
    settings = settings_for(tmp_path / "data", store_url)
    settings.data_dir.mkdir(parents=True)
    upgrade_database(settings.database_url)
    start = datetime(2024, 1, 1, 9, tzinfo=UTC)
    with open_session(settings.database_url) as session:
        for i in range(205):
            score = round(0.55 + (i % 45) / 100, 2)
            queue.record_page(session, make_page(
                f"https://many.example/{i}", score=score, verdict=verdict(score),
                text=f"Story {i}: he defected from the Islamic State, account number {i}.",
                minhash=signature(i + 1), published=start + timedelta(days=i), title=f"Story {i}",
            ))
    app = create_app(settings)
    with test_client_class()(app, base_url=BASE_URL, client=LOOPBACK_CLIENT) as test_client:
        yield test_client


def titles(response: Any) -> list[str]:
    return [a.text_content() for a in doc(response).xpath('//a[@data-field="title"]')]


def test_pages_of_100_with_a_pager(big_client: Any) -> None:
    first = big_client.get("/?range=all")
    assert len(titles(first)) == 100
    assert titles(first)[:2] == ["Story 204", "Story 203"]
    pager = doc(first).xpath('//nav[@class="pager"]')[0]
    assert " ".join(pager.text_content().split()) == "page 1 of 3 next 100 →"
    assert pager.xpath(".//a[@rel='next']")[0].get("href") == "/?range=all&page=2"
    third = big_client.get("/?range=all&page=3")
    assert titles(third) == ["Story 4", "Story 3", "Story 2", "Story 1", "Story 0"]
    second = doc(big_client.get("/?range=all&page=2"))
    assert " ".join(second.xpath('//nav[@class="pager"]')[0].text_content().split()) == (
        "← previous 100 page 2 of 3 next 100 →")
    assert second.xpath('//*[@data-testid="queue-row"]')[0].xpath('.//a')[0].get("href").endswith("i=100")


def test_sort_by_score_and_date_both_ways(big_client: Any) -> None:
    by_score = titles(big_client.get("/?range=all&sort=score"))
    # 0.99 is scored by i = 44, 89, 134, 179 (latest queued first on a tie)
    assert by_score[:4] == ["Story 179", "Story 134", "Story 89", "Story 44"]
    assert titles(big_client.get("/?range=all&sort=score&order=asc"))[:2] == ["Story 0", "Story 45"]
    assert titles(big_client.get("/?range=all&order=asc"))[:3] == ["Story 0", "Story 1", "Story 2"]


def test_min_score_keeps_the_high_scores_only(big_client: Any) -> None:
    response = big_client.get("/?range=all&min_score=0.97")
    # 0.97, 0.98 and 0.99 for i % 45 in (42, 43, 44): four of each below i = 205
    heading = doc(response).xpath('//*[@data-testid="queue-heading"]')[0].text_content()
    assert heading == "12 candidates all dates"
    assert all(float(td.text) >= 0.97 for td in doc(response).xpath('//td[@data-field="score"]'))
