"""The shipped config/rules.yaml on short stories in many languages, written by the team.

Defector accounts must be flagged; look-alikes of every kind must not: escaped captives,
civilians and soldiers who fled IS, defectors from other states and groups, party
defections, athletes, trials, prison interviews, would-be recruits, IS news, policy pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from extract.prefilter import could_match
from extract.rules import RuleSet, evaluate, load_rules

REPO = Path(__file__).resolve().parents[2]
STORIES_FILE = Path(__file__).resolve().parent / "fixtures" / "rules" / "stories.yaml"
STORIES: list[dict[str, Any]] = yaml.safe_load(STORIES_FILE.read_text(encoding="utf-8"))["stories"]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(REPO / "config" / "rules.yaml")


def test_the_story_set_covers_languages_and_look_alikes() -> None:
    flagged_langs = {s["lang"] for s in STORIES if s["expect"] == "flag"}
    assert len(flagged_langs) >= 8
    kinds = {s["kind"] for s in STORIES if s["expect"] == "pass"}
    assert kinds >= {"captive", "civilians", "soldiers", "other_state", "other_group", "party",
                     "athlete", "trial", "prison", "joining", "is_news", "policy", "hostage"}


@pytest.mark.parametrize("story", STORIES, ids=[s["id"] for s in STORIES])
def test_story(rules: RuleSet, story: dict[str, Any]) -> None:
    verdict = evaluate(rules, story["title"], story["text"], story["lang"])
    reasons = "\n".join(f"{c.rule} {c.weight:+.2f} {c.reason}" for c in verdict.contributions)
    assert verdict.flagged is (story["expect"] == "flag"), f"{verdict.explanation}\n{reasons}"
    assert verdict.rules_version == rules.version
    assert 0.0 <= verdict.score <= 1.0
    if verdict.flagged:
        assert verdict.explanation.startswith("flagged: score")
        assert any(c.rule in rules.require for c in verdict.contributions)
        html = f"<html><head><title>{story['title']}</title></head><body>"
        html += "".join(f"<p>{p}</p>" for p in story["text"].split("\n")) + "</body></html>"
        assert could_match(rules, html)


def test_a_defector_story_explains_itself(rules: RuleSet) -> None:
    story = next(s for s in STORIES if s["id"] == "de-aussteiger")
    v = evaluate(rules, story["title"], story["text"], "de")
    assert v.flagged and v.score == 1.0
    fired = {c.rule for c in v.contributions}
    assert {"defector_term", "left_is", "own_account"} <= fired
    assert "religious_disillusion" in v.narratives
    assert "brutality_against_sunnis" in v.narratives
    texts = {(m.rule, m.text) for m in v.matches}
    assert ("defector_term/is_names", "IS") in texts
    assert ("defector_term/defector_nouns", "Aussteiger") in texts


def test_yazidi_escape_is_cancelled_and_says_why(rules: RuleSet) -> None:
    story = next(s for s in STORIES if s["id"] == "en-yazidi-captive")
    v = evaluate(rules, story["title"], story["text"], "en")
    assert not v.flagged
    negatives = {n.rule for n in v.negatives}
    assert "captives_story" in negatives
    assert any("Yazidi" in n.reason for n in v.negatives)


def test_unknown_language_uses_every_lexicon(rules: RuleSet) -> None:
    story = next(s for s in STORIES if s["id"] == "id-mantan-isis")
    assert evaluate(rules, story["title"], story["text"], "und").flagged
    assert evaluate(rules, story["title"], story["text"], "ms").flagged  # related language
