"""rules.yaml is validated on load; errors name the file, the line, the rule and the field."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from extract.rules import RulesError, load_rules, parse_rules

REPO = Path(__file__).resolve().parents[2]

GOOD = dedent(
    """\
    version: "t-1"
    scoring:
      threshold: 0.5
      full_score: 2.0
    lexicons:
      is_names:
        en: [islamic state, isis]
      leaving:
        en: [defect*, fled]
    rules:
      left:
        weight: 2.0
        all: [is_names, leaving]
        within: sentence
    """
)


def _error(text: str, tmp_path: Path) -> RulesError:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    return info.value


def test_the_shipped_rules_load() -> None:
    ruleset = load_rules(REPO / "config" / "rules.yaml")
    assert ruleset.version
    assert {"left_is", "defector_term", "member_left"} <= {r.id for r in ruleset.rules}
    assert set(ruleset.require) == {"left_is", "left_the_group", "defector_term", "member_left",
                                    "defected_from_is", "defector_profile", "defector_story"}
    languages = set(ruleset.lexicons["leaving"].terms)
    assert {"en", "ar", "fr", "de", "nl", "sv", "da", "no", "tr", "ru", "es", "it", "pt",
            "id"} <= languages
    assert {n.name for n in ruleset.narratives} == {
        "fights_sunni_rebels", "brutality_against_sunnis", "corruption_and_privilege",
        "harsh_disappointing_life", "fear_for_family", "religious_disillusion"}


def test_good_rules_parse() -> None:
    ruleset = parse_rules(GOOD)
    assert ruleset.version == "t-1"
    assert ruleset.threshold == 0.5
    assert [r.id for r in ruleset.rules] == ["left"]


def test_unknown_lexicon_reference(tmp_path: Path) -> None:
    err = _error(GOOD.replace("all: [is_names, leaving]", "all: [is_names, leavng]"), tmp_path)
    assert str(err).startswith(f"{tmp_path / 'rules.yaml'}, line 13: rule 'left', field 'all[1]'")
    assert "unknown lexicon 'leavng'" in str(err)
    assert "Did you mean 'leaving'?" in str(err)
    assert (err.line, err.rule, err.field) == (13, "left", "all[1]")


def test_bad_weight_type(tmp_path: Path) -> None:
    err = _error(GOOD.replace("weight: 2.0", "weight: high"), tmp_path)
    assert "line 12: rule 'left', field 'weight': expected a number, got 'high'" in str(err)
    assert "Write a plain number such as 1.5" in str(err)


def test_missing_version(tmp_path: Path) -> None:
    err = _error(GOOD.replace('version: "t-1"\n', ""), tmp_path)
    assert "missing 'version'" in str(err)
    assert 'version: "2025-06-01.1"' in str(err)
    assert err.file == str(tmp_path / "rules.yaml")


def test_unknown_field_typo(tmp_path: Path) -> None:
    err = _error(GOOD.replace("within: sentence", "withn: sentence"), tmp_path)
    assert "line 14: rule 'left', field 'withn': unknown field 'withn'" in str(err)
    assert "Did you mean 'within'?" in str(err)
    assert (err.rule, err.field) == ("left", "withn")


def test_bad_window(tmp_path: Path) -> None:
    err = _error(GOOD.replace("within: sentence", "within: chapter"), tmp_path)
    assert "field 'within': 'chapter' is not one of sentence, paragraph, text" in str(err)
    err = _error(GOOD.replace("within: sentence", "within: {words: -3}"), tmp_path)
    assert "field 'within.words': expected a whole number of at least 1, got -3" in str(err)


def test_bad_term_star(tmp_path: Path) -> None:
    err = _error(GOOD.replace("en: [defect*, fled]", "en: [de*fect, fled]"), tmp_path)
    assert "line 9: lexicon 'leaving', field 'en[0]'" in str(err)
    assert "has a '*' that is not at the start or end of a word" in str(err)


def test_bad_language_code(tmp_path: Path) -> None:
    err = _error(GOOD.replace("en: [defect*, fled]", "english: [defect*, fled]"), tmp_path)
    assert "lexicon 'leaving', field 'english': 'english' is not a language code" in str(err)


def test_norwegian_code_is_not_yaml_false() -> None:
    ruleset = parse_rules(GOOD.replace("en: [defect*, fled]", "no: [hoppet av]\n    en: [fled]"))
    assert set(ruleset.lexicons["leaving"].terms) == {"no", "en"}


def test_lower_needs_weight_and_rule_needs_groups(tmp_path: Path) -> None:
    text = GOOD.replace("within: sentence",
                        "within: sentence\n    not:\n      - {lexicon: is_names, effect: lower}")
    err = _error(text, tmp_path)
    assert "field 'not[0]': effect 'lower' needs 'weight'" in str(err)
    err = _error(GOOD.replace("    all: [is_names, leaving]\n", ""), tmp_path)
    assert "rule 'left': a rule needs exactly one of 'all' or 'weighted'" in str(err)


def test_duplicate_key_and_threshold_range(tmp_path: Path) -> None:
    err = _error(GOOD.replace("    weight: 2.0\n", "    weight: 2.0\n    weight: 3\n"),
                 tmp_path)
    assert "rule 'left', field 'weight': 'weight' is given twice" in str(err)
    err = _error(GOOD.replace("threshold: 0.5", "threshold: 5"), tmp_path)
    assert "field 'scoring.threshold': 5 is out of range" in str(err)


def test_unknown_required_rule_and_yaml_syntax(tmp_path: Path) -> None:
    err = _error(GOOD + "require: [lefty]\n", tmp_path)
    assert "field 'require[0]': unknown rule 'lefty'" in str(err)
    err = _error(GOOD.replace("en: [islamic state, isis]", "en: [islamic state, isis"), tmp_path)
    assert "not valid YAML" in str(err)
    assert err.line is not None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="file not found"):
        load_rules(tmp_path / "nope.yaml")


def test_cancel_on_must_name_a_lexicon_of_the_rule(tmp_path: Path) -> None:
    good = GOOD.replace("within: sentence",
                        "within: sentence\n    not:\n      - {lexicon: is_names, within: sentence, "
                        "on: [leaving]}")
    assert parse_rules(good).rules[0].not_[0].on == ("leaving",)
    err = _error(good.replace("on: [leaving]", "on: [leavin]"), tmp_path)
    assert "field 'not[0].on': 'leavin' is not a lexicon of this rule's groups" in str(err)
    assert "Name one of: is_names, leaving." in str(err)
