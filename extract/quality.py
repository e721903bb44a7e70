"""Filter quality on a labelled corpus: precision and recall per language and overall.

The corpus is YAML (tests/fixtures/corpus/<lang>.yaml): a list of items with id, lang,
label (defector | negative | ordinary), kind, title and text. A "defector" item should be
flagged; everything else should not. Used by the CI gate (tests/extract/test_filter_quality.py)
and by `python bench/filter_quality.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from extract.analysis import analyse_text
from extract.rules import evaluate
from extract.rules_model import RuleSet

__all__ = [
    "CorpusItem",
    "LanguageScore",
    "QualityReport",
    "below_floors",
    "format_report",
    "load_corpus",
    "score_corpus",
]

LABELS = ("defector", "negative", "ordinary")


@dataclass(frozen=True)
class CorpusItem:
    id: str
    lang: str
    label: str
    kind: str
    title: str
    text: str

    @property
    def positive(self) -> bool:
        return self.label == "defector"


@dataclass
class LanguageScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, positive: bool, flagged: bool) -> None:
        if positive and flagged:
            self.tp += 1
        elif positive:
            self.fn += 1
        elif flagged:
            self.fp += 1
        else:
            self.tn += 1


@dataclass
class QualityReport:
    rules_version: str
    overall: LanguageScore = field(default_factory=LanguageScore)
    by_language: dict[str, LanguageScore] = field(default_factory=dict)
    false_positives_by_kind: Counter[str] = field(default_factory=Counter)
    missed: list[str] = field(default_factory=list)            # ids of unflagged defector stories
    false_positives: list[str] = field(default_factory=list)   # ids of flagged non-defector stories


def load_corpus(directory: Path) -> list[CorpusItem]:
    """Every item of every *.yaml file in `directory`; a malformed item is a ValueError naming it."""
    items: list[CorpusItem] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            continue  # baseline or notes, not a story list
        for index, raw in enumerate(data):
            where = f"{path.name} item {index + 1}"
            if not isinstance(raw, dict):
                raise ValueError(f"{where}: expected a mapping with id, lang, label, kind, title, text")
            missing = [k for k in ("id", "lang", "label", "kind", "title", "text") if k not in raw]
            if missing:
                raise ValueError(f"{where} ({raw.get('id')}): missing {', '.join(missing)}")
            if raw["label"] not in LABELS:
                raise ValueError(f"{where} ({raw['id']}): label {raw['label']!r} is not one of {LABELS}")
            if raw["id"] in seen:
                raise ValueError(f"{where}: duplicate id {raw['id']!r}")
            seen.add(raw["id"])
            items.append(CorpusItem(str(raw["id"]), str(raw["lang"]), str(raw["label"]),
                                    str(raw["kind"]), str(raw["title"]), str(raw["text"])))
    return items


def _flagged_as_classified(ruleset: RuleSet, item: CorpusItem) -> bool:
    """The verdict `dwatch classify` gives the item saved as a .txt file (headline, blank line, text)."""
    analysis = analyse_text(f"{item.title}\n\n{item.text}", None, ruleset, find_headline=True)
    return bool(analysis.verdict and analysis.verdict.flagged)


def score_corpus(
    ruleset: RuleSet, items: Iterable[CorpusItem], *, as_classified: bool = False
) -> QualityReport:
    """Evaluate every item with the item's own language.

    `as_classified`: evaluate it as `dwatch classify` would a saved .txt file instead: the
    headline found in the text, the language detected by langdetect.
    """
    report = QualityReport(rules_version=ruleset.version)
    for item in items:
        if as_classified:
            flagged = _flagged_as_classified(ruleset, item)
        else:
            flagged = evaluate(ruleset, item.title, item.text, item.lang).flagged
        report.overall.add(item.positive, flagged)
        report.by_language.setdefault(item.lang, LanguageScore()).add(item.positive, flagged)
        if item.positive and not flagged:
            report.missed.append(item.id)
        elif flagged and not item.positive:
            report.false_positives.append(item.id)
            report.false_positives_by_kind[item.kind] += 1
    return report


def _row(name: str, s: LanguageScore) -> str:
    return (f"{name:<8} {s.tp + s.fn:>4} {s.fp + s.tn:>5} {s.tp:>4} {s.fp:>4} {s.fn:>4} "
            f"{s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f}")


def format_report(report: QualityReport, *, details: bool = True) -> str:
    lines = [f"filter quality, rules {report.rules_version}",
             f"{'lang':<8} {'pos':>4} {'neg':>5} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} "
             f"{'recall':>7} {'f1':>6}"]
    lines += [_row(lang, report.by_language[lang]) for lang in sorted(report.by_language)]
    lines.append(_row("overall", report.overall))
    if details:
        if report.false_positives_by_kind:
            kinds = ", ".join(f"{k} {n}" for k, n in report.false_positives_by_kind.most_common())
            lines.append(f"false positives by kind: {kinds}")
        lines.append(f"missed: {', '.join(report.missed) or '-'}")
        lines.append(f"false positives: {', '.join(report.false_positives) or '-'}")
    return "\n".join(lines)


def below_floors(report: QualityReport, floors: dict[str, dict[str, float]]) -> Sequence[str]:
    """Every metric under its pinned floor, as readable lines (empty when all hold)."""
    problems = []
    scores = {"overall": report.overall, **report.by_language}
    for name, floor in floors.items():
        score = scores.get(name)
        if score is None:
            problems.append(f"{name}: no items in the corpus")
            continue
        for metric in ("precision", "recall"):
            value = getattr(score, metric)
            if metric in floor and value < floor[metric] - 1e-9:
                problems.append(f"{name} {metric} {value:.3f} < floor {floor[metric]:.3f}")
    return problems
