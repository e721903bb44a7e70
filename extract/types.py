"""Frozen records that cross package boundaries (contract shared by crawler/, store/, cli.py).

Everything in extract/ is pure: bytes or str in, these records out. No network, no
database, no Scrapy, nothing of the project outside extract/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# ---------------------------------------------------------------- feeds & sitemaps


@dataclass(frozen=True)
class FeedEntry:
    """One item of an RSS/Atom/RDF/JSON feed (parsed by feedparser)."""

    link: str                      # absolute article URL as given (not canonicalised)
    entry_id: str | None           # guid / atom:id
    title: str | None
    published: datetime | None     # tz-aware UTC, or None
    summary: str | None = None


FeedProblem = Literal["not_a_feed", "malformed", "empty"]


@dataclass(frozen=True)
class FeedResult:
    entries: tuple[FeedEntry, ...]
    feed_title: str | None
    bozo: bool                             # feedparser flagged the document as malformed
    problem: FeedProblem | None = None     # set when nothing usable came out
    detail: str | None = None              # human-readable reason (feedparser's bozo_exception)


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    lastmod: datetime | None = None                 # tz-aware UTC
    news_publication_date: datetime | None = None   # Google News <news:publication_date>
    news_title: str | None = None


@dataclass(frozen=True)
class SitemapResult:
    kind: Literal["urlset", "sitemapindex", "text", "invalid"]
    entries: tuple[SitemapEntry, ...]   # for a sitemapindex: the child sitemaps
    detail: str | None = None


# ---------------------------------------------------------------- articles

SkipReason = Literal[
    "not_html",          # binary / non-HTML content type or body
    "empty",             # empty body
    "too_short",         # extracted text under the minimum length
    "no_article",        # trafilatura found no main text
    "prefiltered",       # the recall-safe prefilter proved no rule can match
    "wrong_language",    # language not among the source's expected languages (recorded, still scored)
    "http_error",        # 4xx/5xx
    "fetch_error",       # DNS, refused, timeout, reset, too large
    "extraction_error",  # the extractor raised
]


@dataclass(frozen=True)
class Article:
    url: str
    title: str | None
    author: str | None
    published: datetime | None
    sitename: str | None
    text: str
    extractor: str            # "trafilatura"
    extractor_version: str    # trafilatura.__version__


@dataclass(frozen=True)
class Skip:
    """A typed 'no article here' outcome. Never a bare None."""

    reason: SkipReason
    detail: str = ""


@dataclass(frozen=True)
class LanguageGuess:
    lang: str          # ISO 639-1 code, "und" when undetermined
    probability: float


# ---------------------------------------------------------------- rules & verdicts


@dataclass(frozen=True)
class Match:
    term: str        # the lexicon term as written in rules.yaml
    rule: str        # id of the rule (or group) it counted for
    start: int       # character offsets into Verdict's analysed text (title + "\n\n" + body)
    end: int
    text: str        # the matched surface text


@dataclass(frozen=True)
class Contribution:
    rule: str
    weight: float    # signed contribution to the raw score (negatives lower it)
    reason: str      # one line a researcher can read


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    score: float                           # in [0, 1]
    lang: str
    rules_version: str
    matches: tuple[Match, ...] = ()
    contributions: tuple[Contribution, ...] = ()
    negatives: tuple[Contribution, ...] = ()   # negative contexts that lowered or cancelled
    narratives: tuple[str, ...] = ()
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "score": round(self.score, 4),
            "lang": self.lang,
            "rules_version": self.rules_version,
            "matches": [m.__dict__ for m in self.matches],
            "contributions": [c.__dict__ for c in self.contributions],
            "negatives": [c.__dict__ for c in self.negatives],
            "narratives": list(self.narratives),
            "explanation": self.explanation,
        }


# ---------------------------------------------------------------- whole-page analysis


@dataclass(frozen=True)
class PageAnalysis:
    """What extract.analyse_page returns for one fetched body."""

    outcome: Literal["extracted", "skipped"]
    article: Article | None
    skip: Skip | None
    lang: LanguageGuess | None
    verdict: Verdict | None              # None when skipped before scoring
    text_sha256: str | None              # sha256 of the normalised body text (verbatim-copy key)
    minhash_bands: tuple[str, ...] = field(default=())   # LSH band keys for near-copies
    minhash: tuple[int, ...] = field(default=())          # the signature itself
