"""A cheap, recall-safe prefilter on the raw page, derived from the RuleSet.

``could_match(ruleset, raw)`` runs before trafilatura. It returns False only when no text
extracted from ``raw`` can be flagged by ``extract.rules.evaluate``, so skipping such pages
loses nothing. How:

* Every term has *anchors*: the pieces (words) that any match of it contains, and whether
  each always starts a word (``extract.matching.term_anchors``). Folding is per character,
  so the folded page contains every anchor of a term wherever the extracted text had a match.
* The page is searched as text: comments, ``<style>`` and scripts other than JSON-LD are
  dropped (trafilatura never takes text from them); every other tag becomes a marker that
  counts as a word boundary before an anchor and is skipped inside one (``Da<b>esh</b>``);
  meta ``content`` attributes (og:title), JSON-LD ``\\uXXXX`` escapes and entities
  (``&eacute;``, ``&#1583;``) are decoded. Case-sensitive anchors (``IS``) are searched in a
  copy folded without case folding.
* A rule can fire only if every group of ``all`` and ``anywhere`` (for a weighted rule: some
  positive group) has an anchor on the page; testimony signals are assumed present.
* The page can be flagged only if a required rule can fire and the points of all rules that
  can fire, each at its best position factor, reach the threshold. Negative contexts are
  ignored (they only lower scores).

Anchors are searched with trie-shaped regexes built once per RuleSet and cached on it.
No HTML parsing.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from extract.matching import Anchor, term_anchors
from extract.normalize import fold, fold_keep_case
from extract.rules_model import Group, Rule, RuleSet

__all__ = ["could_match", "page_text"]

MARK = "\ufffc"   # stands for a removed tag: non-word, survives folding
_DROPPED = re.compile(
    r"<!--.*?-->|<style\b.*?</style\s*>"
    r"|<script\b(?![^>]*application/ld\+json)[^>]*>.*?</script\s*>",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[A-Za-z/!?][^>]*>")
_CONTENT = re.compile(r"""\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_CACHE_KEY = "prefilter-plan"


def _tag_to_mark(m: re.Match[str]) -> str:
    tag = m.group(0)
    if tag[1:5].lower() == "meta":
        values = [a or b for a, b in _CONTENT.findall(tag)]
        if values:
            return MARK + MARK.join(values) + MARK
    if tag[1:7].lower() == "script":
        return MARK + "\n"
    return MARK


def page_text(raw: str) -> str:
    """The raw page as searchable text: tags replaced by MARK, entities decoded (not folded)."""
    text = _DROPPED.sub(MARK, raw)
    if "\\u" in text:
        text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return html.unescape(_TAG.sub(_tag_to_mark, text))


_Options = frozenset[tuple[Anchor, ...]]   # a group: any term, each needing all its pieces


@dataclass(frozen=True)
class _RulePlan:
    rule: Rule
    required_groups: tuple[_Options | None, ...]   # None: always possible (a signal)
    weighted_groups: tuple[_Options | None, ...]
    best_points: float


@dataclass(frozen=True)
class _Search:
    pattern: re.Pattern[str]
    prefixes: dict[str, tuple[str, ...]]
    case_sensitive: bool
    word_start: bool


@dataclass(frozen=True)
class _Plan:
    rules: tuple[_RulePlan, ...]
    searches: tuple[_Search, ...]


def _group_anchors(ruleset: RuleSet, group: Group) -> _Options | None:
    if group.signal:
        return None
    _, terms = ruleset.group_terms(group, None)
    return frozenset(term_anchors(t) for t in terms)


def _possible(options: _Options | None, present: set[Anchor]) -> bool:
    return options is None or any(all(a in present for a in t) for t in options)


def _trie_pattern(words: set[str]) -> str:
    """A regex matching the longest of ``words`` at a position, tolerating MARKs inside."""
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict], first: bool) -> str:  # type: ignore[type-arg]
        alts = [("" if first else f"{MARK}*") + re.escape(ch) + emit(child, False)
                for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie, True)


def _search(anchors: set[Anchor], case_sensitive: bool, word_start: bool) -> _Search | None:
    words = {a.text for a in anchors
             if a.case_sensitive == case_sensitive and a.word_start == word_start}
    if not words:
        return None
    boundary = r"(?<!\w)" if word_start else ""
    pattern = re.compile(f"(?=({boundary}{_trie_pattern(words)}))")
    prefixes = {w: tuple(w[:k] for k in range(1, len(w) + 1) if w[:k] in words) for w in words}
    return _Search(pattern, prefixes, case_sensitive, word_start)


def _plan(ruleset: RuleSet) -> _Plan:
    cached = ruleset._cache.get(_CACHE_KEY)
    if isinstance(cached, _Plan):
        return cached
    best = max(ruleset.title_weight, ruleset.lead_weight, 1.0)
    plans = []
    anchors: set[Anchor] = set()
    for rule in ruleset.rules:
        if rule.weight <= 0:
            continue
        required = tuple(_group_anchors(ruleset, g) for g in (*rule.all, *rule.anywhere))
        weighted = tuple(_group_anchors(ruleset, wg.group) for wg in rule.weighted
                         if wg.weight > 0)
        for options in (*required, *weighted):
            for pieces in options or ():
                anchors.update(pieces)
        plans.append(_RulePlan(rule, required, weighted, rule.weight * best))
    searches = [_search(anchors, case, start) for case in (False, True) for start in (True, False)]
    plan = _Plan(tuple(plans), tuple(s for s in searches if s is not None))
    ruleset._cache[_CACHE_KEY] = plan
    return plan


def _present(plan: _Plan, text: str) -> set[Anchor]:
    found: set[Anchor] = set()
    folded: dict[bool, str] = {}
    for search in plan.searches:
        if search.case_sensitive not in folded:
            folded[search.case_sensitive] = (fold_keep_case(text) if search.case_sensitive
                                             else fold(text))
        longest = {m.group(1).replace(MARK, "")
                   for m in search.pattern.finditer(folded[search.case_sensitive])}
        for word in longest:
            for prefix in search.prefixes.get(word, (word,)):
                found.add(Anchor(prefix, search.word_start, search.case_sensitive))
    return found


def could_match(ruleset: RuleSet, raw: str) -> bool:
    """False only when no text extracted from ``raw`` could be flagged by the rules."""
    plan = _plan(ruleset)
    present = _present(plan, page_text(raw))
    points = 0.0
    required_possible = not ruleset.require
    for rp in plan.rules:
        if not all(_possible(g, present) for g in rp.required_groups):
            continue
        if rp.rule.weighted and not any(_possible(g, present) for g in rp.weighted_groups):
            continue
        points += rp.best_points
        if rp.rule.id in ruleset.require:
            required_possible = True
    if not required_possible:
        return False
    return min(1.0, points / ruleset.full_score) >= ruleset.threshold
