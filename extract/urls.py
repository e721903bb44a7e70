"""URL canonicalisation: one spelling per article, so a re-crawl finds what it stored.

`canonicalize_url` lower-cases the scheme and host, encodes international host names with
IDNA, drops default ports, the fragment and tracking parameters (utm_*, fbclid, gclid, ...),
sorts the remaining query parameters and normalises percent-encoding (w3lib). Everything
else (path case, trailing slashes, parameters we do not know) is kept: two URLs that may
name different pages must not collapse into one.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import SplitResult, unquote_plus, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url as _w3lib_canonicalize

from extract.errors import InvalidURLError

logger = logging.getLogger(__name__)

__all__ = ["TRACKING_PARAMS", "TRACKING_PREFIXES", "canonicalize_url", "same_site", "site_host"]

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameter names (compared case-insensitively) that only say how a reader arrived.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # ad-click ids
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "rb_clickid", "igshid",
        # mail and analytics campaigns
        "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp",
        "hsctatracking", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv",
        "pk_campaign", "pk_kwd", "pk_source", "pk_medium", "pk_content",
        "mtm_campaign", "mtm_kwd", "mtm_source", "mtm_medium", "mtm_content",
        "hmb_campaign", "hmb_medium", "hmb_source", "ns_mchannel", "ns_source", "ns_campaign",
        "ns_linkname", "ns_fee", "xtor", "wt.mc_id", "s_cid",
        # publishers' own referral tags
        "ref_src", "ref_url", "cmpid", "ocid", "icid", "ncid", "smid", "smtyp", "ito",
        "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
        "soc_src", "soc_trk", "sr_share", "__twitter_impression",
        "guccounter", "guce_referrer", "guce_referrer_sig",
    }
)
# Prefixes (lower-case) of tracking parameter families.
TRACKING_PREFIXES: tuple[str, ...] = ("utm_",)

_NON_HTTP = re.compile(r"^(?:mailto|javascript|tel|data|ftp|file|about):", re.IGNORECASE)


def _is_tracking(name: str) -> bool:
    key = unquote_plus(name).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _strip_tracking(query: str) -> str:
    if not query:
        return ""
    kept = [pair for pair in query.split("&") if pair and not _is_tracking(pair.partition("=")[0])]
    return "&".join(kept)


def _split(url: str) -> SplitResult:
    text = url.strip()
    if not text:
        raise InvalidURLError("empty URL: expected an absolute http(s) URL such as https://example.org/a")
    if _NON_HTTP.match(text):
        raise InvalidURLError(f"{url!r} is not an http(s) URL; only web pages can be canonicalised")
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise InvalidURLError(f"{url!r} cannot be parsed as a URL: {exc}") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise InvalidURLError(
            f"{url!r} has no http(s) scheme; resolve relative links against the page URL first"
        )
    if not parts.hostname:
        raise InvalidURLError(f"{url!r} has no host name")
    return parts


def _netloc(parts: SplitResult, scheme: str) -> str:
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"{urlunsplit(parts)!r} has a malformed port: {exc}") from exc
    host = (parts.hostname or "").rstrip(".").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return netloc


def canonicalize_url(url: str) -> str:
    """Return the canonical spelling of an absolute http(s) URL.

    >>> canonicalize_url("HTTPS://Example.COM:443/a?utm_source=x&b=2&a=1#top")
    'https://example.com/a?a=1&b=2'

    Raises InvalidURLError for an empty, relative or non-http(s) URL.
    """
    parts = _split(url)
    scheme = parts.scheme.lower()
    rebuilt = urlunsplit(
        (scheme, _netloc(parts, scheme), parts.path or "/", _strip_tracking(parts.query), "")
    )
    try:
        canonical = _w3lib_canonicalize(rebuilt, keep_blank_values=True, keep_fragments=False)
    except (ValueError, UnicodeError) as exc:
        raise InvalidURLError(f"{url!r} cannot be canonicalised: {exc}") from exc
    # w3lib keeps a bare "?" when every parameter was removed; a URL without a query is the same page
    return canonical[:-1] if canonical.endswith("?") else canonical


def site_host(url: str) -> str:
    """The host of `url`, lower-case, IDNA-encoded, without a leading "www." ("" when none)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""
    if not host:
        return ""
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        logger.debug("host %r is not valid IDNA; comparing it as written", host)
    return host.removeprefix("www.")


def same_site(url_a: str, url_b: str) -> bool:
    """True when both URLs are on the same host, ignoring case and a leading "www.".

    Subdomains other than "www" count as different sites (news.example.org is not
    example.org): that keeps a crawl of one outlet from wandering into its neighbours.
    """
    host_a = site_host(url_a)
    return bool(host_a) and host_a == site_host(url_b)


def absolute_http_url(link: object, base: str) -> str | None:
    """`link` resolved against `base` when that gives an http(s) URL with a host, else None."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return absolute
