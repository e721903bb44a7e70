"""The CI gate on filter quality: the team's labelled corpus, floors pinned in baseline.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extract import below_floors, format_report, load_corpus, load_rules, score_corpus

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fixtures" / "corpus"
LANGUAGES = {"en", "ar", "fr", "de", "nl", "sv", "da", "no", "tr", "ru", "es", "it", "pt", "id"}
NEGATIVE_KINDS = {
    "is_attack", "airstrike", "propaganda", "recruitment", "trial_member", "prison_interview", "joined",
    "captive_escaped", "civilians_fled", "soldiers_fled", "hostage", "other_defector", "party_defection",
    "athlete_spy", "policy_passing",
}


def test_corpus_is_big_and_broad_enough() -> None:
    items = load_corpus(CORPUS)
    positives = [i for i in items if i.label == "defector"]
    hard = [i for i in items if i.label == "negative"]
    assert len(positives) >= 80
    assert len(hard) >= 150
    assert any(i.label == "ordinary" for i in items)
    assert {i.lang for i in positives} >= LANGUAGES
    assert {i.kind for i in hard} == NEGATIVE_KINDS


def test_filter_quality_holds_the_pinned_floors(capsys: pytest.CaptureFixture[str]) -> None:
    baseline = json.loads((CORPUS / "baseline.json").read_text("utf-8"))
    report = score_corpus(load_rules(REPO / "config" / "rules.yaml"), load_corpus(CORPUS))
    with capsys.disabled():
        print("\n" + format_report(report))
    problems = below_floors(report, baseline["floors"])
    assert not problems, "filter quality regressed below the pinned floors:\n" + "\n".join(problems)


def test_scoring_as_dwatch_classify_finds_the_headline_and_the_language(tmp_path: Path) -> None:
    items = [item for item in load_corpus(CORPUS) if item.id in {"en-pos-01", "de-pos-01", "en-neg-01"}]
    assert len(items) == 3
    rules = load_rules(REPO / "config" / "rules.yaml")
    given = score_corpus(rules, items)
    classified = score_corpus(rules, items, as_classified=True)
    assert (classified.overall.tp, classified.overall.fp) == (given.overall.tp, given.overall.fp) == (2, 0)
    assert set(classified.by_language) == {"en", "de"}
