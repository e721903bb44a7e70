"""The story filter: score a text against a RuleSet and explain the verdict.

Scoring, as researchers tune it in config/rules.yaml:

* A rule fires when all its OR-groups are found (``all``), inside one window when it has
  ``within`` (N words, one sentence, one paragraph), plus any ``anywhere`` groups anywhere;
  or, for a ``weighted`` rule, when the weighted count of distinct hits reaches ``min``.
* A firing rule adds ``weight`` points, times ``title_weight`` when its evidence is all in
  the title, or ``lead_weight`` when it is all in the title and the first
  ``lead_paragraphs`` paragraphs. Negative weights take points off.
* ``not`` contexts: ``cancel`` ignores the rule's hits near a negative term (anywhere in the
  text when the context has no ``within``); ``lower`` takes ``weight`` points off when a
  negative term is near the firing rule's hits.
* score = points / full_score, clipped to [0, 1]; flagged when score >= threshold and, if
  ``require`` lists rules, at least one of them fired.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from dataclasses import dataclass

from extract.matching import Hit, Layout
from extract.normalize import normalize
from extract.rules_loader import load_rules, parse_rules
from extract.rules_model import Group, NotClause, Rule, RulesError, RuleSet, Window
from extract.testimony import first_person_in_quotes, quote_hits, quote_spans
from extract.types import Contribution, Match, Verdict

__all__ = ["RuleSet", "RulesError", "load_rules", "parse_rules", "evaluate", "scored_text"]

logger = logging.getLogger(__name__)

_SEPARATOR = "\n\n"
_MAX_MATCHES_PER_RULE = 25


def scored_text(title: str | None, text: str) -> str:
    """The text a Verdict's offsets refer to: ``title + "\\n\\n" + text``, or ``text``."""
    if title and title.strip():
        return f"{title}{_SEPARATOR}{text}"
    return text


@dataclass
class _Outcome:
    rule: Rule
    points: float
    factor: float
    hits: list[tuple[str, Hit]]          # (group label, hit)
    reason: str


class _Context:
    """One evaluation: the layout of the text and the hits of every group, computed once."""

    def __init__(self, ruleset: RuleSet, layout: Layout, langs: frozenset[str] | None) -> None:
        self.rs = ruleset
        self.layout = layout
        self.langs = langs
        self._hits: dict[str, list[Hit]] = {}
        self._quotes: list[tuple[int, int]] | None = None
        self.factors = {"title": ruleset.title_weight, "lead": ruleset.lead_weight, "body": 1.0}

    def quotes(self) -> list[tuple[int, int]]:
        if self._quotes is None:
            t = self.rs.testimony
            self._quotes = quote_spans(self.layout, t.quote_marks, t.dash_speech,
                                       t.interview_answers)
        return self._quotes

    def hits(self, group: Group) -> list[Hit]:
        key, terms = self.rs.group_terms(group, self.langs)
        key = f"{key}#{group.signal}"
        found = self._hits.get(key)
        if found is None:
            found = self.rs.matcher(key, terms).find(self.layout.norm) if terms else []
            if group.signal == "quote":
                found = found + quote_hits(self.quotes())
            elif group.signal == "quoted_first_person" and self.rs.testimony.first_person:
                fp = Group("first_person", (self.rs.testimony.first_person,))
                found = found + first_person_in_quotes(self.quotes(), self.hits(fp))
            found.sort(key=lambda h: (h.start, h.end))
            self._hits[key] = found
        return found

    def negatives(self, clause: NotClause) -> list[Hit]:
        """The hits of a negative context, only those in its ``where`` zone."""
        found = self.hits(clause.group)
        if clause.where == "text":
            return found
        return [h for h in found if self.in_where(h, clause.where)]

    def factor(self, hit: Hit) -> float:
        return self.factors[self.layout.zone(hit.start)]

    def far_from(self, hits: list[Hit], bad: list[Hit], window: Window) -> list[Hit]:
        """The hits with no ``bad`` hit inside ``window`` around them."""
        if not bad or not hits:
            return hits
        lay = self.layout
        if window.unit == "text":
            return []
        if window.unit in ("sentence", "paragraph"):
            unit = lay.sentence if window.unit == "sentence" else lay.paragraph
            marked = {unit(b.start) for b in bad}
            return [h for h in hits if unit(h.start) not in marked]
        spots: dict[int, list[int]] = {}
        for b in bad:
            spots.setdefault(lay.paragraph(b.start), []).append(lay.word(b.start))
        for words in spots.values():
            words.sort()
        kept = []
        for h in hits:
            near_words = spots.get(lay.paragraph(h.start))
            if near_words:
                w = lay.word(h.start)
                i = bisect_left(near_words, w - window.size)
                if i < len(near_words) and near_words[i] <= w + window.size:
                    continue
            kept.append(h)
        return kept

    def in_where(self, hit: Hit, where: str) -> bool:
        zone = self.layout.zone(hit.start)
        return where == "text" or zone == "title" or (where == "lead" and zone == "lead")


