"""Each feature of the rule language, on tests/extract/fixtures/rules/features.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from extract.matching import TermMatcher, parse_term
from extract.normalize import normalize
from extract.rules import RulesError, RuleSet, evaluate, load_rules, parse_rules, scored_text

FEATURES = Path(__file__).resolve().parent / "fixtures" / "rules" / "features.yaml"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(FEATURES)


def _points(verdict_contributions: tuple[object, ...], rule: str) -> float | None:
    for c in verdict_contributions:
        if getattr(c, "rule", None) == rule:
            return float(getattr(c, "weight"))  # noqa: B009
    return None


def _surfaces(text: str, terms: list[str], *, case_sensitive: bool = False) -> list[str]:
    matcher = TermMatcher(tuple(parse_term(t, case_sensitive=case_sensitive) for t in terms))
    norm = normalize(text)
    return [text[slice(*norm.span(h.start, h.end))] for h in matcher.find(norm)]


# ---------------------------------------------------------------- AND of OR-groups, windows


def test_and_of_or_groups(rules: RuleSet) -> None:
    first = "Intro paragraph.\n"
    v = evaluate(rules, None, first + "He defected from IS in 2016.", "en")
    assert _points(v.contributions, "near_words") == 2.0
    assert v.flagged and v.score == 0.5
    v = evaluate(rules, None, first + "He chose the exit from IS.", "en")  # the other OR member
    assert _points(v.contributions, "near_words") == 2.0
    v = evaluate(rules, None, first + "IS lost its last town in 2019.", "en")
    assert _points(v.contributions, "near_words") is None
    assert not v.flagged
    assert v.explanation.startswith("not flagged: score 0.00")


def test_proximity_in_words(rules: RuleSet) -> None:
    near = evaluate(rules, None, "x\nIS fighters defected.", "en")
    far = evaluate(rules, None, "x\nIS fighters, after many long months of war, defected.", "en")
    assert _points(near.contributions, "near_words") == 2.0
    assert _points(far.contributions, "near_words") is None


def test_word_windows_do_not_cross_paragraphs(rules: RuleSet) -> None:
    v = evaluate(rules, None, "x\nThey left IS\nDefected soldiers returned.", "en")
    assert _points(v.contributions, "near_words") is None


def test_proximity_by_sentence_and_paragraph(rules: RuleSet) -> None:
    body = "x\n"
    assert _points(evaluate(rules, None, body + "The emir of IS arrived.", "en").contributions,
                   "same_sentence") == 0.5
    assert _points(evaluate(rules, None, body + "IS grew. The emir arrived.", "en").contributions,
                   "same_sentence") is None
    same = evaluate(rules, None, body + "IS grew. A smuggler helped him.", "en")
    other = evaluate(rules, None, body + "IS grew.\nA smuggler helped him.", "en")
    assert _points(same.contributions, "same_paragraph") == 0.25
    assert _points(other.contributions, "same_paragraph") is None


# ---------------------------------------------------------------- NOT contexts


def test_not_cancel_within_sentence(rules: RuleSet) -> None:
    v = evaluate(rules, None, "Yazidi women fled IS.\nLater the bus left.", "en")
    assert _points(v.contributions, "near_words") is None
    assert [n.rule for n in v.negatives] == ["near_words/not"]
    assert v.negatives[0].weight == -3.0          # would have scored 2.0 x lead 1.5
    assert "cancelled by nearby 'Yazidi'" in v.negatives[0].reason
    assert not v.flagged


def test_not_cancel_keeps_clean_evidence_elsewhere(rules: RuleSet) -> None:
    v = evaluate(rules, None, "Yazidi women fled IS.\nHer husband defected from IS.", "en")
    assert _points(v.contributions, "near_words") == 2.0  # body evidence survives
    assert v.negatives[0].weight == -1.0                  # lost the lead bonus only
    assert "weakened by nearby 'Yazidi'" in v.negatives[0].reason


def test_not_lower(rules: RuleSet) -> None:
    v = evaluate(rules, None, "x\nThe IS army defected.", "en")
    assert _points(v.contributions, "near_words") == 2.0
    assert _points(v.contributions, "near_words/not:army") == -1.0
    assert [n.rule for n in v.negatives] == ["near_words/not:army"]
    assert "lowered by 'army' within 2 words" in v.negatives[0].reason
    assert v.score == 0.25 and not v.flagged


def test_anywhere_groups_and_cancel_without_window(rules: RuleSet) -> None:
    v = evaluate(rules, None, "x\nHe crossed the border.\n\nIS was far away.", "en")
    assert _points(v.contributions, "anywhere_rule") == 0.25
    v = evaluate(rules, None, "x\nHe crossed the border.\n\nIS was far away.\nThe court met.",
                 "en")
    assert _points(v.contributions, "anywhere_rule") is None
    assert any(n.rule == "anywhere_rule/not" for n in v.negatives)


def test_where_title_and_negative_rule(rules: RuleSet) -> None:
    v = evaluate(rules, "Court hears IS case", "He defected from IS.", "en")
    assert _points(v.contributions, "title_only") == -2.0   # -1.0 x title 2.0
    assert any(n.rule == "title_only" for n in v.negatives)
    v = evaluate(rules, "A quiet day", "He defected from IS. The court met.", "en")
    assert _points(v.contributions, "title_only") is None


# ---------------------------------------------------------------- languages, stems, scripts


@pytest.mark.parametrize(
    ("lang", "fires"),
    [("de", True), ("en", False), ("und", True), ("fr", True), ("", True), ("de-AT", True)],
)
def test_per_language_lexicons(rules: RuleSet, lang: str, fires: bool) -> None:
    v = evaluate(rules, None, "x\nDer IS-Aussteiger spricht.", lang)
    assert (_points(v.contributions, "near_words") is not None) is fires
    assert v.lang == lang


def test_related_languages(rules: RuleSet) -> None:
    v = evaluate(rules, None, "x\nHan hoppet av fra IS.", "da")  # Norwegian words, read as Danish
    assert _points(v.contributions, "near_words") == 2.0


def test_stems_and_word_endings() -> None:
    assert _surfaces("defectors defecting defect", ["defect*"]) == [
        "defectors", "defecting", "defect"]
    assert _surfaces("undefected", ["defect*"]) == []
    assert _surfaces("IS-Aussteiger Dschihadistenaussteiger Aussteigerin",
                     ["*aussteiger"]) == ["Aussteiger", "Dschihadistenaussteiger"]
    assert _surfaces("исламского государства", ["исламск* государств*"]) == [
        "исламского государства"]
    assert _surfaces("Islamic\nState, Islamic-State, Islamic. State", ["islamic state"]) == [
        "Islamic\nState", "Islamic-State"]


def test_turkish_dotted_and_dotless_i() -> None:
    text = "IŞİD'e katıldı; ışid; Işid; İŞİD; ISID"
    assert _surfaces(text, ["ışid"]) == ["IŞİD", "ışid", "Işid", "İŞİD", "ISID"]
    assert _surfaces(text, ["IŞİD"]) == ["IŞİD", "ışid", "Işid", "İŞİD", "ISID"]


def test_arabic_variants_and_clitics() -> None:
    text = "والمنشقون عن داعش، بداعش ولداعش، للدولة الإسلامية، والدولة الاسلامية، مُنشقٌ"
    assert _surfaces(text, ["منشق*"]) == ["والمنشقون", "مُنشقٌ"]
    assert _surfaces(text, ["داعش"]) == ["داعش", "بداعش", "ولداعش"]
    assert _surfaces(text, ["الدولة الإسلامية"]) == ["للدولة الإسلامية", "والدولة الاسلامية"]
    assert _surfaces("الداعشيون", ["داعش"]) == []


def test_case_sensitive_is() -> None:
    assert _surfaces("This is it. The IS group, IS-Kämpfer.", ["IS"], case_sensitive=True) == [
        "IS", "IS"]
    assert _surfaces("WHAT IS LEFT OF THE CALIPHATE", ["IS"], case_sensitive=True) == []
    assert _surfaces("IS FIGHTER: the story", ["IS"], case_sensitive=True) == []
    assert _surfaces("Ex-IS fighter", ["IS"], case_sensitive=True) == ["IS"]


# ---------------------------------------------------------------- title, lead, testimony


def test_title_and_lead_weigh_more(rules: RuleSet) -> None:
    in_title = evaluate(rules, "He defected from IS", "Nothing here.\nNor here.", "en")
    in_lead = evaluate(rules, "A story", "He defected from IS.\nNothing here.", "en")
    in_tail = evaluate(rules, "A story", "Nothing here.\nHe defected from IS.", "en")
    assert _points(in_title.contributions, "near_words") == 4.0
    assert _points(in_lead.contributions, "near_words") == 3.0
    assert _points(in_tail.contributions, "near_words") == 2.0
    assert "in the title (x2)" in in_title.contributions[0].reason
    assert "in the lead (x1.5)" in in_lead.contributions[0].reason
    assert (in_title.score, in_lead.score, in_tail.score) == (1.0, 0.75, 0.5)


def test_weighted_testimony_with_quotes(rules: RuleSet) -> None:
    text = 'x\nHe defected from IS.\n"I had no choice," he told us. "My brother stayed."'
    v = evaluate(rules, None, text, "en")
    assert _points(v.contributions, "weighted_testimony") == 1.0
    quoted = [m for m in v.matches if m.rule == "weighted_testimony/quoted_first_person"]
    assert [m.text for m in quoted] == ["I", "My"]
    # the same words outside quotation marks are not testimony
    v = evaluate(rules, None, "x\nHe defected from IS.\nI had no choice, he told us.", "en")
    assert _points(v.contributions, "weighted_testimony") is None


def test_german_quotes_and_dash_speech(rules: RuleSet) -> None:
    v = evaluate(rules, None, "x\nDer IS-Aussteiger: „Ich wollte weg“. Und: „Ich hatte Angst“.",
                 "de")
    assert _points(v.contributions, "weighted_testimony") == 1.0
    assert [m.text for m in v.matches if "quoted_first_person" in m.rule] == ["Ich", "Ich"]
    v = evaluate(rules, None, "x\n— I left, he recalled.\nHe told us.", "en")
    assert _points(v.contributions, "weighted_testimony") == 1.0


def test_matches_point_into_the_scored_text(rules: RuleSet) -> None:
    title, text = "Ex-İŞİD fighter", "x\nDer IS-Aussteiger floh. داعش منشق"
    v = evaluate(rules, title, text, "und")
    scored = scored_text(title, text)
    assert scored == "Ex-İŞİD fighter\n\nx\nDer IS-Aussteiger floh. داعش منشق"
    assert v.matches
    for m in v.matches:
        assert scored[m.start:m.end] == m.text
    assert {(m.rule, m.text) for m in v.matches} >= {
        ("near_words/group", "IS"), ("near_words/leave|exit_word", "Aussteiger"),
        ("near_words/group", "داعش"), ("near_words/leave|exit_word", "منشق")}


def test_narratives_only_on_flagged_stories(rules: RuleSet) -> None:
    flagged = evaluate(rules, None, 'He defected from IS.\n"I feared for my children," he said.',
                       "en")
    assert flagged.flagged and flagged.narratives == ("fear_for_family",)
    assert any(m.rule == "narrative:fear_for_family" and m.text == "my children"
               for m in flagged.matches)
    quiet = evaluate(rules, None, 'x\nIS grew.\n"I feared for my children," he said.', "en")
    assert not quiet.flagged and quiet.narratives == ()


def test_require_gate_and_verdict_record() -> None:
    text = FEATURES.read_text(encoding="utf-8").replace(
        "require: [near_words, same_sentence, same_paragraph, weighted_testimony, anywhere_rule]",
        "require: [same_sentence]")
    gated = parse_rules(text)
    v = evaluate(gated, "He defected from IS", "Nothing.", "en")
    assert v.score == 1.0 and not v.flagged
    assert "none of the required rules fired (same_sentence)" in v.explanation
    record = v.to_dict()
    assert record["rules_version"] == "features-1"
    assert record["contributions"][0]["rule"] == "near_words"
    assert record["matches"][0] == {"term": "defect*", "rule": "near_words/leave|exit_word",
                                    "start": 3, "end": 11, "text": "defected"}


# ---------------------------------------------------------------- cancel only some groups (on:)

_ON_RULES = """\
version: "on-1"
scoring: {threshold: 0.5, full_score: 2.0}
lexicons:
  is_names: {en: [islamic state]}
  leaving: {en: [left, fled]}
  negation: {en: [not, never]}
