"""extract_article / article_from_text on pages written for these tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import trafilatura

import extract.article
from extract import MIN_TEXT_LENGTH, Article, Skip, article_from_text, extract_article

PAGES = Path(__file__).parent / "fixtures" / "pages"
URL = "https://dispatch.example.org/world/2024/03/04/former-fighter-escape"

RU_PARAGRAPHS = [
    "Бывший боец рассказал журналистам, что покинул группировку через два года, потому что больше "
    "не верил её обещаниям.",
    "Он провёл три года в Сирии и теперь живёт в реабилитационном центре недалеко от турецкой границы.",
    "По его словам, вербовщики обещали деньги, дом и справедливое дело, но реальность оказалась другой.",
    "Сотрудники центра говорят, что в программе участвуют около сорока бывших членов группировки.",
]


def article(body: bytes, content_type: str | None = "text/html", url: str = URL) -> Article:
    result = extract_article(body, url, content_type)
    assert isinstance(result, Article), result
    return result


def test_date_in_the_url_is_a_publication_date() -> None:
    page = article((PAGES / "cp1252-meta.html").read_bytes(), "text/html", URL)
    assert page.published == datetime(2024, 3, 4, tzinfo=UTC)


def test_news_page_main_text_and_metadata() -> None:
    page = article((PAGES / "defector-story.html").read_bytes())
    assert page.title == "Former fighter describes escape from Islamic State"
    assert page.author == "Layla Haddad"
    assert page.published == datetime(2024, 3, 4, tzinfo=UTC)
    assert page.sitename == "The Meridian Dispatch"
    assert page.url == URL
    assert (page.extractor, page.extractor_version) == ("trafilatura", trafilatura.__version__)
    # key sentences of the story
    assert page.text.startswith("A man who spent three years with the Islamic State group in northern Syria")
    assert '"Then I saw the children behind the bars, and I knew it was a lie."' in page.text
    assert page.text.endswith("meetings with families of victims.")
    # boilerplate gone: cookie banner, navigation, related links, comments, footer
    for boilerplate in ("cookies", "Subscribe for unlimited access", "Related stories", "Reader1234",
                        "All rights reserved", "Sport"):
        assert boilerplate not in page.text
    # the headline is the title, not repeated as the first line of the text
    assert not page.text.startswith(page.title or "-")


def test_charset_from_meta_http_equiv() -> None:
    # no charset in the header; a URL without a date in it
    page = article((PAGES / "cp1252-meta.html").read_bytes(), "text/html", "https://dispatch.example.org/fr/cafe")
    assert page.title == "Le café des anciens combattants"
    assert "« Je n’y croyais plus »" in page.text
    assert "40 000 €" in page.text and "démarche naïve" in page.text
    assert page.published is None   # "en 2018" in the text is not a publication date


def test_charset_from_content_type_header() -> None:
    html = (
        "<html><head><title>Haber</title></head><body><article><h1>Örgütten ayrılan şahıs</h1>"
        + "".join(
            f"<p>{i}. Örgütten ayrılan şahıs, gazetecilere iki yıl sonra gruptan neden ayrıldığını "
            "anlattı; vaatlere artık inanmadığını, ailesinin yanına dönmek istediğini söyledi.</p>"
            for i in range(1, 4)
        )
        + "</article></body></html>"
    ).encode("iso-8859-9")
    page = article(html, "text/html; charset=ISO-8859-9")
    assert "Örgütten ayrılan şahıs, gazetecilere iki yıl sonra" in page.text


@pytest.mark.parametrize("declared", ["text/html; charset=iso-8859-1", "text/html; charset=gb2312", None])
def test_valid_utf8_wins_over_a_wrong_declaration(declared: str | None) -> None:
    html = (
        '<html><head><meta http-equiv="content-type" content="text/html;charset=GB2312">'
        "<title>Aussteiger</title></head><body><article>"
        + "".join(f"<p>{p}</p>" for p in RU_PARAGRAPHS)
        + "</article></body></html>"
    ).encode("utf-8")
    assert RU_PARAGRAPHS[2] in article(html, declared).text


def test_charset_detected_when_undeclared() -> None:
    html = (
        "<html><head><title>Новости</title></head><body><article><h1>Бывший боец рассказал о побеге</h1>"
        + "".join(f"<p>{p}</p>" for p in RU_PARAGRAPHS)
        + "</article></body></html>"
    ).encode("cp1251")
    page = article(html, None)
    assert RU_PARAGRAPHS[0] in page.text


def test_utf16_page_with_bom() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>Aussteiger</title></head><body><article>"
        "<p>Der frühere Kämpfer erzählte den Journalisten, dass er die Gruppe nach zwei Jahren verlassen "
        "habe, weil er ihren Versprechen nicht mehr glaubte.</p><p>Er lebt seit dem Herbst in einem "
        "Zentrum nahe der türkischen Grenze, wo ehemalige Mitglieder beraten und ausgebildet werden.</p>"
        "<p>Die Forscher mahnen, solche Aussagen sorgfältig zu prüfen.</p></article></body></html>"
    ).encode("utf-16")
    page = article(html)
    assert "Der frühere Kämpfer erzählte den Journalisten" in page.text


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b"<html><body><p>x</p></body></html>", "application/pdf", "content type 'application/pdf'"),
        (b"<html><body><p>x</p></body></html>", "image/jpeg; q=1", "content type 'image/jpeg'"),
        (b"body { color: red; }", "text/css", "content type 'text/css'"),
        (b"var story = 1;", "application/octet-stream", "content type 'application/octet-stream'"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "text/html", "a PDF document"),
        (b"PK\x03\x04\x14\x00\x06\x00", None, "a ZIP archive"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/html", "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", None, "a JPEG image"),
        (b"<html>\x00\x00\x00\x01\x02binary", "text/html", "NUL bytes"),
    ],
)
def test_binary_or_non_html_is_not_html(body: bytes, content_type: str | None, detail: str) -> None:
    result = extract_article(body, URL, content_type)
    assert isinstance(result, Skip)
    assert result.reason == "not_html"
    assert detail in result.detail


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "])
def test_empty_body(body: bytes) -> None:
    assert extract_article(body, URL, "text/html") == Skip("empty", "the response body is empty")


def test_teaser_is_too_short() -> None:
    result = extract_article((PAGES / "teaser.html").read_bytes(), URL, "text/html")
    assert isinstance(result, Skip) and result.reason == "too_short"
    assert result.detail.endswith(f"fewer than {MIN_TEXT_LENGTH}")


@pytest.mark.parametrize(
    "body",
    [
        b"<html><head><title>x</title></head><body></body></html>",
        b"<html><body><script>var story = 1;</script></body></html>",
    ],
)
def test_page_without_main_text_is_no_article(body: bytes) -> None:
    assert extract_article(body, URL, "text/html") == Skip("no_article", "trafilatura found no main text")


def test_extractor_failure_is_a_typed_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded while parsing a 20000-deep table")

    monkeypatch.setattr(extract.article.trafilatura, "bare_extraction", explode)
    result = extract_article((PAGES / "defector-story.html").read_bytes(), URL, "text/html")
    assert result == Skip(
        "extraction_error",
        "RecursionError: maximum recursion depth exceeded while parsing a 20000-deep table",
    )


def test_text_plain_response_is_read_as_text() -> None:
    body = "\n\n".join(RU_PARAGRAPHS).encode("utf-8")
    page = article(body, "text/plain; charset=utf-8", "https://dispatch.example.org/statement.txt")
    assert page.text == "\n\n".join(RU_PARAGRAPHS)
    assert page.extractor == "plain-text"
    short = extract_article(b"A short note.", "https://dispatch.example.org/n.txt", "text/plain")
    assert isinstance(short, Skip) and short.reason == "too_short"


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream"])
def test_html_served_with_a_generic_type_is_still_html(content_type: str) -> None:
    page = article((PAGES / "defector-story.html").read_bytes(), content_type)
    assert page.extractor == "trafilatura"
    assert page.author == "Layla Haddad"


def test_article_from_text() -> None:
    text = "\ufeffFirst  paragraph,\twith   odd spacing.\r\n\r\n\r\n\r\nSecond paragraph.  \n"
    result = article_from_text(text, "file:///tmp/statement.txt", title="  A statement ")
    assert result == Article(
        url="file:///tmp/statement.txt",
        title="A statement",
        author=None,
        published=None,
        sitename=None,
        text="First paragraph, with odd spacing.\n\nSecond paragraph.",
        extractor="plain-text",
        extractor_version="1",
    )
    assert article_from_text(" \n ", "file:///tmp/empty.txt") == Skip("empty", "the text is empty")
    too_short = article_from_text("Short.", "file:///tmp/s.txt", min_length=MIN_TEXT_LENGTH)
    assert isinstance(too_short, Skip) and too_short.reason == "too_short"


def test_a_saved_text_starts_with_its_headline() -> None:
    from extract.article import split_headline

    assert split_headline("IS defector speaks\n\nHe left.") == ("IS defector speaks", "He left.")
    headline = "«Я ушёл»: рассказ бывшего боевика"
    assert split_headline(f"{headline}\n\nТекст.")[0] == headline
    # a first sentence, a long first paragraph, or a text without a second paragraph is not a headline
    assert split_headline("He left in 2015.\n\nMore.") == (None, "He left in 2015.\n\nMore.")
    long_line = " ".join(["word"] * 31)
    assert split_headline(f"{long_line}\n\nMore.")[0] is None
    assert split_headline("Only one paragraph") == (None, "Only one paragraph")
    assert split_headline("Two lines\nin one block\n\nMore.")[0] is None
    article = article_from_text("A headline\n\nThe body of the text.", "file:///a.txt", find_headline=True)
    assert isinstance(article, Article)
    assert (article.title, article.text) == ("A headline", "The body of the text.")
    # without find_headline (the default) the text stays whole
    whole = article_from_text("A headline\n\nThe body of the text.", "file:///tmp/a.txt")
    assert isinstance(whole, Article) and whole.title is None
