"""Quality gate: extract_article on the 227 real article pages in ../shared/fixtures/html.

Scores the extracted text against the upstream ground truth: mean token F1 against the
scrapinghub benchmark's articleBody and Fundus's expected body paragraphs, and snippet
recall / boilerplate precision against trafilatura's own evaluation data. The floors are
pinned in fixtures/extraction-baseline.json.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from extract import Article, Skip, extract_article

BASELINE = json.loads((Path(__file__).parent / "fixtures" / "extraction-baseline.json").read_text())
# a word, or one character of a script written without spaces (Chinese, Japanese kana)
TOKEN_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]|\w+")


def tokens(text: str) -> Counter[str]:
    return Counter(TOKEN_RE.findall(text.casefold()))


def token_f1(predicted: str, expected: str) -> float:
    pred, gold = tokens(predicted), tokens(expected)
    overlap = sum((pred & gold).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(gold.values())
    return 2 * precision * recall / (precision + recall)


def text_of(result: Article | Skip) -> str:
    return result.text if isinstance(result, Article) else ""


def fundus_body(expected: dict[str, Any]) -> str:
    body = expected["body"]
    parts = list(body.get("summary", []))
    for section in body["sections"]:
        parts += section.get("headline", []) + section["paragraphs"]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def html_root(shared_fixtures: Path) -> Path:
    return shared_fixtures / "html"


@pytest.fixture(scope="module")
def scrapinghub(html_root: Path) -> list[tuple[str, Article | Skip, str]]:
    root = html_root / "scrapinghub-article-extraction-benchmark"
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    out = []
    for key, item in sorted(truth.items()):
        body = gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes())
        out.append((item["url"], extract_article(body, item["url"], "text/html"), item["articleBody"]))
    return out


@pytest.fixture(scope="module")
def fundus(html_root: Path) -> list[tuple[str, Article | Skip, str]]:
    root = html_root / "fundus"
    out = []
    for item in json.loads((root / "index.json").read_text(encoding="utf-8")):
        body = gzip.decompress((root / item["html"]).read_bytes())
        expected = json.loads((root / item["expected"]).read_text(encoding="utf-8"))[item["expected_version"]]
        out.append((item["html"], extract_article(body, item["url"], "text/html"), fundus_body(expected)))
    return out


@pytest.fixture(scope="module")
def trafilatura_pages(html_root: Path) -> list[tuple[dict[str, Any], Article | Skip]]:
    root = html_root / "trafilatura"
    evaldata = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    out = []
    for url, item in sorted(evaldata.items()):
        body = (root / "pages" / item["file"]).read_bytes()
        page_url = url if url.startswith("http") else "https://unknown.example/"
        out.append((item, extract_article(body, page_url, None)))
    return out


def test_every_page_is_an_article_or_a_typed_skip(
    scrapinghub: list[tuple[str, Article | Skip, str]],
    fundus: list[tuple[str, Article | Skip, str]],
    trafilatura_pages: list[tuple[dict[str, Any], Article | Skip]],
) -> None:
    results = [r for _, r, _ in scrapinghub] + [r for _, r, _ in fundus] + [r for _, r in trafilatura_pages]
    assert len(results) == 227
    outcomes = Counter(r.reason if isinstance(r, Skip) else "article" for r in results)
    print(f"\noutcomes on 227 pages: {dict(outcomes)}")
    for result in results:
        if isinstance(result, Skip):
            assert result.reason in ("too_short", "no_article") and result.detail
        else:
            assert len(result.text) >= 250 and result.extractor == "trafilatura"
    assert outcomes["article"] >= 220


def test_scrapinghub_mean_token_f1(scrapinghub: list[tuple[str, Article | Skip, str]]) -> None:
    scores = [token_f1(text_of(result), truth) for _, result, truth in scrapinghub]
    mean = sum(scores) / len(scores)
    print(f"\nscrapinghub: mean token F1 {mean:.4f} on {len(scores)} pages, min {min(scores):.3f}")
    assert mean >= BASELINE["scrapinghub_mean_token_f1"]


def test_fundus_mean_token_f1(fundus: list[tuple[str, Article | Skip, str]]) -> None:
    scores = [token_f1(text_of(result), truth) for _, result, truth in fundus]
    mean = sum(scores) / len(scores)
    print(f"\nfundus: mean token F1 {mean:.4f} on {len(scores)} pages, min {min(scores):.3f}")
    assert mean >= BASELINE["fundus_mean_token_f1"]


def test_trafilatura_snippets(trafilatura_pages: list[tuple[dict[str, Any], Article | Skip]]) -> None:
    found = wanted = kept_out = unwanted = 0
    for item, result in trafilatura_pages:
        text = " ".join(text_of(result).split())
        for snippet in item.get("with", []):
            wanted += 1
            found += " ".join(snippet.split()) in text
        for snippet in item.get("without", []):
            unwanted += 1
            kept_out += " ".join(snippet.split()) not in text
    recall, boilerplate_out = found / wanted, kept_out / unwanted
    print(f"\ntrafilatura eval: snippet recall {recall:.4f} ({found}/{wanted}), "
          f"boilerplate kept out {boilerplate_out:.4f} ({kept_out}/{unwanted})")
    assert recall >= BASELINE["trafilatura_snippet_recall"]
    assert boilerplate_out >= BASELINE["trafilatura_boilerplate_precision"]


def test_spot_checks(
    scrapinghub: list[tuple[str, Article | Skip, str]], fundus: list[tuple[str, Article | Skip, str]]
) -> None:
    by_name = {name: result for name, result, _ in fundus}
    standard = by_name["at/DerStandard_2024_05_03.html.gz"]
    assert isinstance(standard, Article)
    assert standard.title is not None and "Kalifat" in standard.title
    assert standard.published is not None and standard.published.date().isoformat() == "2024-05-03"
