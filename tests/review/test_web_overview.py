"""The overview page (charts and the same numbers as tables) and the architecture rule of review/."""

from __future__ import annotations

import ast
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import lxml.html

from tests.review.seed import Seeded

# Every test that uses the store runs on SQLite and on PostgreSQL (tests/review/conftest.py).
STORE_BACKENDS = ("sqlite", "postgresql")

REVIEW = Path(__file__).resolve().parents[2] / "review"
ACCEPTED = ("deserter", "indonesian")


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def table(page: Any, testid: str) -> dict[str, list[str]]:
    rows = page.xpath(f'//table[@data-testid="{testid}"]/tbody/tr')
    return {row.get("data-week"): [" ".join(td.text_content().split()) for td in row.xpath("./td")]
            for row in rows}


def test_weekly_candidates_and_accepted_as_chart_and_table(client: Any, seeded: Seeded) -> None:
    page = lxml.html.fromstring(client.get("/overview").text)
    candidates: Counter[date] = Counter()
    accepted: Counter[date] = Counter()
    for name in seeded.candidate_names:
        seeded_page = seeded.pages[name]
        week = monday((seeded_page.published or seeded_page.fetched_at).date())
        candidates[week] += 1
        accepted[week] += name in ACCEPTED
    first, last = min(candidates), max(candidates)
    weeks = [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]
    assert table(page, "table-weekly") == {
        week.isoformat(): [str(candidates[week]), str(accepted[week])] for week in weeks}
    chart = page.xpath('//*[@data-testid="chart-weekly"]/svg')[0]
    assert chart.get("role") == "img"
    assert "Candidates and accepted stories per week" in chart.get("aria-label")
    for testid in ("chart-language", "chart-narrative"):
        assert page.xpath(f'//*[@data-testid="{testid}"]/svg[@role="img"]')
    # languages add up (stacked bars); narratives overlap (a story carries several): lines
    assert page.xpath('//*[@data-testid="chart-language"]/svg//rect[@data-series]')
    assert page.xpath('//*[@data-testid="chart-narrative"]/svg//polyline')


def test_by_language_and_by_narrative(client: Any, seeded: Seeded) -> None:
    page = lxml.html.fromstring(client.get("/overview").text)
    header = [th.text_content() for th in page.xpath('//table[@data-testid="table-language"]/thead//th')]
    assert header[0] == "Week of" and sorted(header[1:]) == ["ar", "en", "fr", "id"]
    french_week = monday(seeded.today - timedelta(days=2)).isoformat()
    rows = table(page, "table-language")
    assert rows[french_week][header.index("fr") - 1] == "1 (0 accepted)"
    indonesian_week = monday(seeded.today - timedelta(days=12)).isoformat()
    assert rows[indonesian_week][header.index("id") - 1] == "1 (1 accepted)"
    narratives = [th.text_content()
                  for th in page.xpath('//table[@data-testid="table-narrative"]/thead//th')][1:]
    assert "fights sunni rebels" in narratives
    deserter_week = monday(seeded.today - timedelta(days=30)).isoformat()
    column = narratives.index("fights sunni rebels")
    assert table(page, "table-narrative")[deserter_week][column] == "1 (1 accepted)"


def test_a_date_range_and_an_empty_one(client: Any, seeded: Seeded) -> None:
    since = (seeded.today - timedelta(days=6)).isoformat()
    page = lxml.html.fromstring(client.get(f"/overview?since={since}").text)
    assert sum(int(v[0]) for v in table(page, "table-weekly").values()) == 3
    assert page.xpath('//input[@name="since"]')[0].get("value") == since
    future = (seeded.today + timedelta(days=400)).isoformat()
    empty = lxml.html.fromstring(client.get(f"/overview?since={future}").text)
    assert empty.xpath('//p[@class="empty"]')[0].text_content() == "No candidates in this range."
    bad = client.get("/overview?until=31-12-2024")
    assert bad.status_code == 422
    detail = lxml.html.fromstring(bad.text).xpath('//*[@data-testid="error-detail"]')[0]
    assert detail.text_content().startswith("until: '31-12-2024' is not a date; use the format YYYY-MM-DD")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.append(str(node.args[0].value))
    return found


def test_no_module_of_review_imports_crawler_or_writes_sql() -> None:
    modules = sorted(REVIEW.rglob("*.py"))
    assert REVIEW / "web" / "app.py" in modules and len(modules) >= 15
    offenders = {str(p.relative_to(REVIEW)): name for p in modules for name in _imports(p)
                 if name == "crawler" or name.startswith("crawler.")}
    assert offenders == {}
    web_sql = {str(p.relative_to(REVIEW)): name for p in sorted((REVIEW / "web").rglob("*.py"))
               for name in _imports(p) if name.startswith("sqlalchemy") and name != "sqlalchemy.orm"}
    assert web_sql == {}      # store.queue does the SQL; the web UI only passes sessions
