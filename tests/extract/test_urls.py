from __future__ import annotations

import re

import pytest

from extract import InvalidURLError, canonicalize_url, same_site


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        # scheme and host lower-case, default port dropped, fragment dropped, query sorted
        ("HTTPS://News.Example.COM:443/World/Story?b=2&a=1#comments", "https://news.example.com/World/Story?a=1&b=2"),
        ("http://example.org:80", "http://example.org/"),
        ("http://example.org:8080/a", "http://example.org:8080/a"),
        ("https://example.org:80/a", "https://example.org:80/a"),
        # tracking parameters removed, others kept (case-insensitive names)
        (
            "https://example.org/a?utm_source=rss&UTM_Medium=feed&id=7&fbclid=x&gclid=y&dclid=z",
            "https://example.org/a?id=7",
        ),
        (
            "https://example.org/a?msclkid=1&mc_cid=2&mc_eid=3&igshid=4&yclid=5&_ga=6&ref_src=twsrc",
            "https://example.org/a",
        ),
        ("https://example.org/a?cmpid=1&ocid=2&at_medium=3&at_campaign=4&page=2", "https://example.org/a?page=2"),
        # blank values kept; a query emptied of trackers leaves no "?"
        ("https://example.org/search?q=&lang=ar", "https://example.org/search?lang=ar&q="),
        ("https://example.org/a?utm_campaign=x", "https://example.org/a"),
        # IDNA host, percent-encoding normalised
        ("https://bücher.example/ü?q=ä", "https://xn--bcher-kva.example/%C3%BC?q=%C3%A4"),
        ("https://example.org/%7euser/a%2fb", "https://example.org/~user/a%2Fb"),
        # trailing dot of a fully qualified host, user info and IPv6 kept sane
        ("http://Example.org./p", "http://example.org/p"),
        ("http://[2001:DB8::1]:80/p", "http://[2001:db8::1]/p"),
    ],
)
def test_canonicalize_url(url: str, canonical: str) -> None:
    assert canonicalize_url(url) == canonical


def test_canonical_form_is_stable() -> None:
    url = "HTTPS://Example.COM:443/a b/?z=1&utm_source=x&a=%20#frag"
    once = canonicalize_url(url)
    assert canonicalize_url(once) == once


def test_same_story_spellings_collapse() -> None:
    spellings = [
        "https://dispatch.example.org/world/story-1?utm_source=twitter",
        "HTTPS://DISPATCH.example.org:443/world/story-1#top",
        "https://dispatch.example.org/world/story-1?fbclid=abc&utm_medium=social",
    ]
    assert {canonicalize_url(u) for u in spellings} == {"https://dispatch.example.org/world/story-1"}


def test_path_case_and_unknown_parameters_are_kept() -> None:
    # these may name different pages: never merged
    assert canonicalize_url("https://example.org/Story") != canonicalize_url("https://example.org/story")
    assert canonicalize_url("https://example.org/a?id=1") != canonicalize_url("https://example.org/a?id=2")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty URL"),
        ("   ", "empty URL"),
        ("/world/story", "no http(s) scheme"),
        ("mailto:desk@example.org", "not an http(s) URL"),
        ("javascript:void(0)", "not an http(s) URL"),
        ("http://", "no host name"),
        ("http://example.org:99999/", "malformed port"),
    ],
)
def test_invalid_urls_raise_a_clear_error(url: str, problem: str) -> None:
    with pytest.raises(InvalidURLError, match=re.escape(problem)):
        canonicalize_url(url)


def test_invalid_url_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        canonicalize_url("ftp://files.example.org/a")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://www.example.org/a", "http://EXAMPLE.org/b", True),
        ("https://example.org/a", "https://example.org:8443/b", True),
        ("https://news.example.org/a", "https://example.org/a", False),
        ("https://example.org/a", "https://example.net/a", False),
        ("https://bücher.example/a", "https://www.xn--bcher-kva.example/b", True),
        ("/relative", "/relative", False),
    ],
)
def test_same_site(a: str, b: str, same: bool) -> None:
    assert same_site(a, b) is same