rules:
  left_is:
    weight: 2.0
    all: [is_names, leaving]
    within: sentence
    not:
      - {lexicon: negation, within: {words: 2}, effect: cancel%s}
"""


def test_cancel_on_named_lexicons_spares_the_other_groups() -> None:
    everything = parse_rules(_ON_RULES % "")
    leaving_only = parse_rules(_ON_RULES % ", on: [leaving]")
    # "not" sits next to the IS name, not next to the leaving word: only `on:` keeps the rule
    text = "x\nHe left the Islamic State: not a day too soon."
    assert not evaluate(everything, None, text, "en").flagged
    kept = evaluate(leaving_only, None, text, "en")
    assert kept.flagged and _points(kept.contributions, "left_is") == 2.0
    # a negated leaving word is still cancelled
    v = evaluate(leaving_only, None, "x\nHe never left the Islamic State.", "en")
    assert not v.flagged
    assert [(n.rule, n.reason) for n in v.negatives] == [
        ("left_is/not", "left_is cancelled by nearby 'never'")]


# ---------------------------------------------------------------- Q&A interviews

_QA_RULES = """\
version: "qa-1"
scoring: {threshold: 0.5, full_score: 1.0}
testimony:
  quote_marks: [['"', '"']]
  interview_answers: %s
  first_person: first_person
