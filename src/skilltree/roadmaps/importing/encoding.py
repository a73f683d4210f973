"""From uploaded bytes to trustworthy text: BOMs, binary files and mojibake.

Mojibake is UTF-8 that some tool decoded with a legacy single-byte code page (Windows-1252,
Mac Roman, Windows-1254...) and saved again as UTF-8: "📌" becomes "ðŸ“Œ". Reversing it means
encoding the text back with that code page and decoding the bytes as UTF-8. The hard part is that
code pages leave a few byte values undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D in Windows-1252), and
tools silently drop those bytes — so "🌐" (F0 9F 8C 90) arrives as "ğŸŒ" with its last byte gone.
We put such bytes back by trying each undefined value where the UTF-8 sequence is short and
keeping the most plausible character in context. See docs/decisions/0003-mojibake-repair.md.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass

from skilltree.roadmaps.importing.errors import RoadmapImportError

# Code pages seen in the wild, most common first. The "sloppy" variants (from ftfy) map each
# undefined byte to the C1 control character with the same number, as browsers do, so text that
# kept those characters round-trips exactly.
# Latin-1 is what a tool that decodes "as ISO-8859-1" produces: bytes 0x80-0x9F become C1
# control characters ("Googleâ\x80\x99s") instead of Windows-1252's punctuation.
LEGACY_CODECS = ("sloppy-windows-1252", "macroman", "sloppy-windows-1254", "latin-1")
C1_CONTROLS = frozenset(chr(code) for code in range(0x80, 0xA0))
# Byte values each code page leaves undefined: the candidates for a dropped byte.
UNDEFINED_BYTES = {
    "sloppy-windows-1252": (0x81, 0x8D, 0x8F, 0x90, 0x9D),
    "sloppy-windows-1254": (0x81, 0x8D, 0x8E, 0x8F, 0x90, 0x9D, 0x9E),
    "macroman": (),
    "latin-1": (),
}
# A binary file is refused rather than imported as garbage.
MAX_CONTROL_CHAR_RATIO = 0.01
MAX_DROPPED_BYTES_PER_RUN = 12
# Candidates for a dropped byte are judged on this many bytes either side of the broken sequence.
SCORING_CONTEXT_BYTES = 16
ZWJ = "\u200d"
VS16 = "\ufe0f"
OPENING_QUOTE, CLOSING_QUOTE = "\u201c", "\u201d"


@dataclass(frozen=True)
class DecodedText:
    text: str
    repaired_encoding: str | None  # the code page whose mojibake was repaired, if any


def decode(data: bytes) -> DecodedText:
    """Decode an upload as UTF-8 (BOM stripped), refusing binary data, and repair mojibake."""
    text = _decode_unicode(data)
    if not text.strip():
        raise RoadmapImportError("the file is empty", line=1)
    # Repaired first: Latin-1 mojibake is full of C1 control characters that are not binary.
    decoded = repair_mojibake(text)
    _refuse_control_characters(decoded.text)
    return decoded


def _decode_unicode(data: bytes) -> str:
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as error:
                raise RoadmapImportError("the file is not valid UTF-16", line=1) from error
    nul = data.find(b"\x00")
    if nul != -1:
        raise RoadmapImportError(
            f"line {_line_of(data, nul)}: binary data (a NUL byte); import a text file",
            line=_line_of(data, nul),
        )
    try:
        return data.decode("utf-8-sig")  # strips a UTF-8 BOM if there is one
    except UnicodeDecodeError as error:
        line = _line_of(data, error.start)
        raise RoadmapImportError(
            f"line {line}: not valid UTF-8 (byte 0x{data[error.start]:02X}); "
            "save the file as UTF-8",
            line=line,
        ) from error


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _refuse_control_characters(text: str) -> None:
    controls = [
        i for i, ch in enumerate(text) if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f"
    ]
    if controls and len(controls) > max(2, len(text) * MAX_CONTROL_CHAR_RATIO):
        line = text.count("\n", 0, controls[0]) + 1
        raise RoadmapImportError(
            f"line {line}: binary data (control characters); import a text file", line=line
        )


def repair_mojibake(text: str) -> DecodedText:
    """Repair text that went through a legacy code page; leave correct text untouched."""
    _register_sloppy_codecs()
    codec = _guess_codec(text)
    if codec is None:
        return DecodedText(text, None)
    lines = [_repair_line(line, codec) for line in text.split("\n")]
    if codec != "latin-1":
        # A file pasted together from two tools can hold both forms; C1 controls left over
        # after the main code page's repair are the Latin-1 form.
        lines = [
            _repair_line(line, "latin-1") if C1_CONTROLS.intersection(line) else line
            for line in lines
        ]
    repaired = "\n".join(lines)
    return DecodedText(repaired, _display_name(codec) if repaired != text else None)


def _register_sloppy_codecs() -> None:
    """ftfy registers its "sloppy-windows-*" codecs when imported. Imported here, on the first
    upload to repair, not at start-up: ftfy's tables are ~3 MB a serving worker never reads."""
    import ftfy.bad_codecs  # noqa: F401


