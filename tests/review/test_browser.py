"""Real-browser tests of the review workbench: Debian's chromium, driven by Playwright, against
the app served by uvicorn on 127.0.0.1 over a store seeded by a crawl of team-written pages
(tests/review/seed.py).

A researcher's morning, step by step: open the queue, filter it, open a candidate and read its
highlights and provenance, triage with the keyboard, and find each decision in the store. The
hostile article (script tags, event handlers, javascript: links, remote loads) is opened in
every view and shown to be inert by its effects: nothing it tries ever happens.

Screenshots of the queue and of a candidate page go to test-artifacts/ (see browser.py).
Without /usr/bin/chromium these tests skip (``apt-get install chromium``); CI sets
DWATCH_REQUIRE_BROWSER_TEST=1 so they fail instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from extract import scored_text
from review.sanitize import ARCHIVE_CSP
from store import CandidateDetail, open_session, queue
from tests.review.browser import BrowserSession, LiveServer, browser_session, chromium, live_server
from tests.review.seed import HOSTILE_MARKERS, Seeded

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# The page policy the Security section asks for, word for word.
APP_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
           "base-uri 'none'")

# The seeded queue by publication date, newest first (the undated "mother" counts by the day it
# was queued, 9 days ago); "deserter" and "indonesian" were accepted while seeding.
ALL_BY_DATE = ("hostile", "french", "arabic", "mother", "indonesian", "kobani_near", "kobani",
               "deserter")
# Today's queue (dates=queued) is in the order the crawl queued them, latest first.
QUEUED_TODAY = ("hostile", "indonesian", "arabic", "french", "kobani_near", "kobani")
# Every score is 1.00: by score, ascending, ties go by the time queued (oldest first).
BY_SCORE_ASC = ("mother", "deserter", "kobani", "kobani_near", "french", "arabic", "indonesian",
                "hostile")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def server(seeded: Seeded) -> Iterator[LiveServer]:
    from review.web import create_app

    with live_server(create_app(seeded.settings)) as live:
        yield live


@pytest.fixture
def session(browser: Browser, server: LiveServer) -> Iterator[BrowserSession]:
    with browser_session(browser, server) as opened:
        yield opened


# ---------------------------------------------------------------------------- helpers


def row_ids(page: Page) -> list[int]:
    return [int(row.get_attribute("data-candidate-id") or "0")
            for row in page.get_by_test_id("queue-row").all()]


def ids_of(seeded: Seeded, *names: str) -> list[int]:
    return [seeded.id(name) for name in names]


def stored(seeded: Seeded, candidate_id: int) -> CandidateDetail:
    """The candidate as the store has it now (read directly, not through the app)."""
    with open_session(seeded.settings.database_url) as db:
        detail = queue.get_candidate(db, candidate_id)
    assert detail is not None, f"candidate {candidate_id} is not in the store"
    return detail


def apply_filter(page: Page, **values: str) -> None:
    """Set the filter form's selects (``lang="fr"``; "" means any) and press Apply."""
    form = page.get_by_test_id("filter-form")
    for name, value in values.items():
        form.locator(f"select[name={name}]").select_option(value)
    with page.expect_navigation():
        form.get_by_role("button", name="Apply").click()


def selected_ids(page: Page) -> list[int]:
    return [int(row.get_attribute("data-candidate-id") or "0")
            for row in page.locator('[data-testid="queue-row"][aria-selected="true"]').all()]


def expected_marks(detail: CandidateDetail) -> tuple[list[str], list[str]]:
    """The texts the title's and the body's <mark>s must show: the stored verdict's matches,
    overlapping ones merged into one span, in text order (offsets into title + blank line + body)."""
    assert detail.title and detail.text and detail.verdict
    full = scored_text(detail.title, detail.text)
    merged: list[list[int]] = []
    for start, end in sorted((m["start"], m["end"]) for m in detail.verdict["matches"]):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    title = [full[s:e] for s, e in merged if e <= len(detail.title)]
    body = [full[s:e] for s, e in merged if s >= len(detail.title) + 2]
    assert len(title) + len(body) == len(merged), "a match spans the title and the body"
    return title, body


def handlers_and_scripts(page: Page) -> list[str]:
    """Every script element, event-handler attribute and javascript: URL in every frame."""
    found: list[str] = []
    for frame in page.frames:
        found += frame.evaluate("""() => {
            const out = [];
            for (const el of document.querySelectorAll("*")) {
                if (el.tagName === "SCRIPT") out.push("script " + (el.getAttribute("src") || el.textContent));
                for (const attr of el.attributes) {
                    if (attr.name.startsWith("on")) out.push(el.tagName + " " + attr.name);
                    if (/^\\s*javascript:/i.test(attr.value)) out.push(el.tagName + " " + attr.value);
                }
            }
            return out;
        }""")
    return found