lexicons:
  first_person: {en: [i, my, we]}
rules:
  own_words:
    weight: 1.0
    all: [{signal: quoted_first_person}]
"""

_INTERVIEW = ("x\nShe left Raqqa in 2017. Here is the interview.\n"
              "Why did you go?\nMy husband was already there.\n"
              "When did you decide to leave?\nAfter he died we ran at night.")


def test_interview_answers_are_speech() -> None:
    on = parse_rules(_QA_RULES % "true")
    v = evaluate(on, None, _INTERVIEW, "en")
    assert v.flagged
    assert [m.text for m in v.matches if "quoted_first_person" in m.rule] == ["My", "we"]
    # off (the default), answers without quotation marks are not speech
    assert not evaluate(parse_rules(_QA_RULES % "false"), None, _INTERVIEW, "en").flagged
    # one question is rhetorical, not an interview: the next paragraph is narration
    rhetorical = "x\nWhy did they go?\nWe do not know, say the families.\nThey left in 2015."
    assert not evaluate(on, None, rhetorical, "en").flagged


def test_interview_answers_must_be_a_boolean() -> None:
    with pytest.raises(RulesError, match=r"interview_answers.*expected true or false"):
        parse_rules(_QA_RULES % "'yes'")


# ---------------------------------------------------------------- negative contexts by zone (where:)

_ZONE_RULES = """\
version: "zone-1"
scoring: {threshold: 0.5, full_score: 2.0%s}
lexicons:
  is_names: {en: [islamic state]}
  leaving: {en: [left, fled]}
  other_groups: {en: [al-shabaab]}
