"""review.sanitize: archived pages shown inert (no scripts, handlers, remote loads), text kept."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import lxml.html
import pytest

from review.sanitize import ARCHIVE_CSP, decode_html, sanitize_archived_html

BASE = "https://news.example/world/2024/defector.html"
FORBIDDEN_TAGS = {
    "script", "style", "iframe", "object", "embed", "svg", "math", "meta", "link", "base",
    "form", "input", "button", "frame", "template", "noscript", "title", "textarea",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "background", "poster", "srcset",
                  "ping", "xlink:href", "srcdoc", "style"}


def _page(payload: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Site</title></head><body>"
        "<article><h1>I walked out of the caliphate</h1>"
        "<p>A former fighter told us how he <em>defected</em> in 2017. "
        f"<a href='/world/2024/part-2.html'>Read part two</a>.</p>{payload}"
        "<p>He now lives in Gaziantep.</p></article></body></html>"
    ).encode()


def _tree(fragment: str) -> lxml.html.HtmlElement:
    return lxml.html.fragment_fromstring(fragment, create_parent="div")


def _assert_inert(fragment: str) -> None:
    """No dangerous element or attribute of any kind, every link and image harmless."""
    root = _tree(fragment)
    for element in root.iter():
        if not isinstance(element.tag, str):      # comments / processing instructions
            raise AssertionError(f"non-element node in output: {element!r}")
        assert element.tag not in FORBIDDEN_TAGS, fragment
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (name, value)
            if name == "href":
                assert value.split(":", 1)[0] in ("http", "https", "mailto"), value
            elif name == "src":
                assert element.tag == "img" and value.startswith("data:image/"), value
            else:
                assert name not in URL_ATTRIBUTES, (name, value)


def _assert_article_survives(fragment: str) -> None:
    root = _tree(fragment)
    text = " ".join(root.text_content().split())
    assert "I walked out of the caliphate" in text
    assert "A former fighter told us how he defected in 2017." in text
    assert "He now lives in Gaziantep." in text
    links = [(a.get("href"), a.get("rel"), a.text_content()) for a in root.iter("a")]
    assert ("https://news.example/world/2024/part-2.html", "noopener noreferrer nofollow",
            "Read part two") in links
    assert [e.text for e in root.iter("em")] == ["defected"]


def _no_tag(tag: str) -> Callable[[str], None]:
    def check(fragment: str) -> None:
        assert [e.tag for e in _tree(fragment).iter(tag)] == []
    return check


def _no_text(*needles: str) -> Callable[[str], None]:
    def check(fragment: str) -> None:
        for needle in needles:
            assert needle not in fragment
    return check


def _no_href_to(text: str) -> Callable[[str], None]:
    def check(fragment: str) -> None:
        root = _tree(fragment)
        hrefs = [a.get("href") for a in root.iter("a") if a.text_content() == text]
        assert hrefs and set(hrefs) == {None}
    return check


HOSTILE = {
    "script": ("<script>alert('x')</script>", _no_text("alert", "<script")),
    "img onerror": ("<img src=x onerror=\"alert('x')\">", _no_text("onerror", "alert")),
    "javascript link": ("<a href=\"javascript:alert('x')\">go</a>", _no_href_to("go")),
    "mixed-case javascript link": ("<a href=\"JaVaScRiPt:alert('x')\">go</a>", _no_href_to("go")),
    "entity-encoded javascript": ("<a href=\"&#106;avascript&#58;alert('x')\">go</a>",
                                  _no_href_to("go")),
    "tab-split javascript": ("<a href=\"java\tscript:alert('x')\">go</a>", _no_href_to("go")),
    "svg onload": ("<svg onload=\"alert('x')\"><text>vector</text></svg>",
                   _no_text("onload", "alert", "vector")),
    "iframe srcdoc": ("<iframe srcdoc=\"&lt;script&gt;alert('x')&lt;/script&gt;\">frame</iframe>",
                      _no_text("srcdoc", "alert", "frame")),
    "meta refresh": ("<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
                     _no_text("refresh", "evil.example")),
    "base href": ("<base href=\"https://evil.example/\">", _no_text("evil.example")),
    "style import": ("<style>@import url(//evil.example/x.css); p{color:red}</style>",
                     _no_text("@import", "evil.example", "color")),
    "link stylesheet": ("<link rel=\"stylesheet\" href=\"https://evil.example/x.css\">",
                        _no_text("evil.example", "stylesheet")),
    "object data": ("<object data=\"https://evil.example/x.swf\">fallback</object>",
                    _no_text("evil.example", "fallback")),
    "embed": ("<embed src=\"https://evil.example/x.swf\">", _no_text("evil.example")),
    "form action": ("<form action=\"https://evil.example/post\"><input name=\"q\" value=\"v\">"
                    "<button formaction=\"https://evil.example/b\">Send</button></form>",
                    _no_text("evil.example", "<input")),
    "css url in style": ("<p style=\"background:url(https://evil.example/bg.png)\">styled</p>",
                         _no_text("evil.example", "style=")),
    "background attribute": ("<table background=\"https://evil.example/t.png\"><tr><td>cell"
                             "</td></tr></table>", _no_text("evil.example")),
    "data:text/html link": ("<a href=\"data:text/html,&lt;script&gt;alert('x')&lt;/script&gt;\">"
                            "go</a>", _no_href_to("go")),
    "remote tracking image": ("<img src=\"http://127.0.0.1:1/track.gif\" alt=\"pixel\">",
                              _no_text("127.0.0.1", "track.gif")),
    "srcset": ("<img src=\"data:image/png;base64,iVBORw0KGgo=\" srcset=\"https://evil.example/a 2x\""
               " alt=\"chart\">", _no_text("evil.example", "srcset")),
    "math": ("<math><mtext>formula</mtext></math>", _no_text("formula")),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_payload_is_removed_and_the_article_survives(name: str) -> None:
    payload, check = HOSTILE[name]
    out = sanitize_archived_html(_page(payload), content_type="text/html; charset=utf-8",
                                 base_url=BASE)
    check(out)
    _assert_inert(out)
    _assert_article_survives(out)
    assert "javascript" not in out.lower()


def test_every_payload_at_once() -> None:
    out = sanitize_archived_html(_page("".join(p for p, _ in HOSTILE.values())), base_url=BASE)
    for _, check in HOSTILE.values():
        check(out)
    _assert_inert(out)
    _assert_article_survives(out)
    assert "javascript" not in out.lower()
    assert "javascript" not in out.lower()


def test_remote_images_become_their_alt_text_and_inline_images_stay() -> None:
    out = sanitize_archived_html(
        b"<p>Before <img src='http://127.0.0.1:1/track.gif' alt='A man &amp; his <son>'> "
        b"<img src='/pixel.gif'> <img src='data:image/png;base64,iVBORw0KGgo=' alt='map'></p>",
        base_url=BASE,
    )
    assert out == ("<p>Before [A man &amp; his &lt;son&gt;]  "
                   '<img src="data:image/png;base64,iVBORw0KGgo=" alt="map"></p>')


def test_links_are_resolved_against_the_original_page_or_dropped_without_it() -> None:
    body = (b"<p><a href='../2023/older.html'>older</a> <a href='//other.example/x'>other</a> "
            b"<a href='mailto:desk@news.example'>mail</a> <a href='#notes'>notes</a></p>")
    hrefs = [a.get("href") for a in _tree(sanitize_archived_html(body, base_url=BASE)).iter("a")]
    assert hrefs == ["https://news.example/world/2023/older.html", "https://other.example/x",
                     "mailto:desk@news.example", "https://news.example/world/2024/defector.html#notes"]
    # Without the page's URL a relative link would point into our own origin: dropped.
    hrefs = [a.get("href") for a in _tree(sanitize_archived_html(body)).iter("a")]
    assert hrefs == [None, None, "mailto:desk@news.example", None]
    # A base that is not an absolute http(s) URL is not used either.
    out = sanitize_archived_html(body, base_url="javascript:alert(1)//")
    assert [a.get("href") for a in _tree(out).iter("a")] == [None, None, "mailto:desk@news.example",
                                                            None]


def test_structure_and_tables_are_kept() -> None:
    out = sanitize_archived_html(
        b"<section><h2 class='x' id='y'>Numbers</h2><table><thead><tr><th scope='col'>Year</th>"
        b"</tr></thead><tbody><tr><td colspan='2'>2017</td></tr></tbody></table>"
        b"<blockquote cite='https://x.example/'>I left.</blockquote>"
        b"<ul><li>one</li></ul><time datetime='2024-05-01'>1 May</time></section>"
    )
    assert out == (
        '<section><h2>Numbers</h2><table><thead><tr><th scope="col">Year</th></tr></thead>'
        '<tbody><tr><td colspan="2">2017</td></tr></tbody></table><blockquote>I left.</blockquote>'
        '<ul><li>one</li></ul><time datetime="2024-05-01">1 May</time></section>'
    )


ARABIC = "<p>قال المنشق عن تنظيم الدولة إنه هرب من الرقة</p>"
RUSSIAN = "<p>Бывший боевик рассказал, как он бежал из Ракки.</p>"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        # the Content-Type header wins over a wrong <meta>
        (("<meta charset='utf-8'>" + RUSSIAN).encode("cp1251"), "text/html; charset=windows-1251",
         RUSSIAN),
        # no header charset: the <meta> is read
        (("<meta http-equiv='Content-Type' content='text/html; charset=windows-1256'>" + ARABIC)
         .encode("cp1256"), "text/html", ARABIC),
        # an unknown label in the header falls through to the <meta>
        (("<meta charset=windows-1256>" + ARABIC).encode("cp1256"), "text/html; charset=bogus-9",
         ARABIC),
        # nothing declared: charset-normalizer recognises UTF-8
        ((ARABIC * 3).encode("utf-8"), None, ARABIC * 3),
        # a BOM beats everything
        (b"\xef\xbb\xbf" + RUSSIAN.encode("utf-8"), "text/html; charset=iso-8859-1", RUSSIAN),
        # iso-8859-1 means windows-1252 to a browser (curly quotes in 0x80-0x9f)
        (b"<p>\x93quoted\x94</p>", "text/html; charset=iso-8859-1", "<p>\u201cquoted\u201d</p>"),
    ],
    ids=["header", "meta", "bad-header-label", "guessed", "bom", "latin1-is-cp1252"],
)
def test_decoding_follows_the_declared_charsets(body: bytes, content_type: str | None,
                                               expected: str) -> None:
    assert expected in decode_html(body, content_type)
    assert sanitize_archived_html(body, content_type=content_type).endswith(expected)


def test_bad_bytes_never_raise() -> None:
    body = b"<p>caf\xe9 \xff\xfe\x00 ok</p>\xed\xa0\x80"
    out = sanitize_archived_html(body, content_type="text/html; charset=utf-8")
    assert out == "<p>caf\ufffd \ufffd\ufffd\ufffd ok</p>\ufffd\ufffd\ufffd"
    out.encode("utf-8")   # no lone surrogate survives into the response
    assert sanitize_archived_html(b"") == ""


def test_csp_forbids_everything_but_inline_images() -> None:
    directives = dict(d.split(" ", 1) if " " in d else (d, "") for d in ARCHIVE_CSP.split("; "))
    assert directives == {
        "default-src": "'none'", "img-src": "data:", "style-src": "'none'", "base-uri": "'none'",
        "form-action": "'none'", "frame-ancestors": "'self'", "sandbox": "",
    }


def _fixture_pages(shared_fixtures: Path) -> list[Path]:
    html_dir = shared_fixtures / "html"
    pages = sorted(p for p in html_dir.rglob("*") if p.name.endswith((".html", ".html.gz")))
    if not pages:
        pytest.skip(f"no HTML pages under {html_dir}")
    return pages


def test_every_real_fixture_page_comes_out_inert(shared_fixtures: Path) -> None:
    pages = _fixture_pages(shared_fixtures)
    assert len(pages) >= 200
    kept_text = 0
    for page in pages:
        raw = page.read_bytes()
        body = gzip.decompress(raw) if page.suffix == ".gz" else raw
        out = sanitize_archived_html(body, content_type="text/html", base_url=BASE)
        try:
            _assert_inert(out)
        except AssertionError as exc:
            raise AssertionError(f"{page.relative_to(shared_fixtures)}: {exc}") from exc
        if len(_tree(out).text_content().split()) >= 100:
            kept_text += 1
    # The sanitiser keeps the readable page, not an empty shell.
    assert kept_text >= len(pages) * 0.95