def xss_flags(page: Page) -> list[str]:
    """The hostile page's scripts all set window.dwatchXss: its value in every frame."""
    return [frame.evaluate("() => String(window.dwatchXss)") for frame in page.frames]


def assert_stayed_home(session: BrowserSession) -> None:
    """No request left the app's origin, no page error, no dialog ever opened."""
    assert session.log.requests, "the pages made no request at all"
    assert session.log.foreign_requests() == []
    assert session.log.errors == []
    assert session.log.dialogs == []


# ---------------------------------------------------------------------------- the queue


def test_queue_opens_on_today_and_filters_through_the_form(
    session: BrowserSession, seeded: Seeded
) -> None:
    page = session.page
    response = page.goto(session.server.url("/"))
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == APP_CSP
    assert row_ids(page) == ids_of(seeded, *QUEUED_TODAY)
    expect(page.get_by_test_id("queue-heading")).to_have_text("6 candidates queued today (UTC)")

    with page.expect_navigation():
        page.get_by_role("link", name="All", exact=True).click()
    assert page.url == session.server.url("/?range=all")
    assert row_ids(page) == ids_of(seeded, *ALL_BY_DATE)
    expect(page.get_by_test_id("status-count-new").locator(".count")).to_have_text("6")
    expect(page.get_by_test_id("status-count-accepted").locator(".count")).to_have_text("2")
    expect(page.get_by_test_id("status-count-rejected").locator(".count")).to_have_text("0")
    kobani_row = page.locator(f'[data-testid="queue-row"][data-candidate-id="{seeded.id("kobani")}"]')
    expect(kobani_row.locator('[data-field="title"]')).to_have_text(seeded.pages["kobani"].title or "")
    expect(kobani_row.locator('[data-field="source"]')).to_have_text("northern-ledger via feed")
    expect(kobani_row.locator('[data-field="story"]')).to_have_text("2 / 1")   # near-copy, verbatim copy
    session.screenshot("queue.png")

    apply_filter(page, lang="fr")
    assert "lang=fr" in page.url
    assert row_ids(page) == ids_of(seeded, "french")
    expect(page.get_by_test_id("queue-row").locator('[data-field="lang"]')).to_have_text("fr")

    apply_filter(page, lang="", narrative="fights_sunni_rebels")
    assert row_ids(page) == ids_of(seeded, "deserter")

    apply_filter(page, narrative="", lang="en", channel="listing")
    assert row_ids(page) == ids_of(seeded, "hostile", "mother", "kobani_near")

    apply_filter(page, lang="", channel="", sort="score", order="asc")
    assert row_ids(page) == ids_of(seeded, *BY_SCORE_ASC)

    with page.expect_navigation():
        page.get_by_test_id("status-count-accepted").click()
    assert "status=accepted" in page.url and "sort=score" in page.url
    assert row_ids(page) == ids_of(seeded, "deserter", "indonesian")
    assert_stayed_home(session)


# ---------------------------------------------------------------------------- a candidate