def _witness(ctx: _Context, groups: list[list[Hit]], mins: list[int], window: Window) -> set[Hit]:
    """Hits that take part in some window holding ``min`` hits of every group."""
    if any(len(g) < m for g, m in zip(groups, mins, strict=True)):
        return set()
    if window.unit == "text":
        return {h for g in groups for h in g}
    if window.unit in ("sentence", "paragraph"):
        unit = ctx.layout.sentence if window.unit == "sentence" else ctx.layout.paragraph
        counts: dict[int, list[int]] = {}
        for gi, g in enumerate(groups):
            for h in g:
                counts.setdefault(unit(h.start), [0] * len(groups))[gi] += 1
        good = {u for u, c in counts.items() if all(n >= m for n, m in zip(c, mins, strict=True))}
        return {h for g in groups for h in g if unit(h.start) in good}
    lay = ctx.layout
    events = sorted(((lay.paragraph(h.start), lay.word(h.start), gi, h)
                     for gi, g in enumerate(groups) for h in g),
                    key=lambda e: (e[0], e[1], e[2], e[3].start, e[3].end))
    have = [0] * len(groups)
    found: set[Hit] = set()
    left = 0
    for right, (p_right, w_right, g_right, _) in enumerate(events):
        have[g_right] += 1
        while events[left][0] != p_right or events[left][1] < w_right - window.size:
            have[events[left][2]] -= 1
            left += 1
        while have[events[left][2]] > mins[events[left][2]]:
            have[events[left][2]] -= 1
            left += 1
        if all(n >= m for n, m in zip(have, mins, strict=True)):
            found.update(e[3] for e in events[left:right + 1])
    return found


def _fire(ctx: _Context, rule: Rule, hits: list[list[Hit]], any_hits: list[list[Hit]]
          ) -> tuple[float, set[Hit]]:
    """(factor, reported hits) when the rule fires on these hits, else (0, empty)."""
    if any(len(h) < g.min for h, g in zip(any_hits, rule.anywhere, strict=True)):
        return 0.0, set()
    if rule.weighted:
        total, counted = 0.0, set()
        for wg, g_hits in zip(rule.weighted, hits, strict=True):
            distinct: dict[object, Hit] = {}
            for h in g_hits:
                key = (h.start, h.end) if wg.group.signal else h.term
                if key not in distinct or ctx.factor(h) > ctx.factor(distinct[key]):
                    distinct[key] = h
            chosen = sorted(distinct.values(), key=lambda h: -ctx.factor(h))[: wg.cap]
            total += wg.weight * len(chosen)
            counted.update(chosen)
        if not counted or total < max(rule.min, 1e-9):
            return 0.0, set()
        return max(ctx.factor(h) for h in counted), counted
    mins = [g.min for g in rule.all]
    reported = _witness(ctx, hits, mins, rule.within)
    if not reported:
        return 0.0, set()
    for level in sorted(set(ctx.factors.values()), reverse=True):
        if level <= 1.0:
            break
        top = [[h for h in g if ctx.factor(h) >= level] for g in hits]
        if _witness(ctx, top, mins, rule.within):
            return level, reported
    return 1.0, reported


