"""detect_language: deterministic langdetect with ISO 639-1 codes."""

from __future__ import annotations

import pytest
from langdetect import DetectorFactory

from extract import LanguageGuess, detect_language
from extract.language import MAX_CHARS, normalise_code

SENTENCES = {
    "en": (
        "The former fighter told reporters that he left the group after two years because"
        " he no longer believed its promises."
    ),
    "ar": (
        "قال المقاتل السابق للصحفيين إنه غادر التنظيم بعد عامين لأنه لم يعد يصدق وعوده، "
        "وعاد إلى قريته ليعيش مع عائلته."
    ),
    "fr": (
        "L'ancien combattant a expliqué aux journalistes qu'il avait quitté le groupe "
        "après deux ans, car il ne croyait plus à ses promesses."
    ),
    "de": (
        "Der frühere Kämpfer erzählte den Journalisten, dass er die Gruppe nach zwei "
        "Jahren verlassen habe, weil er ihren Versprechen nicht mehr glaubte."
    ),
    "nl": (
        "De voormalige strijder vertelde journalisten dat hij de groep na twee jaar had "
        "verlaten, omdat hij niet langer in haar beloften geloofde."
    ),
    "sv": (
        "Den tidigare krigaren berättade för journalisterna att han lämnade gruppen efter"
        " två år, eftersom han inte längre trodde på dess löften."
    ),
    "da": (
        "Den tidligere kriger fortalte journalisterne, at han forlod gruppen efter to år,"
        " fordi han ikke længere troede på dens løfter."
    ),
    "no": (
        "Den tidligere krigeren fortalte journalistene at han forlot gruppen etter to år,"
        " fordi han ikke lenger trodde på løftene dens."
    ),
    "tr": (
        "Eski savaşçı gazetecilere, örgütün vaatlerine artık inanmadığı için iki yıl "
        "sonra gruptan ayrıldığını söyledi."
    ),
    "ru": (
        "Бывший боец рассказал журналистам, что покинул группировку через два года, "
        "потому что больше не верил её обещаниям."
    ),
    "es": (
        "El antiguo combatiente contó a los periodistas que abandonó el grupo después de "
        "dos años porque ya no creía en sus promesas."
    ),
    "it": (
        "L'ex combattente ha raccontato ai giornalisti di aver lasciato il gruppo dopo "
        "due anni, perché non credeva più alle sue promesse."
    ),
    "pt": (
        "O antigo combatente contou aos jornalistas que deixou o grupo depois de dois "
        "anos, porque já não acreditava nas suas promessas."
    ),
    "id": (
        "Mantan pejuang itu mengatakan kepada wartawan bahwa dia meninggalkan kelompok "
        "tersebut setelah dua tahun karena tidak lagi percaya pada janji-janjinya."
    ),
}


@pytest.mark.parametrize(("lang", "text"), sorted(SENTENCES.items()))
def test_detects_each_language(lang: str, text: str) -> None:
    guess = detect_language(text)
    assert guess.lang == lang
    assert guess.probability > 0.9


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_same_text_same_answer(lang: str) -> None:
    text = SENTENCES[lang]
    first = detect_language(text)
    DetectorFactory.seed = 12345   # whatever another caller did to the shared factory
    assert detect_language(text) == first


def test_mixed_text_is_deterministic() -> None:
    # close to a coin toss between Danish and Norwegian: sampling would flip the answer
    text = "Han sagde at han forlot gruppen. Han fortalte at han ikke længere troede på den."
    answers = {detect_language(text) for _ in range(5)}
    assert len(answers) == 1


@pytest.mark.parametrize("text", ["", "   ", "1234 5678 — 90", "OK", "Ja, nej.", "https://x.y/1"])
def test_too_little_text_is_undetermined(text: str) -> None:
    assert detect_language(text) == LanguageGuess("und", 0.0)


def test_chinese_code_is_normalised() -> None:
    guess = detect_language("中华人民共和国成立于一九四九年十月一日，首都是北京。前战士向记者讲述了他离开的原因。")  # noqa: E501
    assert guess.lang == "zh"
    assert [normalise_code(c) for c in ("zh-cn", "zh-tw", "no", "en")] == ["zh", "zh", "no", "en"]


def test_only_the_beginning_is_read() -> None:
    text = SENTENCES["fr"] * (MAX_CHARS // len(SENTENCES["fr"]) + 1) + SENTENCES["de"] * 200
    assert detect_language(text).lang == "fr"
