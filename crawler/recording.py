"""From a fetched (or re-read) page and its analysis to the store's `Provenance` / `PageRecord`.

Shared by the store pipeline (live crawls) and `crawler.rescore` (archived pages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.fingerprint import canonical_or_none
from store import PageRecord, Provenance

if TYPE_CHECKING:
    from crawler.items import FetchedPage
    from extract import PageAnalysis

__all__ = ["canonical_url_of", "page_record", "provenance_of"]


def provenance_of(page: FetchedPage, *, rules_version: str | None, run_id: int | None) -> Provenance:
    """Every provenance field of one fetched page (extractor fields come from its analysis)."""
    discovery = page.discovery
    article = page.analysis.article if page.analysis is not None else None
    return Provenance(
        source_id=discovery.source_id,
        channel=discovery.channel,
        discovered_from=discovery.discovered_from,
        entry_id=discovery.entry_id,
        entry_title=discovery.entry_title,
        entry_published=discovery.entry_published,
        requested_url=page.requested_url,
        final_url=page.final_url,
        canonical_url=canonical_url_of(page),
        http_status=page.status,
        fetched_at=page.fetched_at,
        body_sha256=page.body_sha256,
        archive=page.archive,
        extractor=article.extractor if article is not None else None,
        extractor_version=article.extractor_version if article is not None else None,
        rules_version=rules_version if page.analysis is not None else None,
        run_id=run_id,
        method=discovery.method,
    )


def canonical_url_of(page: FetchedPage) -> str:
    """The URL a page is stored under: the article's own URL (``Discovery.url``, for captures
    such as a Wayback replay), else the final URL after redirects, else the requested one."""
    own = page.discovery.url
    if own is not None:
        return canonical_or_none(own) or own
    return canonical_or_none(page.final_url) or canonical_or_none(page.requested_url) or page.final_url


def page_record(
    provenance: Provenance,
    analysis: PageAnalysis | None,
    *,
    failure: tuple[str, str | None] | None = None,
) -> PageRecord:
    """The record of one page: failed (reason, detail), skipped, or extracted with its verdict."""
    if failure is not None or analysis is None:
        reason, detail = failure if failure is not None else ("fetch_error", "no analysis")
        return PageRecord(provenance=provenance, outcome="failed", reason=reason, detail=detail)
    article, verdict = analysis.article, analysis.verdict
    skip = analysis.skip
    return PageRecord(
        provenance=provenance,
        outcome="extracted" if analysis.outcome == "extracted" else "skipped",
        reason=skip.reason if skip is not None else None,
        detail=(skip.detail or None) if skip is not None else None,
        title=article.title if article is not None else None,
        author=article.author if article is not None else None,
        published=article.published if article is not None else None,
        sitename=article.sitename if article is not None else None,
        text=article.text if article is not None else None,
        lang=analysis.lang.lang if analysis.lang is not None else None,
        text_sha256=analysis.text_sha256,
        minhash=analysis.minhash,
        minhash_bands=analysis.minhash_bands,
        flagged=verdict.flagged if verdict is not None else False,
        score=verdict.score if verdict is not None else None,
        verdict=verdict.to_dict() if verdict is not None else None,
        narratives=verdict.narratives if verdict is not None else (),
    )
