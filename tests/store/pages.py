"""Builders of the records the crawler hands the store, for the store tests."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from store.records import ArchiveRef, PageRecord, Provenance

MakePage = Callable[..., PageRecord]

FETCHED = datetime(2024, 5, 2, 8, 30, tzinfo=UTC)


def signature(seed: int, *, same_as: tuple[int, ...] | None = None, changed: int = 0) -> tuple[
    int, ...
]:
    """A 64-value MinHash-like signature; ``same_as`` with ``changed`` values altered."""
    if same_as is None:
        return tuple(seed * 1000 + i for i in range(64))
    return tuple(v + 7_000_000 if i < changed else v for i, v in enumerate(same_as))


def bands(sig: tuple[int, ...], rows: int = 4) -> tuple[str, ...]:
    """LSH-style band keys: one per run of ``rows`` values (the store only compares keys)."""
    return tuple(
        f"{i:02d}:" + "-".join(str(v) for v in sig[i * rows : (i + 1) * rows])
        for i in range(len(sig) // rows)
    )


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def verdict(score: float, *, flagged: bool = True, term: str = "defected") -> dict[str, Any]:
    return {
        "flagged": flagged,
        "score": score,
        "lang": "en",
        "rules_version": "rules-1",
        "matches": [{"term": term, "rule": "defection", "start": 10, "end": 18, "text": term}]
        if flagged
        else [],
        "contributions": [],
        "negatives": [],
        "narratives": ["disillusionment"] if flagged else [],
        "explanation": "defection term near IS reference" if flagged else "",
    }


def make_page(url: str, **overrides: Any) -> PageRecord:
    outcome = overrides.pop("outcome", "extracted")
    flagged = overrides.pop("flagged", outcome == "extracted")
    text = overrides.pop("text", f"Body of {url}: he defected from the Islamic State.")
    sig = overrides.pop("minhash", signature(zlib.crc32(url.encode()) % 10_000))
    provenance = Provenance(
        source_id=overrides.pop("source_id", "example-news"),
        channel=overrides.pop("channel", "feed"),
        discovered_from=overrides.pop("discovered_from", "https://example.org/feed.xml"),
        entry_id=overrides.pop("entry_id", f"guid:{url}"),
        entry_title=overrides.pop("entry_title", f"Entry {url}"),
        entry_published=overrides.pop("entry_published", FETCHED),
        requested_url=overrides.pop("requested_url", url),
        final_url=overrides.pop("final_url", url),
        canonical_url=overrides.pop("canonical_url", url),
        http_status=overrides.pop("http_status", 200),
        fetched_at=overrides.pop("fetched_at", FETCHED),
        body_sha256=overrides.pop("body_sha256", "b" * 64),
        archive=overrides.pop(
            "archive", ArchiveRef("dwatch-x.warc.gz", 100, 2000, f"<urn:uuid:{url}>")
        ),
        extractor=overrides.pop("extractor", "trafilatura" if outcome == "extracted" else None),
        extractor_version=overrides.pop(
            "extractor_version", "2.3.1" if outcome == "extracted" else None
        ),
        rules_version=overrides.pop("rules_version", "rules-1"),
        run_id=overrides.pop("run_id", None),
    )
    extracted = outcome == "extracted"
    record = PageRecord(
        provenance=provenance,
        outcome=outcome,
        reason=overrides.pop("reason", None),
        detail=overrides.pop("detail", None),
        title=overrides.pop("title", f"Title of {url}" if extracted else None),
        author=overrides.pop("author", None),
        published=overrides.pop("published", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        sitename=overrides.pop("sitename", "Example News" if extracted else None),
        text=text if extracted else None,
        lang=overrides.pop("lang", "en" if extracted else None),
        text_sha256=overrides.pop("text_sha256", sha256_hex(text)) if extracted else None,
        minhash=sig if extracted else (),
        minhash_bands=overrides.pop("minhash_bands", bands(sig)) if extracted else (),
        flagged=flagged,
        score=overrides.pop("score", 0.8 if flagged else 0.1) if extracted else None,
        verdict=overrides.pop("verdict", verdict(0.8, flagged=flagged)) if extracted else None,
        narratives=tuple(overrides.pop("narratives", ("disillusionment",) if flagged else ())),
    )
    if overrides:
        record = replace(record, **overrides)
    return record