def test_candidate_page_shows_highlights_and_provenance(session: BrowserSession, seeded: Seeded) -> None:
    page = session.page
    session.goto("/?range=all")
    kobani = seeded.pages["kobani"]
    row = page.locator(f'[data-testid="queue-row"][data-candidate-id="{seeded.id("kobani")}"]')
    with page.expect_navigation():
        row.get_by_role("link", name=kobani.title or "", exact=True).click()
    assert page.url.startswith(session.server.url(f"/candidates/{seeded.id('kobani')}?"))

    detail = stored(seeded, seeded.id("kobani"))
    title_marks, body_marks = expected_marks(detail)
    heading = page.get_by_test_id("candidate-title")
    expect(heading).to_have_text(detail.title or "")
    assert heading.locator("mark").all_text_contents() == title_marks
    assert title_marks[:2] == ["I", "emirs"]
    text = page.get_by_test_id("candidate-text")
    assert text.locator("mark").all_text_contents() == body_marks
    assert {"Islamic State", "cannon fodder", "I escaped from", "not Islam"} <= set(body_marks)
    expect(text).to_contain_text("cannon fodder")

    provenance = page.get_by_test_id("provenance")
    prov = detail.provenance
    fields = {
        "source_id": "northern-ledger",
        "channel": "feed",
        "discovered_from": "https://ledger.example/feeds/world.rss",
        "entry_id": "ledger-4711",
        "entry_title": "I cooked for the emirs, then I ran",
        "requested_url": kobani.url,
        "final_url": kobani.url,
        "http_status": "200",
        "body_sha256": prov["body_sha256"],
        "extractor": f"trafilatura {prov['extractor_version']}",
        "warc_path": kobani.archive.path,
        "warc_offset": str(kobani.archive.offset),
        "warc_record_id": kobani.archive.record_id,
    }
    for name, value in fields.items():
        expect(provenance.locator(f'[data-field="{name}"]')).to_have_text(value)
    fetched = kobani.fetched_at.strftime("%Y-%m-%d %H:%M UTC")
    expect(provenance.locator('[data-field="fetched_at"]')).to_have_text(fetched)
    expect(page.locator('[data-field="rules_version"]')).to_have_text(prov["rules_version"])
    members = page.get_by_test_id("story").locator("ol.members > li")   # earliest first
    expect(members).to_have_count(2)
    expect(members.nth(0)).to_contain_text("northern-ledger")
    expect(members.nth(0)).to_contain_text("(this page)")
    expect(members.nth(1)).to_contain_text("levant-observer")
    expect(members.nth(1).get_by_role("link")).to_have_attribute(
        "href", f"/candidates/{seeded.id('kobani_near')}")
    copy = page.get_by_test_id("duplicates").locator("li")
    expect(copy).to_have_count(1)
    expect(copy).to_contain_text("gulf-syndicate")
    expect(copy.get_by_role("link")).to_have_attribute("href", seeded.pages["kobani_copy"].url)
    expect(page.get_by_test_id("decision-history")).to_have_text("No decision yet.")
    archived = page.frame_locator('[data-testid="archived-frame"]')
    expect(archived.locator("body")).to_contain_text("Karim")      # the sanitised copy, framed
    session.screenshot("candidate.png")

    page.keyboard.press("j")              # the next candidate of the "all" selection
    page.wait_for_url(re.compile(rf"/candidates/{seeded.id('deserter')}\?"))
    expect(page.get_by_test_id("candidate-title")).to_have_text(seeded.pages["deserter"].title or "")
    page.keyboard.press("k")
    page.wait_for_url(re.compile(rf"/candidates/{seeded.id('kobani')}\?"))
    assert_stayed_home(session)


# ---------------------------------------------------------------------------- keyboard triage


def test_keyboard_triage_on_the_queue_lands_in_the_store(session: BrowserSession, seeded: Seeded) -> None:
    page = session.page
    session.goto("/?range=all")
    page.locator("#reviewer").fill("Dana")       # typed in a field: "a" here decides nothing
    page.get_by_role("heading", level=1).click()
    assert selected_ids(page) == []

    for key, expected in (("j", "hostile"), ("j", "french"), ("j", "arabic"), ("k", "french"),
                          ("j", "arabic"), ("j", "mother")):
        page.keyboard.press(key)
        assert selected_ids(page) == ids_of(seeded, expected), f"after {key}"
    mother = seeded.id("mother")
    row = page.locator(f'[data-testid="queue-row"][data-candidate-id="{mother}"]')
    expect(row).to_be_focused()

    before = datetime.now(UTC)
    page.keyboard.press("a")
    expect(row).to_have_attribute("data-status", "accepted")
    expect(row.locator('[data-field="status"]')).to_have_text("accepted")
    assert selected_ids(page) == ids_of(seeded, "indonesian")        # moved down
    after = datetime.now(UTC)

    detail = stored(seeded, mother)
    assert detail.status == "accepted"
    assert [(d.decision, d.status, d.decided_by, d.note) for d in detail.decisions] == [
        ("accept", "accepted", "Dana", None)]
    decided_at = detail.decisions[0].decided_at
    decided_at = decided_at if decided_at.tzinfo else decided_at.replace(tzinfo=UTC)
    assert before <= decided_at <= after
    # nothing else was decided by the keys pressed before (or typed in the reviewer field)
    for name in ("hostile", "french", "arabic"):
        assert stored(seeded, seeded.id(name)).decisions == ()
    assert_stayed_home(session)