def _display_name(codec: str) -> str:
    return {
        "sloppy-windows-1252": "cp1252",
        "sloppy-windows-1254": "cp1254",
        "latin-1": "latin-1",
    }.get(codec, "mac_roman")


def _guess_codec(text: str) -> str | None:
    """The code page that explains the text's non-ASCII characters best, if any explains them.

    Under the right code page, mojibake re-encodes into complete UTF-8 sequences ("ðŸ“Œ" is
    exactly F0 9F 93 8C). Each non-ASCII character counts for the code page when it falls in
    such a sequence and against it otherwise, so correct text (a lone "é" re-encodes to a lead
    byte followed by ASCII) scores below zero, and accidental sequences under a wrong code page
    lose to the many real ones under the right code page.
    """
    best, best_score = None, 0
    for codec in LEGACY_CODECS:
        score = sum(_evidence(line, codec) for line in text.split("\n") if not line.isascii())
        if score > best_score:
            best, best_score = codec, score
    return best


def _evidence(line: str, codec: str) -> int:
    non_ascii = sum(1 for ch in line if not ch.isascii())
    # In a single-byte code page one character is one byte, so bytes explained = characters.
    explained = sum(_bytes_in_sequences(run.encode(codec)) for run in _encodable_runs(line, codec))
    return explained - (non_ascii - explained)


def _bytes_in_sequences(data: bytes) -> int:
    """How many non-ASCII bytes belong to complete, valid multi-byte UTF-8 sequences."""
    covered, index = 0, 0
    while index < len(data):
        length = _sequence_length(data[index])
        candidate = data[index : index + length]
        if length > 1 and len(candidate) == length and _decodes(candidate):
            covered += length
            index += length
        else:
            index += 1
    return covered


def _has_short_sequence(data: bytes) -> bool:
    """A 3- or 4-byte UTF-8 lead followed by all but one of its continuation bytes: an emoji
    whose undefined byte was dropped ("ðŸŒ" + space), even with no intact sequence beside it."""
    for index, lead in enumerate(data):
        length = _sequence_length(lead)
        if length < 3:
            continue
        following = data[index + 1 : index + length]
        continuations = len(following) - len(following.lstrip(bytes(range(0x80, 0xC0))))
        if continuations == length - 2:
            return True
    return False


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sequence_length(lead: int) -> int:
    """The length of the UTF-8 sequence a lead byte starts (0 for a byte that cannot lead)."""
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 1 if lead < 0x80 else 0


def _encodable_runs(line: str, codec: str) -> list[str]:
    """Maximal stretches of the line that the code page can encode and that hold non-ASCII."""
    runs: list[str] = []
    current: list[str] = []
    for ch in line:
        if _encodable(ch, codec):
            current.append(ch)
            continue
        if current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return [run for run in runs if not run.isascii()]


