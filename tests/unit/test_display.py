"""Each sink's rule for text from an event (chalicelib/display.py), on any string at all."""

from __future__ import annotations

import html
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from chalicelib import display

HOSTILE = st.text(st.sampled_from("<>&!@#|*_~`\"' \n\r\t\x00\x1b\u202e\u2066\u2069\u200b\u200d\ufeffAa李👩") | st.characters(),
                  max_size=400)


def visible(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf") and c not in display.KEPT_FORMAT for c in text)


@given(HOSTILE)
def test_plain_is_one_bounded_line_of_visible_text(value: str) -> None:
    out = display.plain(value)
    assert visible(out) and "\n" not in out and len(out) <= display.NAME_LIMIT and out == out.strip()


@given(HOSTILE)
def test_slack_text_can_neither_mention_nor_link(value: str) -> None:
    out = display.slack(value)
    assert "<" not in out and ">" not in out
    assert all(out[i:].startswith(("&amp;", "&lt;", "&gt;")) for i, c in enumerate(out) if c == "&")
    assert out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == display.plain(value)


@given(HOSTILE)
def test_email_html_unescapes_to_the_plain_text(value: str) -> None:
    out = display.email_html(value)
    assert not set("<>\"'") & set(out) and html.unescape(out) == display.plain(value)


@given(HOSTILE)
def test_pdf_text_is_latin_1(value: str) -> None:
    out = display.pdf(value)
    assert all(ord(c) < 256 for c in out) and visible(out)


def test_the_rules_on_known_cases() -> None:
    assert display.slack("<!channel> & <https://evil.example|Invoice>") == \
        "&lt;!channel&gt; &amp; &lt;https://evil.example|Invoice&gt;"
    assert display.plain("Ada \u202egnp.exe\u200b") == "Ada gnp.exe"
    assert display.plain("Ada\r\nBcc: x") == "Ada Bcc: x"
    assert display.plain("👩\u200d💻 ‌زهرا") == "👩\u200d💻 ‌زهرا"  # joiners stay
    assert display.plain("x" * 500) == "x" * (display.NAME_LIMIT - 1) + "…"
    assert display.pdf("Zoë 李") == "Zoë ?" and display.pdf("x" * 500).endswith("...")
    assert display.crm("n" * 5000) == "n" * display.CRM_TEXT_LIMIT and display.crm(42) == 42
    assert display.fill("{who} paid {link}", display.slack, {"who": "<!here>", "link": "https://x/" + "a" * 500}) \
        == "&lt;!here&gt; paid https://x/" + "a" * 500