def test_reject_with_a_note_on_the_candidate_page(session: BrowserSession, seeded: Seeded) -> None:
    page = session.page
    near = seeded.id("kobani_near")
    session.goto(f"/candidates/{near}?range=all&i=5")
    note = "Near-copy of the Ledger story: keep the earliest, drop this one."
    page.locator("#note").press_sequentially(note)   # keys a, r, d, t typed here decide nothing
    page.locator("#by").press_sequentially("Ben")
    page.keyboard.press("Escape")                    # leaves the field: the keys work again
    expect(page.locator("#by")).not_to_be_focused()
    assert stored(seeded, near).decisions == ()

    page.keyboard.press("r")
    history = page.get_by_test_id("decision-history")
    expect(history).to_contain_text(note)        # after the reload
    expect(history.locator("li")).to_have_count(1)
    expect(history.locator("li")).to_contain_text("Ben: reject → rejected")
    expect(page.locator('.side-column [data-field="status"]')).to_have_text("rejected")

    detail = stored(seeded, near)
    assert detail.status == "rejected"
    assert [(d.decision, d.decided_by, d.note) for d in detail.decisions] == [("reject", "Ben", note)]
    assert_stayed_home(session)


# ---------------------------------------------------------------------------- the hostile article


def test_hostile_article_is_inert_in_every_view(session: BrowserSession, seeded: Seeded) -> None:
    page = session.page
    hostile = seeded.pages["hostile"]
    hostile_id = seeded.id("hostile")

    session.goto("/?range=all")
    row = page.locator(f'[data-testid="queue-row"][data-candidate-id="{hostile_id}"]')
    expect(row.locator('[data-field="title"]')).to_have_text(hostile.title or "")
    assert "<script>window.dwatchXss=1</script>" in (hostile.title or "")

    response = page.goto(session.server.url(f"/candidates/{hostile_id}?range=all"))
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == APP_CSP
    assert response.headers["x-frame-options"] == "DENY"
    page.wait_for_load_state("load")
    frame = page.frame(url=session.server.url(f"/candidates/{hostile_id}/archived"))
    assert frame is not None, "the sanitised copy is not framed on the candidate page"
    frame.wait_for_load_state("load")
    shown = page.get_by_test_id("candidate-title").inner_text() + page.get_by_test_id(
        "candidate-text").inner_text()
    for marker in HOSTILE_MARKERS:               # the payloads are shown as text ...
        assert marker in shown, marker
    # ... and nothing of them is live: the only script is the app's, no handler, no javascript:
    assert handlers_and_scripts(page) == ["script /static/app.js"]
    expect(page.frame_locator('[data-testid="archived-frame"]').locator("h1")).to_have_text(
        "Ex-fighter <script>window.dwatchXss=1</script> says he left the Islamic State")

    archived = page.frame_locator('[data-testid="archived-frame"]')
    for name in ("Read his letter", "watch the video"):   # were javascript: links
        archived.get_by_text(name).click()
    page.wait_for_timeout(300)                   # the time a script or a meta refresh would take
    assert page.url == session.server.url(f"/candidates/{hostile_id}?range=all")
    assert page.title() == f"Candidate {hostile_id} · defector-watch"
    assert xss_flags(page) == ["undefined", "undefined"]

    response = page.goto(session.server.url(f"/candidates/{hostile_id}/archived"))
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == ARCHIVE_CSP
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    page.get_by_text("Read his letter").click()
    page.wait_for_timeout(300)
    assert page.url == session.server.url(f"/candidates/{hostile_id}/archived")
    assert page.title() == f"Archived copy of candidate {hostile_id} (sanitised)"
    assert handlers_and_scripts(page) == []
    assert xss_flags(page) == ["undefined"]

    # nothing even tried: no CSP violation reported, no message from the payload
    assert session.log.console == []
    assert_stayed_home(session)


def test_raw_copy_downloads_exactly_as_fetched(session: BrowserSession, seeded: Seeded) -> None:
    page = session.page
    hostile = seeded.pages["hostile"]
    hostile_id = seeded.id("hostile")
    session.goto(f"/candidates/{hostile_id}")

    with page.expect_download() as info:
        page.get_by_test_id("raw-link").click()
    download = info.value
    assert download.suggested_filename == f"candidate-{hostile_id}.html"
    assert Path(download.path()).read_bytes() == hostile.body
    assert page.url == session.server.url(f"/candidates/{hostile_id}")   # not rendered

    response = page.request.get(session.server.url(f"/candidates/{hostile_id}/raw"))
    assert response.status == 200
    assert response.body() == hostile.body
    assert response.headers["content-disposition"] == f'attachment; filename="candidate-{hostile_id}.html"'
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert xss_flags(page) == ["undefined", "undefined"]
    assert_stayed_home(session)
