"""The candidate page, its raw download and its sanitised archived copy."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import lxml.html
import pytest

from extract import load_rules
from review.sanitize import ARCHIVE_CSP
from store import open_session, queue
from tests.review.seed import Seeded
from tests.store.pages import make_page

# Every test that uses the store runs on SQLite and on PostgreSQL (tests/review/conftest.py).
STORE_BACKENDS = ("sqlite", "postgresql")


def doc(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return lxml.html.fromstring(response.text)


def text_of(page: Any, xpath: str) -> str:
    return " ".join(page.xpath(xpath)[0].text_content().split())


def field(page: Any, name: str) -> str:
    return text_of(page, f'//*[@data-field="{name}"]')


def test_the_facts_a_researcher_checks_first(client: Any, seeded: Seeded) -> None:
    kobani = seeded.pages["kobani"]
    page = doc(client.get(f"/candidates/{seeded.id('kobani')}"))
    assert text_of(page, '//*[@data-testid="candidate-title"]') == (
        '"I cooked for the emirs, then I ran": a former Islamic State member on leaving Raqqa')
    published = seeded.today - timedelta(days=18)
    assert {name: field(page, name) for name in (
        "status", "score", "source", "outlet", "author", "lang", "published", "fetched", "queued", "url",
    )} == {
        "status": "new", "score": "1.00", "source": "northern-ledger", "outlet": "Northern Ledger",
        "author": "Sara Lindqvist", "lang": "en", "published": f"{published.isoformat()} 00:00 UTC",
        "fetched": kobani.fetched_at.strftime("%Y-%m-%d %H:%M UTC"),
        "queued": kobani.fetched_at.strftime("%Y-%m-%d %H:%M UTC"),
        "url": "https://ledger.example/world/kobani-cook",
    }
    assert [a.text_content() for a in page.xpath('//*[@data-testid="narratives"]/a')] == [
        "brutality against sunnis", "corruption and privilege", "harsh disappointing life",
        "fear for family", "religious disillusion"]


def test_the_text_with_its_matched_terms_highlighted(client: Any, seeded: Seeded) -> None:
    page = doc(client.get(f"/candidates/{seeded.id('kobani')}"))
    body = page.xpath('//*[@data-testid="candidate-text"]')[0]
    marks = [m.text_content() for m in body.xpath(".//mark")]
    assert marks[:4] == ["joined", "Islamic State", "Raqqa", "defected"]
    assert {"cannon fodder", "smuggler", "not Islam", "I escaped from"} <= set(marks)
    # every mark carries its rule; the text itself is unchanged by the highlighting
    assert all(m.get("data-rule") for m in body.xpath(".//mark"))
    article = seeded.pages["kobani"].analysis.article
    assert article is not None
    assert " ".join(body.text_content().split()) == " ".join(article.text.split())
    title_marks = [m.text_content() for m in page.xpath('//*[@data-testid="candidate-title"]//mark')]
    assert title_marks == ["I", "emirs", "I ran", "former", "Islamic State", "member", "leaving", "Raqqa"]


def test_the_score_is_explained_rule_by_rule(client: Any, seeded: Seeded) -> None:
    verdict = seeded.pages["kobani"].analysis.verdict
    assert verdict is not None
    page = doc(client.get(f"/candidates/{seeded.id('kobani')}"))
    rows = [[" ".join(td.text_content().split()) for td in tr.xpath("./td")]
            for tr in page.xpath('//table[@class="contributions"]/tbody/tr')]
    assert rows == [[c.rule, f"{c.weight:+.2f}", " ".join(c.reason.split())] for c in verdict.contributions]
    assert rows[0][:2] == ["left_is", "+2.62"]
    version = load_rules(seeded.settings.rules_path).version
    assert field(page, "rules_version") == verdict.rules_version == version
    assert text_of(page, '//*[@data-testid="negatives"]') == (
        "left_the_group/not -1.50: left_the_group cancelled by nearby 'nobody', 'not', 'those who'")
    assert text_of(page, '//p[@class="explanation"]') == " ".join(verdict.explanation.split())
    terms = [li.text_content() for li in page.xpath('//*[@data-testid="matched-terms"]/li')]
    assert terms[:6] == ["I", "emirs", "I ran", "former", "Islamic State", "member"]


def test_the_whole_provenance_chain(client: Any, seeded: Seeded) -> None:
    kobani = seeded.pages["kobani"]
    page = doc(client.get(f"/candidates/{seeded.id('kobani')}"))
    chain = page.xpath('//*[@data-testid="provenance"]')[0]

    def value(name: str) -> str:
        return " ".join(chain.xpath(f'.//*[@data-field="{name}"]')[0].text_content().split())

    assert [h.text_content() for h in chain.xpath(".//h3")] == [
        "Source", "Discovered via feed", "HTTP fetch", "Archived raw copy"]
    assert {name: value(name) for name in (
        "source_id", "channel", "discovered_from", "entry_id", "entry_title", "requested_url",
        "final_url", "http_status", "fetched_at", "body_sha256", "extractor", "run_id",
        "warc_path", "warc_offset", "warc_length", "warc_record_id",
    )} == {
        "source_id": "northern-ledger", "channel": "feed",
        "discovered_from": "https://ledger.example/feeds/world.rss",
        "entry_id": "ledger-4711", "entry_title": "I cooked for the emirs, then I ran",
        "requested_url": "https://ledger.example/world/kobani-cook",
        "final_url": "https://ledger.example/world/kobani-cook", "http_status": "200",
        "fetched_at": kobani.fetched_at.strftime("%Y-%m-%d %H:%M UTC"),
        "body_sha256": hashlib.sha256(kobani.body).hexdigest(),
        "extractor": "trafilatura 2.3.1", "run_id": str(seeded.run_id),
        "warc_path": kobani.archive.path, "warc_offset": str(kobani.archive.offset),
        "warc_length": str(kobani.archive.length), "warc_record_id": kobani.archive.record_id,
    }
    link = chain.xpath('.//*[@data-field="discovered_from"]/a')[0]
    assert (link.get("href"), link.get("rel")) == ("https://ledger.example/feeds/world.rss",
                                                   "noopener noreferrer nofollow")
    raw = chain.xpath('.//*[@data-testid="raw-link"]')[0]
    assert (raw.get("href"), raw.text_content()) == (f"/candidates/{seeded.id('kobani')}/raw",
                                                     "Download exactly as fetched")
    frame = chain.xpath('.//iframe[@data-testid="archived-frame"]')[0]
    assert frame.get("src") == f"/candidates/{seeded.id('kobani')}/archived"
    assert frame.get("sandbox") == ""          # sandboxed, nothing allowed


def test_other_copies_of_the_story_earliest_first(client: Any, seeded: Seeded) -> None:
    page = doc(client.get(f"/candidates/{seeded.id('kobani_near')}"))
    story = page.xpath('//*[@data-testid="story"]//ol[@class="members"]/li')
    assert [" ".join(li.text_content().split()) for li in story] == [
        f"{(seeded.today - timedelta(days=18)).isoformat()} · northern-ledger · "
        f"{seeded.pages['kobani'].title} new",
        f"{(seeded.today - timedelta(days=16)).isoformat()} · levant-observer · "
        f"{seeded.pages['kobani_near'].title} (this page)",
    ]
    assert story[0].xpath(".//a")[0].get("href") == f"/candidates/{seeded.id('kobani')}"
    page = doc(client.get(f"/candidates/{seeded.id('kobani')}"))
    copies = page.xpath('//*[@data-testid="duplicates"]/li')
    assert len(copies) == 1
    assert copies[0].xpath(".//a")[0].get("href") == "https://syndicate.example/story/88213"
    assert "gulf-syndicate" in copies[0].text_content()
    page = doc(client.get(f"/candidates/{seeded.id('french')}"))
    assert text_of(page, '//*[@data-testid="story"]/p') == "No other copy found."


def test_the_decision_history_says_who_when_and_why(client: Any, seeded: Seeded) -> None:
    page = doc(client.get(f"/candidates/{seeded.id('indonesian')}"))
    items = page.xpath('//*[@data-testid="decision-history"]/li')
    with open_session(seeded.settings.database_url) as session:
        detail = queue.get_candidate(session, seeded.id("indonesian"))
    assert detail is not None
    assert [" ".join(li.text_content().split()) for li in items] == [
        f"{d.decided_at.strftime('%Y-%m-%d %H:%M UTC')} {who}: {key} → {status} {note}"
        for d, who, key, status, note in zip(detail.decisions, ("ben", "amal"), ("reject", "accept"),
                                             ("rejected", "accepted"),
                                             ("Looks like a returnee programme piece.",
                                              "It is his own account: accept."), strict=True)
    ]
    assert field(page, "status") == "accepted"


def test_previous_and_next_within_the_filter(client: Any, seeded: Seeded) -> None:
    # range=all by date: hostile, french, arabic, mother, indonesian, kobani_near, kobani, deserter
    page = doc(client.get(f"/candidates/{seeded.id('kobani_near')}?range=all&i=5"))
    nav = page.xpath('//nav[@class="candidate-nav"]')[0]
    assert nav.xpath('.//a[@data-nav="prev"]')[0].get("href") == (
        f"/candidates/{seeded.id('indonesian')}?range=all&i=4")
    assert nav.xpath('.//a[@data-nav="next"]')[0].get("href") == (
        f"/candidates/{seeded.id('kobani')}?range=all&i=6")
    assert "6 of 8 all dates" in " ".join(nav.text_content().split())
    assert nav.xpath('.//a[@data-nav="queue"]')[0].get("href") == "/?range=all"
    # without a position (a bookmarked link) it is found; the first has no previous
    first = doc(client.get(f"/candidates/{seeded.id('hostile')}?range=all"))
    assert not first.xpath('//a[@data-nav="prev"]')
    assert first.xpath('//a[@data-nav="next"]')[0].get("href") == (
        f"/candidates/{seeded.id('french')}?range=all&i=1")
    last = doc(client.get(f"/candidates/{seeded.id('deserter')}?range=all&i=7"))
    assert not last.xpath('//a[@data-nav="next"]')


def test_next_after_a_decision_moved_it_out_of_the_filter(client: Any, seeded: Seeded) -> None:
    with open_session(seeded.settings.database_url) as session:
        queue.record_decision(session, seeded.id("arabic"), "translate", by="amal")
    # status=new by date: hostile, french, [arabic decided], mother, kobani_near, kobani
    page = doc(client.get(f"/candidates/{seeded.id('arabic')}?range=all&status=new&i=2"))
    nav = page.xpath('//nav[@class="candidate-nav"]')[0]
    assert "not in this selection (any more)" in nav.text_content()
    assert nav.xpath('.//a[@data-nav="next"]')[0].get("href") == (
        f"/candidates/{seeded.id('mother')}?range=all&status=new&i=2")
    assert nav.xpath('.//a[@data-nav="prev"]')[0].get("href") == (
        f"/candidates/{seeded.id('french')}?range=all&status=new&i=1")


def test_an_unknown_candidate_is_a_404_page(client: Any) -> None:
    response = client.get("/candidates/9999")
    assert response.status_code == 404
    assert text_of(lxml.html.fromstring(response.text), '//*[@data-testid="error-detail"]') == (
        "there is no candidate 9999; go back to the queue to find one")
    for path in ("/candidates/9999/raw", "/candidates/9999/archived"):
        assert client.get(path).status_code == 404
    assert client.get("/no/such/page").status_code == 404


# ---------------------------------------------------------------- raw and archived copies


def test_the_raw_copy_is_the_archived_body_byte_for_byte(client: Any, seeded: Seeded) -> None:
    for name in ("kobani", "arabic", "hostile"):
        response = client.get(f"/candidates/{seeded.id(name)}/raw")
        assert response.status_code == 200
        assert response.content == seeded.pages[name].body
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"] == (
            f'attachment; filename="candidate-{seeded.id(name)}.html"')
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_no_archive_is_a_clear_404(client: Any, seeded: Seeded) -> None:
    with open_session(seeded.settings.database_url) as session:
        outcome = queue.record_page(session, make_page("https://noarchive.example/a", archive=None))
    assert outcome.candidate_id is not None
    for suffix in ("raw", "archived"):
        response = client.get(f"/candidates/{outcome.candidate_id}/{suffix}")
        assert response.status_code == 404
        assert text_of(lxml.html.fromstring(response.text), '//*[@data-testid="error-detail"]') == (
            f"candidate {outcome.candidate_id} has no archived copy: its page was stored without "
            "the raw response")
    page = doc(client.get(f"/candidates/{outcome.candidate_id}"))
    assert not page.xpath('//*[@data-testid="raw-link"]')
    assert "No raw copy was archived for this page." in page.text_content()


def test_a_missing_warc_file_is_a_404_that_says_so(client: Any, seeded: Seeded) -> None:
    (seeded.settings.archive_dir / seeded.pages["french"].archive.path).unlink()
    response = client.get(f"/candidates/{seeded.id('french')}/raw")
    assert response.status_code == 404
    detail = text_of(lxml.html.fromstring(response.text), '//*[@data-testid="error-detail"]')
    assert detail.startswith(f"the archived copy of candidate {seeded.id('french')} cannot be read: ")


@pytest.mark.parametrize("name", ["kobani", "arabic", "hostile"])
def test_the_archived_copy_is_sanitised_and_framable_only_by_us(
    client: Any, seeded: Seeded, name: str
) -> None:
    response = client.get(f"/candidates/{seeded.id(name)}/archived")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == ARCHIVE_CSP
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    page = lxml.html.fromstring(response.text)
    article = seeded.pages[name].analysis.article
    assert article is not None
    assert article.text.split("\n")[0][:60] in " ".join(page.text_content().split())
    assert not page.xpath("//script | //iframe | //object | //embed | //form | //style | //base | //meta"
                          "[@http-equiv] | //svg | //link")
    assert not [a for el in page.iter() for a in el.attrib if a.lower().startswith("on")]
    hrefs = [el.get("href") for el in page.xpath("//*[@href]")]
    assert all(h.startswith(("http://", "https://", "mailto:")) for h in hrefs), hrefs
    assert not [el.get("src") for el in page.xpath("//*[@src]") if not el.get("src").startswith("data:")]


def test_a_backfilled_candidate_names_the_method_that_found_it(client: Any, seeded: Seeded) -> None:
    from dataclasses import replace

    page_record = make_page("https://archive.example/2015/defector", channel="backfill",
                            discovered_from="https://archive.example/sitemap-2015.xml")
    page_record = replace(page_record, provenance=replace(page_record.provenance, method="sitemap"))
    with open_session(seeded.settings.database_url) as session:
        outcome = queue.record_page(session, page_record)
    assert outcome.candidate_id is not None
    page = doc(client.get(f"/candidates/{outcome.candidate_id}"))
    assert (field(page, "channel"), field(page, "method")) == ("backfill", "sitemap")
    assert "Discovered via backfill (sitemap)" in text_of(page, '//*[@data-testid="provenance"]')
    api = client.get(f"/api/candidates/{outcome.candidate_id}").json()
    assert (api["provenance"]["channel"], api["provenance"]["method"]) == ("backfill", "sitemap")
