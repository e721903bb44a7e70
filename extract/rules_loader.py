"""Load and validate rules.yaml into a RuleSet; errors name file, line, rule and field.

The YAML is composed into a node tree (never executed: no tags beyond plain data), so every
value keeps its line. Mapping keys are read as written, which keeps the Norwegian code
``no:`` a string instead of YAML 1.1's boolean.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from extract.matching import Term, parse_term
from extract.rules_doc import PathT, RulesDoc, show_value
from extract.rules_model import (
    ANY,
    Group,
    Lexicon,
    Narrative,
    NotClause,
    Rule,
    RulesError,
    RuleSet,
    Testimony,
    WeightedGroup,
    Window,
)

__all__ = ["load_rules", "parse_rules", "SIGNALS"]

SIGNALS = ("quote", "quoted_first_person")

_TOP = ("version", "description", "scoring", "related_languages", "require", "testimony",
        "lexicons", "rules", "narratives")
_SCORING = ("threshold", "full_score", "title_weight", "lead_weight", "lead_paragraphs", "lead_min_words",
            "evidence_cap")
_RULE = ("description", "weight", "all", "within", "anywhere", "weighted", "min", "where", "not")
_GROUP = ("lexicon", "lexicons", "terms", "signal", "min")
_NOT = ("lexicon", "lexicons", "terms", "signal", "min", "within", "effect", "weight", "on", "where")
_WEIGHTED = ("lexicon", "lexicons", "terms", "signal", "min", "weight", "cap")
_NARRATIVE = ("description", "lexicon", "lexicons", "terms", "min")
_TESTIMONY = ("quote_marks", "dash_speech", "interview_answers", "first_person")
_LANG = re.compile(r"^[a-z]{2,3}$")


def _term(doc: RulesDoc, value: Any, path: PathT) -> Term:
    case_sensitive = False
    if isinstance(value, dict):
        spec = doc.mapping(value, path, ("term", "case_sensitive"))
        if "term" not in spec:
            doc.fail(path, "a term written as a mapping needs 'term'", "Add term: <text>.")
        flag = spec.get("case_sensitive", False)
        if not isinstance(flag, bool):
            doc.fail((*path, "case_sensitive"), f"expected true or false, got {show_value(flag)}",
                     "Write true or false.")
        case_sensitive = flag
        path, value = (*path, "term"), spec["term"]
    text = doc.text(value, path)
    try:
        return parse_term(text, case_sensitive=case_sensitive)
    except ValueError as exc:
        doc.fail(path, str(exc), "Write a word or phrase; '*' only at the start or end of a word.")


def _terms(doc: RulesDoc, value: Any, path: PathT) -> tuple[Term, ...]:
    if not isinstance(value, list) or not value:
        doc.fail(path, f"expected a non-empty list of terms, got {show_value(value)}",
                 "Write terms as a list: [defector, defect*].")
    return tuple(_term(doc, item, (*path, i)) for i, item in enumerate(value))


def _lexicons(doc: RulesDoc, value: Any) -> dict[str, Lexicon]:
    if not isinstance(value, dict) or not value:
        doc.fail(("lexicons",), "expected a mapping of named term lists",
                 "Add lexicons: {is_names: {any: [...]}}.")
    out: dict[str, Lexicon] = {}
    for name, spec in value.items():
        path: PathT = ("lexicons", name)
        if not isinstance(spec, dict) or not spec:
            doc.fail(path, f"expected language codes with term lists, got {show_value(spec)}",
                     "Write e.g. en: [defector] under the lexicon name.")
        by_lang: dict[str, tuple[Term, ...]] = {}
        for lang, terms in spec.items():
            if lang == "description":
                continue
            if lang != ANY and not _LANG.match(lang):
                doc.fail((*path, lang), f"'{lang}' is not a language code",
                         "Use 'any' or an ISO 639-1 code such as en, ar, de, tr, id.")
            by_lang[lang] = _terms(doc, terms, (*path, lang))
        if not by_lang:
            doc.fail(path, "no terms", "Add at least one language list.")
        desc = doc.text(spec["description"], (*path, "description")) if "description" in spec else ""
        out[name] = Lexicon(name, by_lang, desc)
    return out


def _group(doc: RulesDoc, value: Any, path: PathT, lexicons: dict[str, Lexicon],
           allowed: tuple[str, ...] = _GROUP) -> Group:
    if isinstance(value, str):
        value = {"lexicon": value}
        refs_path: PathT = path
    elif isinstance(value, list):
        value = {"lexicons": value}
        refs_path = path
    else:
        doc.mapping(value, path, allowed)
        refs_path = (*path, "lexicons") if "lexicons" in value else (*path, "lexicon")
    names = list(doc.str_list(value["lexicons"], refs_path)) if "lexicons" in value else []
    if "lexicon" in value:
        names.append(doc.text(value["lexicon"], refs_path))
    for i, name in enumerate(names):
        if name not in lexicons:
            close = difflib.get_close_matches(name, list(lexicons), n=1)
            hint = f"Did you mean '{close[0]}'?" if close else "Define it under lexicons:."
            ref_path = refs_path if "lexicons" not in value else (*refs_path, i)
            doc.fail(ref_path, f"unknown lexicon '{name}'", hint)
    terms = _terms(doc, value["terms"], (*path, "terms")) if "terms" in value else ()
    signal = None
    if "signal" in value:
        signal = doc.choice(value["signal"], (*path, "signal"), SIGNALS)
    if not names and not terms and signal is None:
        doc.fail(path, "the group names no lexicon, terms or signal",
                 "Add lexicon: <name>, terms: [...] or signal: quoted_first_person.")
    minimum = doc.integer(value["min"], (*path, "min")) if "min" in value else 1
    label = "|".join(names + ([f"'{t.source}'" for t in terms][:3]) + ([signal] if signal else []))
    return Group(label, tuple(names), terms, signal, minimum)


def _window(doc: RulesDoc, value: Any, path: PathT) -> Window:
    if isinstance(value, dict):
        spec = doc.mapping(value, path, ("words",))
        if "words" not in spec:
            doc.fail(path, "a window mapping needs 'words'", "Write within: {words: 10}.")
        return Window("words", doc.integer(spec["words"], (*path, "words")))
    unit = doc.choice(value, path, ("sentence", "paragraph", "text"))
    return Window(unit)  # type: ignore[arg-type]


def _rule(doc: RulesDoc, rid: str, value: Any, lexicons: dict[str, Lexicon]) -> Rule:
    path: PathT = ("rules", rid)
    spec = doc.mapping(value, path, _RULE)
    if "weight" not in spec:
        doc.fail(path, "missing 'weight'", "Add weight: <points this rule adds>, e.g. 1.5.")
    weight = doc.number(spec["weight"], (*path, "weight"))
    if ("all" in spec) == ("weighted" in spec):
        doc.fail(path, "a rule needs exactly one of 'all' or 'weighted'",
                 "Use all: [group, ...] for AND of OR-groups, or weighted: [...] for a scored list.")
    groups: tuple[Group, ...] = ()
    if "all" in spec:
        items = spec["all"]
        if not isinstance(items, list) or not items:
            doc.fail((*path, "all"), "expected a non-empty list of groups",
                     "Write all: [is_names, leaving].")
        groups = tuple(_group(doc, g, (*path, "all", i), lexicons) for i, g in enumerate(items))
    weighted: tuple[WeightedGroup, ...] = ()
    if "weighted" in spec:
        items = spec["weighted"]
        if not isinstance(items, list) or not items:
            doc.fail((*path, "weighted"), "expected a non-empty list",
                     "Write weighted: [{lexicon: framing, weight: 1}].")
        wg = []
        for i, item in enumerate(items):
            ipath = (*path, "weighted", i)
            doc.mapping(item, ipath, _WEIGHTED)
            if "weight" not in item:
                doc.fail(ipath, "missing 'weight'", "Add weight: <points per distinct hit>.")
            cap = doc.integer(item["cap"], (*ipath, "cap")) if "cap" in item else None
            wg.append(WeightedGroup(_group(doc, item, ipath, lexicons, _WEIGHTED),
                                    doc.number(item["weight"], (*ipath, "weight")), cap))
        weighted = tuple(wg)
    anywhere: tuple[Group, ...] = ()
    if "anywhere" in spec:
        items = spec["anywhere"]
        if not isinstance(items, list):
            doc.fail((*path, "anywhere"), "expected a list of groups", "Write anywhere: [is_names].")
        anywhere = tuple(_group(doc, g, (*path, "anywhere", i), lexicons)
                         for i, g in enumerate(items))
    nots = []
    for i, item in enumerate(spec.get("not") or []):
        npath = (*path, "not", i)
        doc.mapping(item, npath, _NOT)
        effect = doc.choice(item.get("effect", "cancel"), (*npath, "effect"), ("cancel", "lower"))
        nweight = 0.0
        if effect == "lower":
            if "weight" not in item:
                doc.fail(npath, "effect 'lower' needs 'weight'", "Add weight: <points to take off>.")
            nweight = doc.number(item["weight"], (*npath, "weight"), low=0)
        within = _window(doc, item["within"], (*npath, "within")) if "within" in item else Window()
        on = tuple(doc.str_list(item["on"], (*npath, "on"))) if "on" in item else ()
        used = {name for g in (*groups, *anywhere, *(w.group for w in weighted))
                for name in g.lexicons}
        for name in on:
            if name not in used:
                doc.fail((*npath, "on"), f"'{name}' is not a lexicon of this rule's groups",
                         f"Name one of: {', '.join(sorted(used)) or 'none (use terms groups)'}.")
        nwhere = doc.choice(item.get("where", "text"), (*npath, "where"), ("text", "lead", "title"))
        nots.append(NotClause(_group(doc, item, npath, lexicons, _NOT), within,
                              effect, nweight, on, nwhere))  # type: ignore[arg-type]
    if "not" in spec and not isinstance(spec["not"], list):
        doc.fail((*path, "not"), "expected a list of negative contexts", "Write not: [{...}].")
    return Rule(
        id=rid,
        weight=weight,
        description=doc.text(spec["description"], (*path, "description"))
        if "description" in spec else "",
        all=groups,
        within=_window(doc, spec["within"], (*path, "within")) if "within" in spec else Window(),
        anywhere=anywhere,
        weighted=weighted,
        min=doc.number(spec["min"], (*path, "min"), low=0) if "min" in spec else 0.0,
        where=doc.choice(spec.get("where", "text"), (*path, "where"),
                         ("text", "lead", "title")),  # type: ignore[arg-type]
        not_=tuple(nots),
    )


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Validate rules.yaml text and build a RuleSet. ``source`` names the file in errors."""
    doc = RulesDoc(text, source)
    top = doc.mapping(doc.data if doc.data is not None else {}, (), _TOP)
    if "version" not in top:
        doc.fail((), "missing 'version'", "Add a line such as version: \"2025-06-01.1\" at the top.")
    version = doc.text(top["version"], ("version",)).strip()
    if not version:
        doc.fail(("version",), "'version' is empty", "Write a version string.")
    scoring = doc.mapping(top.get("scoring", {}), ("scoring",), _SCORING)
    for key in ("threshold", "full_score"):
        if key not in scoring:
            doc.fail(("scoring",), f"missing '{key}'", f"Add {key}: <number> under scoring:.")
    lexicons = _lexicons(doc, top.get("lexicons"))
    rules_spec = top.get("rules")
    if not isinstance(rules_spec, dict) or not rules_spec:
        doc.fail(("rules",), "expected a mapping of rules", "Add rules: {<id>: {weight: .., all: ..}}.")
    rules = tuple(_rule(doc, rid, spec, lexicons) for rid, spec in rules_spec.items())
    require = tuple(doc.str_list(top.get("require", []), ("require",)))
    for i, rid in enumerate(require):
        if rid not in rules_spec:
            doc.fail(("require", i), f"unknown rule '{rid}'", "Name a rule defined under rules:.")
    narratives = []
    for name, spec in (top.get("narratives") or {}).items():
        npath: PathT = ("narratives", name)
        doc.mapping(spec, npath, _NARRATIVE)
        group = _group(doc, {k: v for k, v in spec.items() if k not in ("description", "min")},
                       npath, lexicons)
        narratives.append(Narrative(
            name, group, doc.integer(spec["min"], (*npath, "min")) if "min" in spec else 1,
            doc.text(spec["description"], (*npath, "description")) if "description" in spec else ""))
    testimony = _testimony(doc, top.get("testimony", {}), lexicons)
    related: dict[str, tuple[str, ...]] = {}
    rel_spec = top.get("related_languages", {})
    if not isinstance(rel_spec, dict):
        doc.fail(("related_languages",), "expected a mapping", "Write related_languages: {da: [no]}.")
    for lang, others in rel_spec.items():
        related[lang] = tuple(doc.str_list(others, ("related_languages", lang)))
    return RuleSet(
        version=version,
        threshold=doc.number(scoring["threshold"], ("scoring", "threshold"), low=0, high=1),
        full_score=doc.number(scoring["full_score"], ("scoring", "full_score"), low=0.001),
        lexicons=lexicons,
        rules=rules,
        require=require,
        narratives=tuple(narratives),
        testimony=testimony,
        title_weight=doc.number(scoring.get("title_weight", 1.0), ("scoring", "title_weight"), low=0),
        lead_weight=doc.number(scoring.get("lead_weight", 1.0), ("scoring", "lead_weight"), low=0),
        lead_paragraphs=doc.integer(scoring.get("lead_paragraphs", 2), ("scoring", "lead_paragraphs"),
                                    low=0),
        lead_min_words=doc.integer(scoring.get("lead_min_words", 0), ("scoring", "lead_min_words"),
                                   low=0),
        evidence_cap=doc.number(scoring["evidence_cap"], ("scoring", "evidence_cap"), low=0)
        if "evidence_cap" in scoring else None,
        related_languages=related,
        path=None if source.startswith("<") else Path(source),
    )


