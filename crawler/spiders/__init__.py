"""Spiders, one class per source kind. Spiders only discover and fetch; parsing is extract/'s."""

from __future__ import annotations

from crawler.spiders.base import SourceSpider
from crawler.spiders.feeds import FeedSpider
from crawler.spiders.listings import ListingSpider
from crawler.spiders.sitemaps import SitemapSpider

SPIDERS_BY_KIND: dict[str, type[SourceSpider]] = {
    "feed": FeedSpider,
    "sitemap": SitemapSpider,
    "listing": ListingSpider,
}

__all__ = ["SPIDERS_BY_KIND", "FeedSpider", "ListingSpider", "SitemapSpider", "SourceSpider"]
