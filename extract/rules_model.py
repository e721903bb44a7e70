"""The validated, compiled form of config/rules.yaml (built by extract/rules_loader.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from extract.matching import Term, TermMatcher

__all__ = [
    "RulesError", "Lexicon", "Group", "Window", "NotClause", "WeightedGroup", "Rule",
    "Narrative", "Testimony", "RuleSet", "ANY", "UNKNOWN_LANGS",
]

ANY = "any"                                  # lexicon key: terms for every language
UNKNOWN_LANGS = frozenset({"", "und", "unknown", "xx", "zz"})
LANG_ALIASES = {"nb": "no", "nn": "no", "zh-cn": "zh", "zh-tw": "zh", "in": "id", "iw": "he"}


class RulesError(ValueError):
    """rules.yaml is missing or invalid. The message names file, line, rule and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        rule: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.rule = rule
        self.field = field


@dataclass(frozen=True)
class Lexicon:
    name: str
    terms: dict[str, tuple[Term, ...]]      # language code (or "any") -> terms
    description: str = ""

    def select(self, langs: frozenset[str] | None) -> tuple[str, tuple[Term, ...]]:
        """The terms used for a text in ``langs`` (None: unknown language) and a cache key.

        Recall first: an unknown language, or a lexicon with no entry for any of ``langs``,
        uses the terms of every language.
        """
        specific = [lang for lang in self.terms if lang != ANY]
        chosen = [] if langs is None else [lang for lang in specific if lang in langs]
        if not chosen:
            chosen = specific
        key = ",".join(sorted(chosen))
        terms = list(self.terms.get(ANY, ()))
        for lang in sorted(chosen):
            terms.extend(self.terms[lang])
        return key, tuple(terms)

    def all_terms(self) -> tuple[Term, ...]:
        return tuple(t for terms in self.terms.values() for t in terms)


@dataclass(frozen=True)
class Group:
    """One OR-group: any term of some lexicons, inline terms, or a testimony signal."""

    label: str
    lexicons: tuple[str, ...] = ()
    terms: tuple[Term, ...] = ()
    signal: str | None = None
    min: int = 1                             # hits needed (inside the window, if any)


@dataclass(frozen=True)
class Window:
    unit: Literal["text", "words", "sentence", "paragraph"] = "text"
    size: int = 0                            # for unit == "words"

    def describe(self) -> str:
        if self.unit == "words":
            return f"within {self.size} words"
        return "anywhere" if self.unit == "text" else f"in one {self.unit}"


@dataclass(frozen=True)
class NotClause:
    group: Group
    within: Window
    effect: Literal["cancel", "lower"]
    weight: float = 0.0                      # points taken off when effect == "lower"
    on: tuple[str, ...] = ()                 # cancel only hits of groups using these lexicons
    where: Literal["text", "lead", "title"] = "text"   # only negative terms found there count

    def applies_to(self, group: Group) -> bool:
        """Whether a ``cancel`` clause removes the hits of ``group`` (all groups by default)."""
        return not self.on or any(name in self.on for name in group.lexicons)


@dataclass(frozen=True)
class WeightedGroup:
    group: Group
    weight: float
    cap: int | None = None                   # count at most this many distinct hits


@dataclass(frozen=True)
class Rule:
    id: str
    weight: float
    description: str = ""
    all: tuple[Group, ...] = ()
    within: Window = Window()
    anywhere: tuple[Group, ...] = ()
    weighted: tuple[WeightedGroup, ...] = ()
    min: float = 0.0                         # weighted rules fire at this sum
    where: Literal["text", "lead", "title"] = "text"
    not_: tuple[NotClause, ...] = ()


@dataclass(frozen=True)
class Narrative:
    name: str
    group: Group
    min: int = 1                             # distinct terms needed
    description: str = ""


@dataclass(frozen=True)
class Testimony:
    quote_marks: tuple[tuple[str, str], ...] = ()
    dash_speech: bool = True                 # a paragraph opening with a dash is speech
    first_person: str | None = None          # lexicon of first-person words
    interview_answers: bool = False          # in a Q&A interview, answers are speech


@dataclass
class RuleSet:
    """A loaded rules.yaml. Immutable by convention; compiled matchers are cached on it."""

    version: str
    threshold: float
    full_score: float
    lexicons: dict[str, Lexicon]
    rules: tuple[Rule, ...]
    require: tuple[str, ...] = ()
    narratives: tuple[Narrative, ...] = ()
    testimony: Testimony = Testimony()
    title_weight: float = 1.0
    lead_weight: float = 1.0
    lead_paragraphs: int = 2
    lead_min_words: int = 0        # shorter lines (kickers, headings) do not count as lead paragraphs
    evidence_cap: float | None = None   # positive points count up to this before negative rules apply
    related_languages: dict[str, tuple[str, ...]] = field(default_factory=dict)
    path: Path | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def languages_for(self, lang: str) -> frozenset[str] | None:
        """The lexicon languages used for a text detected as ``lang`` (None: all)."""
        code = (lang or "").strip().lower().replace("_", "-")
        code = LANG_ALIASES.get(code, code.split("-")[0])
        code = LANG_ALIASES.get(code, code)
        if code in UNKNOWN_LANGS:
            return None
        return frozenset((code, *self.related_languages.get(code, ())))

    def matcher(self, key: Any, terms: tuple[Term, ...]) -> TermMatcher:
        cached = self._cache.get(("matcher", key))
        if cached is None:
            cached = TermMatcher(terms)
            self._cache[("matcher", key)] = cached
        assert isinstance(cached, TermMatcher)
        return cached

    def group_terms(self, group: Group, langs: frozenset[str] | None) -> tuple[str, tuple[Term, ...]]:
        parts: list[str] = []
        terms: list[Term] = []
        for name in group.lexicons:
            key, chosen = self.lexicons[name].select(langs)
            parts.append(f"{name}[{key}]")
            terms.extend(chosen)
        if group.terms:
            parts.append("inline:" + "|".join(t.source for t in group.terms))
            terms.extend(group.terms)
        return ";".join(parts), tuple(terms)