rules:
  left_is:
    weight: 3.0
    all: [is_names, leaving]
    within: sentence
  other_group_story:
    weight: -2.0
    where: lead
    all: [other_groups]
    not:
      - {lexicon: is_names, where: title, effect: cancel}
"""


def test_negative_context_counts_only_in_its_zone() -> None:
    rules = parse_rules(_ZONE_RULES % "")
    body = "Al-Shabaab fighters, rivals of the group, describe the camp.\nOne left the Islamic State."
    vetoed = evaluate(rules, "Former militants speak", body, "en")
    assert _points(vetoed.contributions, "other_group_story") == -2.0
    # the same IS name in the title cancels the frame; in the body it does not
    named = evaluate(rules, "An Islamic State defector speaks", body, "en")
    assert _points(named.contributions, "other_group_story") is None
    assert "other_group_story/not" in named.explanation


def test_where_of_a_negative_context_is_validated() -> None:
    bad = _ZONE_RULES.replace("where: title, effect", "where: footer, effect") % ""
    with pytest.raises(RulesError, match=r"other_group_story.*not\[0\]\.where.*'footer' is not one of"):
        parse_rules(bad)


# ---------------------------------------------------------------- evidence cap


def test_evidence_cap_lets_a_negative_frame_outweigh_piled_up_evidence() -> None:
    text = "x\nHe left the Islamic State. He fled the Islamic State.\nAl-Shabaab recruits listened."
    body_rules = _ZONE_RULES.replace("    where: lead\n    all: [other_groups]", "    all: [other_groups]")
    uncapped = parse_rules(body_rules % "")
    capped = parse_rules(body_rules % ", evidence_cap: 2.0")
    assert evaluate(uncapped, None, text, "en").score == 0.5      # (3.0 - 2.0) / 2.0
    v = evaluate(capped, None, text, "en")
    assert v.score == 0.0 and not v.flagged                        # (min(3.0, 2.0) - 2.0) / 2.0
    assert "evidence 3.00 counted as 2" in v.explanation
    with pytest.raises(RulesError, match=r"evidence_cap"):
        parse_rules(body_rules % ", evidence_cap: -1")