def _evaluate_rule(ctx: _Context, rule: Rule) -> tuple[_Outcome | None, list[Contribution],
                                                        list[tuple[str, Hit]]]:
    groups = list(rule.all) or [wg.group for wg in rule.weighted]
    hits = [[h for h in ctx.hits(g) if ctx.in_where(h, rule.where)] for g in groups]
    any_hits = [[h for h in ctx.hits(g) if ctx.in_where(h, rule.where)] for g in rule.anywhere]
    base_factor, _ = _fire(ctx, rule, hits, any_hits)
    negatives: list[Contribution] = []
    neg_hits: list[tuple[str, Hit]] = []
    cancels = [c for c in rule.not_ if c.effect == "cancel"]
    for clause in cancels:
        bad = ctx.negatives(clause)
        if len(bad) < clause.group.min:
            continue
        hits = [ctx.far_from(h, bad, clause.within) if clause.applies_to(g) else h
                for g, h in zip(groups, hits, strict=True)]
        any_hits = [ctx.far_from(h, bad, clause.within) if clause.applies_to(g) else h
                    for g, h in zip(rule.anywhere, any_hits, strict=True)]
    factor, reported = _fire(ctx, rule, hits, any_hits)
    if base_factor and factor < base_factor:
        lost = rule.weight * (factor - base_factor)
        bad_terms = _sample(ctx, [b for c in cancels for b in ctx.negatives(c)])
        negatives.append(Contribution(
            f"{rule.id}/not", lost,
            f"{rule.id} {'cancelled' if not factor else 'weakened'} by nearby {bad_terms}"))
        neg_hits += [(f"{rule.id}/not", b) for c in cancels for b in ctx.negatives(c)][:10]
    if not factor:
        return None, negatives, neg_hits
    tagged = [(g.label, h) for g, g_hits in zip(groups, hits, strict=True) for h in g_hits
              if h in reported]
    tagged += [(g.label, h) for g, g_hits in zip(rule.anywhere, any_hits, strict=True)
               for h in g_hits[:3]]
    outcome = _Outcome(rule, rule.weight * factor, factor, tagged, _reason(ctx, rule, factor, tagged))
    for clause in rule.not_:
        if clause.effect == "lower" and _lowers(ctx, clause, [h for _, h in tagged]):
            bad = ctx.negatives(clause)
            negatives.append(Contribution(
                f"{rule.id}/not:{clause.group.label}", -clause.weight,
                f"{rule.id} lowered by {_sample(ctx, bad)} {clause.within.describe()}"))
            neg_hits += [(f"{rule.id}/not:{clause.group.label}", b) for b in bad[:10]]
    return outcome, negatives, neg_hits


def _lowers(ctx: _Context, clause: NotClause, hits: list[Hit]) -> bool:
    bad = ctx.negatives(clause)
    if len(bad) < clause.group.min:
        return False
    return len(ctx.far_from(hits, bad, clause.within)) < len(hits)


def _surface(ctx: _Context, hit: Hit) -> str:
    start, end = ctx.layout.norm.span(hit.start, hit.end)
    return ctx.layout.norm.original[start:end]


def _sample(ctx: _Context, hits: list[Hit], n: int = 3) -> str:
    seen: list[str] = []
    for h in hits:
        s = _surface(ctx, h).strip()
        if s and s not in seen:
            seen.append(s)
    return ", ".join(f"'{s}'" for s in seen[:n]) or "nothing"


def _reason(ctx: _Context, rule: Rule, factor: float, tagged: list[tuple[str, Hit]]) -> str:
    where = ""
    if factor == ctx.rs.title_weight and factor > 1:
        where = f", in the title (x{factor:g})"
    elif factor > 1:
        where = f", in the lead (x{factor:g})"
    what = rule.description or rule.id
    if rule.weighted:
        shape = "weighted hits"
    else:
        shape = " + ".join(g.label for g in rule.all) + " " + rule.within.describe()
    return f"{what} [{shape}{where}]: {_sample(ctx, [h for _, h in tagged], 4)}"