def _encodable(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _strict_repair(run: str, codec: str) -> str | None:
    try:
        repaired = run.encode(codec).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return repaired if repaired != run and _plausible(repaired) else None


def _repair_line(line: str, codec: str) -> str:
    for run in sorted(set(_encodable_runs(line, codec)), key=len, reverse=True):
        data = run.encode(codec)
        if not _bytes_in_sequences(data) and not (
            UNDEFINED_BYTES[codec] and _has_short_sequence(data)
        ):
            continue  # no trace of mojibake in this run: it is correct text
        repaired = _strict_repair(run, codec) or _repair_dropped_bytes(run, codec)
        if repaired is not None:
            line = line.replace(run, repaired)
    return line


def _repair_dropped_bytes(run: str, codec: str) -> str | None:
    """Re-insert undefined bytes where UTF-8 sequences are one byte short; None if hopeless."""
    data = bytes(run.encode(codec))
    for _ in range(MAX_DROPPED_BYTES_PER_RUN):
        try:
            repaired = data.decode("utf-8")
        except UnicodeDecodeError as error:
            gaps = _possible_gaps(data, error)
            if not gaps or not UNDEFINED_BYTES[codec]:
                return None
            # Every candidate is judged on the same bytes around the error, so the cost does not
            # grow with the length of the line and no candidate gets a luckier cut.
            start = max(0, error.start - SCORING_CONTEXT_BYTES)
            end = error.end + SCORING_CONTEXT_BYTES
            # A quotation opened further back than the window still wants closing: without
            # this, "atom” cover" loses its quote to the equally plausible "atom⍀ cover".
            opened = OPENING_QUOTE.encode() in data[:start]
            gap, byte = max(
                ((gap, byte) for gap in gaps for byte in UNDEFINED_BYTES[codec]),
                key=lambda choice: _plausibility(
                    data[start : choice[0]] + bytes([choice[1]]) + data[choice[0] : end],
                    quotation_open=opened,
                ),
            )
            data = data[:gap] + bytes([byte]) + data[gap:]
            continue
        return repaired if _plausible(repaired) else None
    return None


def _possible_gaps(data: bytes, error: UnicodeDecodeError) -> list[int]:
    """Where a dropped continuation byte may have been, if the error is a sequence one byte short.

    Lead bytes (0xC2-0xF4) are defined in every code page we repair, so only a continuation byte
    can have been lost, and it can have sat anywhere after the lead byte. A sequence missing two
    or more bytes is not a dropped byte but correct text (a lone "é" followed by ASCII).
    """
    expected = _sequence_length(data[error.start])
    present = error.end - error.start
    if expected < 2 or present != expected - 1:
        return []
    return list(range(error.start + 1, error.end + 1))


def _plausibility(data: bytes, *, quotation_open: bool = False) -> int:
    """How believable the decoded text is: emoji, joiners in the right places, no garbage."""
    text = data.decode("utf-8", errors="replace")
    score = 0
    for index, ch in enumerate(text):
        if ch.isascii():
            continue
        before = text[index - 1] if index > 0 else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        score += _char_score(ch, before, after)
        if ch == CLOSING_QUOTE and (quotation_open or OPENING_QUOTE in text[:index]):
            score += 3  # closes the quotation the line opened
    return score


def _char_score(ch: str, before: str, after: str) -> int:
    if ch == "\ufffd":  # still undecodable
        return -10
    if ch == ZWJ:  # joins two emoji, never letters
        return 4 if _is_wide(before) and _is_wide(after) else -4
    if ch == VS16:  # emoji presentation after a symbol or a keycap digit
        return 3 if before and (not before.isalpha() or before.isdigit()) else -2
    category = unicodedata.category(ch)
    if category in {"Cc", "Cn", "Co", "Cs"}:
        return -5
    if _is_wide(ch):
        return 2
    if category in {"So", "Pi", "Pf"}:  # symbols (☁, ✅) and typographic quotes
        return 1
    return 0


def _is_wide(ch: str) -> bool:
    from wcwidth import wcwidth  # with the first upload to repair, like ftfy

    return bool(ch) and wcwidth(ch) == 2


def _plausible(text: str) -> bool:
    """Real text has no control, unassigned or private-use characters."""
    return not any(
        unicodedata.category(ch) in {"Cc", "Cn", "Co", "Cs"} and ch not in "\t\r\f" for ch in text
    )
