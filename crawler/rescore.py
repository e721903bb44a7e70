"""`rescore`: re-analyse every archived page with the current rules, without any network.

After a change to rules.yaml, each stored document whose raw response is in the WARC
archive is read back, run through `extract.analyse_page` again and updated in the store
(`store.queue.update_analysis`): pages may become candidates or stop being ones. Pages
that failed to download (no archived response, or an HTTP error page) are left alone.

The prefilter is off here: a rescore is offline and rare, so every archived page gets a full
analysis (text, language, verdict), including pages the crawl-time prefilter skipped.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from crawler.recording import page_record
from crawler.runner import load_ruleset, open_store

if TYPE_CHECKING:
    from config import Settings
    from extract import PageAnalysis
    from store.records import Provenance

logger = logging.getLogger(__name__)

__all__ = ["RescoreSummary", "rescore"]

@dataclass(frozen=True)
class RescoreSummary:
    rules_version: str
    documents: int = 0        # archived pages re-analysed
    newly_flagged: int = 0    # flagged now, not before
    unflagged: int = 0        # flagged before, not now
    changed: int = 0          # pages whose flag or score changed
    errors: int = 0           # pages that could not be read back or updated
    first_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rescored_provenance(provenance: Provenance, analysis: PageAnalysis, rules_version: str) -> Provenance:
    article = analysis.article
    return replace(
        provenance,
        rules_version=rules_version,
        extractor=article.extractor if article is not None else provenance.extractor,
        extractor_version=article.extractor_version if article is not None else provenance.extractor_version,
    )


def rescore(settings: Settings) -> RescoreSummary:
    """Re-run analyse_page on every archived document with the rules in settings.rules_path."""
    from extract import analyse_page
    from store import StoreError, WarcArchive, make_session_factory, queue

    ruleset = load_ruleset(settings)
    engine = open_store(settings)
    archive = WarcArchive(settings.archive_dir)
    counts = {"documents": 0, "newly_flagged": 0, "unflagged": 0, "changed": 0, "errors": 0}
    first_error: str | None = None
    try:
        with make_session_factory(engine)() as session:
            # iter_documents_for_rescore reads in id batches, so updating between items is safe
            for item in queue.iter_documents_for_rescore(session):
                status = item.provenance.http_status
                if status is None or status >= 400:
                    continue   # an error page: nothing to analyse
                try:
                    archived = archive.read(item.archive)
                    analysis = analyse_page(
                        archived.body, archived.url, archived.header("Content-Type"), ruleset,
                        use_prefilter=False,
                    )
                    provenance = _rescored_provenance(item.provenance, analysis, ruleset.version)
                    record = page_record(provenance, analysis)
                    queue.update_analysis(session, item.document_id, record)
                except StoreError as exc:
                    counts["errors"] += 1
                    message = f"document {item.document_id} ({item.provenance.final_url}): {exc}"
                    first_error = first_error or message
                    logger.warning("rescore: %s", message)
                    continue
                counts["documents"] += 1
                was_flagged = item.flagged
                if record.flagged and not was_flagged:
                    counts["newly_flagged"] += 1
                elif was_flagged and not record.flagged:
                    counts["unflagged"] += 1
                old_score = item.score if item.score is not None else -1.0
                new_score = record.score if record.score is not None else -1.0
                if record.flagged != was_flagged or abs(new_score - old_score) > 1e-6:
                    counts["changed"] += 1
    finally:
        engine.dispose()
    return RescoreSummary(rules_version=ruleset.version, first_error=first_error, **counts)
