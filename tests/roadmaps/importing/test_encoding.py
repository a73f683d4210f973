"""From bytes to text: BOMs, binary input, bad UTF-8 and mojibake repair."""

from __future__ import annotations

import pytest

from skilltree.roadmaps.importing import RoadmapImportError, parse_roadmap
from skilltree.roadmaps.importing.encoding import decode, repair_mojibake


def as_mojibake(text: str, codec: str, drop: bytes = b"") -> str:
    """What a tool produces when it decodes UTF-8 with a code page, dropping undefined bytes."""
    raw = text.encode("utf-8")
    return (
        raw.decode(codec, errors="ignore")
        if not drop
        else bytes(b for b in raw if b not in drop).decode(codec)
    )


@pytest.mark.parametrize(
    ("codec", "name"), [("cp1252", "cp1252"), ("mac_roman", "mac_roman"), ("cp1254", "cp1254")]
)
def test_mojibake_from_each_code_page_is_repaired(codec: str, name: str) -> None:
    original = "## 📌 Request–response lifecycle “quoted” ✅"

    repaired = repair_mojibake(as_mojibake(original, codec))

    assert repaired.text == original
    assert repaired.repaired_encoding == name


def test_a_byte_the_code_page_dropped_is_put_back() -> None:
    # 0x8F (inside the keycap's U+FE0F) and 0x9D (inside ❌) do not exist in Windows-1254.
    original = "## 🧱 0️⃣ Foundations ❌"
    broken = as_mojibake(original, "cp1254")
    assert "\ufe0f" not in broken

    assert repair_mojibake(broken).text == original


def test_a_dropped_zero_width_joiner_is_put_back_between_emoji() -> None:
    original = "## 🧑\u200d💻 Real-world backend life"

    assert repair_mojibake(as_mojibake(original, "cp1252")).text == original


@pytest.mark.parametrize(
    "clean",
    [
        "Client–Server model “quoted” → café, naïve, 日本語 ✅ 🚀",
        "Price: 5 € — 3½ apples",
        "plain ASCII only",
        "Ça va, café, résumé, naïve, São Paulo",
        "# Notes\n\n- Ça va\n- Crème brûlée",
    ],
)
def test_correct_text_is_left_untouched(clean: str) -> None:
    result = repair_mojibake(clean)

    assert (result.text, result.repaired_encoding) == (clean, None)


def test_a_leading_bom_is_stripped() -> None:
    parsed = parse_roadmap("\ufeff# Title\n\n- item\n".encode(), "markdown")

    assert parsed.document.title == "Title"


def test_utf16_with_a_bom_is_decoded() -> None:
    assert decode("# T\n- a\n".encode("utf-16")).text == "# T\n- a\n"


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(RoadmapImportError, match="empty"):
        decode(b"  \n\n ")


def test_binary_input_is_refused_naming_the_line() -> None:
    with pytest.raises(RoadmapImportError) as raised:
        decode(b"# T\n- a\n- \x00\x01 b\n")

    assert raised.value.line == 3


def test_invalid_utf8_is_refused_naming_the_line_and_byte() -> None:
    with pytest.raises(RoadmapImportError) as raised:
        decode(b"# T\n\n- caf\xe9\n")

    assert raised.value.line == 3
    assert "0xE9" in raised.value.detail


def test_oversized_input_is_refused_before_parsing() -> None:
    from skilltree.roadmaps.importing import ImportLimits, RoadmapTooLarge

    with pytest.raises(RoadmapTooLarge):
        parse_roadmap(b"- x\n" * 100, "markdown", ImportLimits(max_bytes=50))