def evaluate(ruleset: RuleSet, title: str | None, text: str, lang: str) -> Verdict:
    """Score a story. Offsets in the Verdict refer to ``scored_text(title, text)``."""
    scored = scored_text(title, text)
    norm = normalize(scored)
    title_chars = len(title) if title and title.strip() else 0
    layout = Layout.build(norm, title_chars, ruleset.lead_paragraphs, ruleset.lead_min_words)
    ctx = _Context(ruleset, layout, ruleset.languages_for(lang))
    contributions: list[Contribution] = []
    negatives: list[Contribution] = []
    tagged: list[tuple[str, Hit]] = []
    fired: set[str] = set()
    for rule in ruleset.rules:
        outcome, negs, neg_hits = _evaluate_rule(ctx, rule)
        negatives += negs
        tagged += neg_hits
        if outcome is not None:
            fired.add(rule.id)
            contributions.append(Contribution(rule.id, outcome.points, outcome.reason))
            if outcome.points < 0:
                negatives.append(Contribution(rule.id, outcome.points, outcome.reason))
            tagged += [(f"{rule.id}/{lab}", h) for lab, h in outcome.hits][:_MAX_MATCHES_PER_RULE]
    contributions += [n for n in negatives if "/not:" in n.rule]
    evidence = sum(c.weight for c in contributions if c.weight > 0)
    if ruleset.evidence_cap is not None:
        evidence = min(evidence, ruleset.evidence_cap)
    points = evidence + sum(c.weight for c in contributions if c.weight < 0)
    score = min(1.0, max(0.0, points / ruleset.full_score))
    required_ok = not ruleset.require or any(r in fired for r in ruleset.require)
    flagged = score >= ruleset.threshold and required_ok
    narratives: list[str] = []
    if flagged:
        for narrative in ruleset.narratives:
            hits = ctx.hits(narrative.group)
            if len({h.term for h in hits}) >= narrative.min:
                narratives.append(narrative.name)
                tagged += [(f"narrative:{narrative.name}", h) for h in hits[:5]]
    matches = _matches(ctx, tagged)
    explanation = _explain(ruleset, flagged, score, points, contributions, negatives, required_ok)
    return Verdict(flagged, score, lang, ruleset.version, matches, tuple(contributions),
                   tuple(negatives), tuple(narratives), explanation)


def _matches(ctx: _Context, tagged: list[tuple[str, Hit]]) -> tuple[Match, ...]:
    out: dict[tuple[str, int, int], Match] = {}
    norm = ctx.layout.norm
    for rule, hit in tagged:
        start, end = norm.span(hit.start, hit.end)
        out.setdefault((rule, start, end), Match(hit.term, rule, start, end, norm.original[start:end]))
    return tuple(sorted(out.values(), key=lambda m: (m.start, m.end, m.rule)))


def _explain(rs: RuleSet, flagged: bool, score: float, points: float,
             contributions: list[Contribution], negatives: list[Contribution],
             required_ok: bool) -> str:
    capped = ""
    evidence = sum(c.weight for c in contributions if c.weight > 0)
    if rs.evidence_cap is not None and evidence > rs.evidence_cap:
        capped = f", evidence {evidence:.2f} counted as {rs.evidence_cap:g}"
    head = (f"{'flagged' if flagged else 'not flagged'}: score {score:.2f} "
            f"({'>=' if score >= rs.threshold else '<'} threshold {rs.threshold:.2f}; "
            f"{points:.2f} of {rs.full_score:g} points{capped})")
    parts = [f"{c.rule} {c.weight:+.2f}" for c in contributions]
    parts += [f"{n.rule} {n.weight:+.2f} (cancelled)" for n in negatives if n.rule.endswith("/not")]
    tail = f"; {', '.join(parts)}" if parts else "; no rule fired"
    if not required_ok:
        tail += f"; none of the required rules fired ({', '.join(rs.require)})"
    return head + tail
