"""Deciding: the plain form and the JSON API, the history they leave, and CSRF protection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import lxml.html
import pytest

from review.web import create_app
from store import DecisionRow, open_session, queue
from tests.review.conftest import BASE_URL, LOOPBACK_CLIENT, test_client_class
from tests.review.seed import Seeded

# Every test that uses the store runs on SQLite and on PostgreSQL (tests/review/conftest.py).
STORE_BACKENDS = ("sqlite", "postgresql")


def csrf_token(client: Any, path: str = "/") -> str:
    page = lxml.html.fromstring(client.get(path).text)
    token = page.xpath('//meta[@name="csrf-token"]')[0].get("content")
    assert token
    return str(token)


def decisions(seeded: Seeded, name: str) -> tuple[str, list[DecisionRow]]:
    with open_session(seeded.settings.database_url) as session:
        detail = queue.get_candidate(session, seeded.id(name))
    assert detail is not None
    return detail.status, list(detail.decisions)


def form_post(client: Any, seeded: Seeded, name: str, **data: str) -> Any:
    return client.post(f"/candidates/{seeded.id(name)}/decision", data=data, follow_redirects=False)


def test_the_form_records_a_decision_with_who_when_and_note(client: Any, seeded: Seeded) -> None:
    page = lxml.html.fromstring(client.get(f"/candidates/{seeded.id('french')}?range=all&i=1").text)
    form = page.xpath('//form[@data-testid="decision-form"]')[0]
    assert form.get("action") == f"/candidates/{seeded.id('french')}/decision"
    assert [b.get("value") for b in form.xpath(".//button[@name='decision']")] == [
        "accept", "reject", "duplicate", "translate"]
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}
    assert fields["back"] == "range=all&i=1"
    before = datetime.now(UTC)
    response = form_post(client, seeded, "french", decision="accept",
                         note="Strong <b>first-person</b> account", by="Amal Y.", back=fields["back"],
                         csrf_token=fields["csrf_token"])
    assert response.status_code == 303
    assert response.headers["location"] == f"/candidates/{seeded.id('french')}?range=all&i=1&decided=accept"
    status, rows = decisions(seeded, "french")
    assert status == "accepted"
    assert [(r.decision, r.status, r.note, r.decided_by) for r in rows] == [
        ("accept", "accepted", "Strong <b>first-person</b> account", "Amal Y.")]
    assert before - timedelta(seconds=1) <= rows[0].decided_at <= datetime.now(UTC)

    page = lxml.html.fromstring(client.get(response.headers["location"]).text)
    assert page.xpath('//*[@data-testid="decided"]')[0].text_content() == "Decision recorded: accept."
    history = page.xpath('//*[@data-testid="decision-history"]/li')
    assert " ".join(history[-1].text_content().split()) == (
        f"{rows[0].decided_at.strftime('%Y-%m-%d %H:%M UTC')} Amal Y.: accept → accepted "
        "Strong <b>first-person</b> account")
    assert not history[-1].xpath(".//b")          # the note is text, never markup
    # the browser remembers who decided
    assert page.xpath('//input[@id="by"]')[0].get("value") == "Amal Y."
    assert page.xpath('//*[@data-field="status"]')[0].text_content().strip() == "accepted"


def test_a_second_decision_is_appended_to_the_history(client: Any, seeded: Seeded) -> None:
    token = csrf_token(client)
    for decision in ("reject", "translate"):
        assert form_post(client, seeded, "arabic", decision=decision, by="ben",
                         csrf_token=token).status_code == 303
    status, rows = decisions(seeded, "arabic")
    assert status == "needs_translation"
    assert [(r.decision, r.status, r.decided_by) for r in rows] == [
        ("reject", "rejected", "ben"), ("translate", "needs_translation", "ben")]
    counts = lxml.html.fromstring(client.get("/?range=all").text)
    assert counts.xpath('//a[@data-testid="status-count-needs_translation"]/span')[0].text == "1"


def test_a_form_post_without_the_token_is_refused_and_writes_nothing(client: Any, seeded: Seeded) -> None:
    csrf_token(client)       # the browser has a session cookie
    response = form_post(client, seeded, "hostile", decision="accept", by="mallory")
    assert response.status_code == 403
    detail = lxml.html.fromstring(response.text).xpath('//*[@data-testid="error-detail"]')[0]
    assert detail.text_content() == ("CSRF check failed: the form's token is missing or does not match "
                                     "your session; reload the page and submit it again")
    assert decisions(seeded, "hostile") == ("new", [])


def test_a_wrong_token_is_refused(client: Any, seeded: Seeded) -> None:
    csrf_token(client)
    assert form_post(client, seeded, "hostile", decision="accept", csrf_token="x" * 43).status_code == 403
    assert decisions(seeded, "hostile") == ("new", [])


def test_no_session_cookie_no_form_post(client: Any, seeded: Seeded) -> None:
    token = csrf_token(client)
    client.cookies.clear()
    response = form_post(client, seeded, "hostile", decision="accept", csrf_token=token)
    assert response.status_code == 403
    assert "has no valid session" in response.text
    assert decisions(seeded, "hostile") == ("new", [])


@pytest.mark.parametrize(("header", "value"), [
    ("Origin", "https://evil.example"),
    ("Origin", "http://127.0.0.1:9999"),
    ("Referer", "https://evil.example/page.html"),
])
def test_a_cross_origin_post_is_refused_even_with_the_token(
    client: Any, seeded: Seeded, header: str, value: str
) -> None:
    token = csrf_token(client)
    response = client.post(f"/candidates/{seeded.id('hostile')}/decision",
                           data={"decision": "accept", "csrf_token": token},
                           headers={header: value}, follow_redirects=False)
    assert response.status_code == 403
    assert "cross-origin request refused" in response.text
    assert decisions(seeded, "hostile") == ("new", [])


def test_own_origin_and_the_null_origin_of_no_referrer_pass(client: Any, seeded: Seeded) -> None:
    token = csrf_token(client)
    for origin, decision in ((BASE_URL, "reject"), ("null", "accept")):
        response = client.post(f"/candidates/{seeded.id('mother')}/decision",
                               data={"decision": decision, "csrf_token": token},
                               headers={"Origin": origin}, follow_redirects=False)
        assert response.status_code == 303, response.text
    assert [r.decision for r in decisions(seeded, "mother")[1]] == ["reject", "accept"]


def test_an_unknown_decision_lists_the_valid_ones(client: Any, seeded: Seeded) -> None:
    response = form_post(client, seeded, "hostile", decision="maybe", csrf_token=csrf_token(client))
    assert response.status_code == 422
    detail = lxml.html.fromstring(response.text).xpath('//*[@data-testid="error-detail"]')[0]
    assert detail.text_content() == (
        "unknown decision 'maybe'; use one of: accept, reject, duplicate, translate")
    assert decisions(seeded, "hostile") == ("new", [])


# ---------------------------------------------------------------- the JSON API


def api_post(client: Any, seeded: Seeded, name: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"/api/candidates/{seeded.id(name)}/decision", json=body, headers=headers)


def test_api_decision_from_the_page_with_the_csrf_header(client: Any, seeded: Seeded) -> None:
    token = csrf_token(client)
    response = api_post(client, seeded, "kobani", {"decision": "duplicate", "note": "same as Levant"},
                        **{"X-CSRF-Token": token})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("candidate_id", "decision", "status", "note", "decided_by")} == {
        "candidate_id": seeded.id("kobani"), "decision": "duplicate", "status": "duplicate",
        "note": "same as Levant", "decided_by": None}
    status, rows = decisions(seeded, "kobani")
    assert status == "duplicate"
    assert rows[-1].id == body["id"]
    assert datetime.fromisoformat(body["decided_at"]) == rows[-1].decided_at


def test_api_decision_with_the_session_cookie_but_no_token_is_refused(client: Any, seeded: Seeded) -> None:
    csrf_token(client)
    response = api_post(client, seeded, "kobani", {"decision": "accept"})
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check failed: the form's token is missing or does not "
                                          "match your session; reload the page and submit it again"}
    response = api_post(client, seeded, "kobani", {"decision": "accept"}, **{"X-CSRF-Token": "nope"})
    assert response.status_code == 403
    assert decisions(seeded, "kobani") == ("new", [])


def test_api_script_on_this_machine_without_cookie_sends_json(seeded: Seeded) -> None:
    """No auth configured, no cookie: a local script may post JSON (a browser page elsewhere cannot)."""
    app = create_app(seeded.settings)
    with test_client_class()(app, base_url=BASE_URL, client=LOOPBACK_CLIENT) as script:
        response = api_post(script, seeded, "deserter", {"decision": "reject", "by": "cron"})
        assert response.status_code == 200, response.text
        # the same without JSON (what a cross-site HTML form sends) is refused
        script.cookies.clear()
        form = script.post(f"/api/candidates/{seeded.id('deserter')}/decision",
                           content="decision=accept",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 403
        assert form.json()["detail"].startswith("CSRF check failed: this form has no valid session")
        # a cross-origin JSON fetch would need a CORS preflight; its Origin is refused anyway
        script.cookies.clear()
        cross = api_post(script, seeded, "deserter", {"decision": "accept"}, Origin="https://evil.example")
        assert cross.status_code == 403
        assert cross.json() == {"detail": "cross-origin request refused: Origin https://evil.example "
                                          "is not http://127.0.0.1:8765"}
    status, rows = decisions(seeded, "deserter")
    assert status == "rejected"
    assert [(r.decision, r.decided_by) for r in rows] == [("accept", "amal"), ("reject", "cron")]


@pytest.mark.parametrize(("path_name", "body", "status", "detail"), [
    ("kobani", {"decision": "maybe"}, 422,
     "unknown decision 'maybe'; use one of: accept, reject, duplicate, translate"),
    ("kobani", {"note": "no decision"}, 422, "decision: Field required"),
    (None, {"decision": "accept"}, 404, "there is no candidate 9999; go back to the queue to find one"),
])
def test_api_decision_errors_are_json_with_a_clear_detail(
    client: Any, seeded: Seeded, path_name: str | None, body: dict[str, Any], status: int, detail: str
) -> None:
    token = csrf_token(client)
    candidate = seeded.id(path_name) if path_name else 9999
    response = client.post(f"/api/candidates/{candidate}/decision", json=body,
                           headers={"X-CSRF-Token": token})
    assert response.status_code == status
    assert response.json() == {"detail": detail}
    assert decisions(seeded, "kobani") == ("new", [])


def test_each_test_decides_on_its_own_copy_of_the_store(
    client: Any, seeded: Seeded, store_backend: str, request: pytest.FixtureRequest
) -> None:
    """The app runs on the database asked for, and a decision stays in this test's copy of it."""
    with open_session(seeded.settings.database_url) as session:
        assert session.get_bind().dialect.name == store_backend
    token = csrf_token(client)
    assert form_post(client, seeded, "hostile", decision="reject", by="ben",
                     csrf_token=token).status_code == 303
    assert decisions(seeded, "hostile")[0] == "rejected"
    template: Seeded = request.getfixturevalue(
        "seeded_template" if store_backend == "sqlite" else "seeded_postgres_template")
    assert decisions(template, "hostile") == ("new", [])