def _testimony(doc: RulesDoc, value: Any, lexicons: dict[str, Lexicon]) -> Testimony:
    spec = doc.mapping(value, ("testimony",), _TESTIMONY)
    marks = []
    for i, pair in enumerate(spec.get("quote_marks", [])):
        pair_path: PathT = ("testimony", "quote_marks", i)
        items = doc.str_list(pair, pair_path)
        if len(items) != 2 or not all(len(x) == 1 for x in items):
            doc.fail(pair_path, f"expected [opening, closing] characters, got {items}",
                     "Write a pair of single characters such as ['«', '»'].")
        marks.append((items[0], items[1]))
    first_person = None
    if "first_person" in spec:
        first_person = doc.text(spec["first_person"], ("testimony", "first_person"))
        if first_person not in lexicons:
            doc.fail(("testimony", "first_person"), f"unknown lexicon '{first_person}'",
                     "Name the lexicon of first-person words (I, me, my, ...).")
    flags: dict[str, bool] = {}
    for key, default in (("dash_speech", True), ("interview_answers", False)):
        value = spec.get(key, default)
        if not isinstance(value, bool):
            doc.fail(("testimony", key), f"expected true or false, got {show_value(value)}",
                     "Write true or false.")
        flags[key] = value
    return Testimony(tuple(marks), flags["dash_speech"], first_person, flags["interview_answers"])


def load_rules(path: Path | str) -> RuleSet:
    """Read and validate a rules.yaml file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RulesError(f"{file}: file not found. Check the path (config/rules.yaml).",
                         file=str(file)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{file}: cannot read: {exc}. Save it as UTF-8 text.",
                         file=str(file)) from exc
    return parse_rules(text, str(file))
