"""Read back the text of a PDF written by fpdf2 with an embedded TrueType font.

Such a PDF draws text as glyph ids (Identity-H, two bytes a glyph); each font's ToUnicode CMap
maps them back to characters, as a viewer's copy-and-paste or search does. This reads the
objects, the fonts' CMaps and the page content streams (`Tf`, `Tj`, `TJ`) and returns the text
as a viewer would extract it: one line per text object. A core font (no ToUnicode, one byte a
character) is read as Latin-1, so the text of a PDF set in Helvetica reads back too.
"""

from __future__ import annotations

import re
import zlib

_OBJECT = re.compile(rb"(\d+) 0 obj\s*(.*?)\s*endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*)endstream", re.S)
# A token: literal string opening, hex string, array start, array end, name, number or operator.
_TOKEN = re.compile(rb"\s*(?:(\()|<([0-9A-Fa-f\s]*)>|(\[)|(\])"
                    rb"|(/[^\s/\[\]()<>]+)|([^\s/\[\]()<>]+))")
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def objects(content: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Every object: its dictionary text and its stream, inflated where it is deflated. The
    end-of-line before `endstream` is left to the decompressor: deflated bytes may themselves
    end in a carriage return."""
    found: dict[int, tuple[bytes, bytes | None]] = {}
    for number, body in _OBJECT.findall(content):
        stream = _STREAM.search(body)
        data: bytes | None = None
        head = body
        if stream:
            head = body[:stream.start()]
            data = stream.group(1)
            if b"/FlateDecode" in head:
                data = zlib.decompressobj().decompress(data)
        found[int(number)] = (head, data)
    return found


def base_fonts(content: bytes) -> set[str]:
    """The /BaseFont of every font the document uses (a subset carries a `ABCDEF+` tag)."""
    return {m.decode() for m in re.findall(rb"/BaseFont\s*/([^\s/>]+)", content)}


def _hex(text: bytes) -> bytes:
    return bytes.fromhex(re.sub(rb"\s", b"", text).decode())


def _cmap(data: bytes) -> dict[int, str]:
    """A ToUnicode CMap: glyph code to text (UTF-16BE), from its bfchar and bfrange entries."""
    table: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            table[int(src, 16)] = _hex(dst).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(
                rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            start = int.from_bytes(_hex(dst), "big")
            for offset, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                table[code] = chr(start + offset)
    return table


def _literal(data: bytes, i: int) -> tuple[bytes, int]:
    """The literal string opening at data[i - 1] == '(', and the index after its ')'."""
    out = bytearray()
    depth = 1
    while True:
        c = data[i:i + 1]
        i += 1
        if c == b"\\":
            e = data[i:i + 1]
            i += 1
            if e in _ESCAPES:
                out += _ESCAPES[e]
            elif e.isdigit():
                digits = re.match(rb"[0-7]{1,3}", data[i - 1:i + 2])
                assert digits
                out.append(int(digits.group(), 8) & 0xFF)
                i += len(digits.group()) - 1
            elif e == b"\r":
                i += data[i:i + 1] == b"\n"
            elif e != b"\n":
                out += e
        elif c == b"(":
            depth += 1
            out += c
        elif c == b")":
            depth -= 1
            if depth == 0:
                return bytes(out), i
            out += c
        elif not c:
            raise ValueError("unterminated string")
        else:
            out += c


def _operations(data: bytes) -> list[tuple[str, list[object]]]:
    """A content stream as (operator, operands); strings are bytes, arrays lists."""
    ops: list[tuple[str, list[object]]] = []
    operands: list[object] = []
    stack: list[list[object]] = []
    i = 0
    while i < len(data):
        m = _TOKEN.match(data, i)
        if not m or m.end() == i:
            break
        i = m.end()
        target = stack[-1] if stack else operands
        if m.group(1):
            value, i = _literal(data, i)
            target.append(value)
        elif m.group(2) is not None:
            target.append(_hex(m.group(2)))
        elif m.group(3):
            stack.append([])
        elif m.group(4):
            done = stack.pop()
            (stack[-1] if stack else operands).append(done)
        elif m.group(5):
            target.append(m.group(5).decode())
        else:
            word = m.group(6)
            if re.fullmatch(rb"[-+]?(\d+\.?\d*|\.\d+)", word):
                target.append(float(word))
            elif not stack:
                ops.append((word.decode("latin-1"), operands))
                operands = []
    return ops


def pdf_text(content: bytes) -> str:
    """The text drawn on the pages, decoded through each font's ToUnicode CMap."""
    objs = objects(content)
    font_maps: dict[int, dict[int, str] | None] = {}
    for number, (head, _) in objs.items():
        to_unicode = re.search(rb"/ToUnicode\s+(\d+) 0 R", head)
        if b"/Type /Font" in head:
            font_maps[number] = (_cmap(objs[int(to_unicode.group(1))][1] or b"")
                                 if to_unicode else None)
    names: dict[str, dict[int, str] | None] = {}
    for head, _ in objs.values():
        for block in re.findall(rb"/Font\s*<<(.*?)>>", head, re.S):
            for name, number in re.findall(rb"/(\S+)\s+(\d+) 0 R", block):
                if int(number) in font_maps:
                    names["/" + name.decode()] = font_maps[int(number)]
    lines: list[str] = []
    for head, data in objs.values():
        if data is None or b"/Length1" in head or b"BT" not in data:
            continue
        table: dict[int, str] | None = {}
        line: list[str] = []
        for op, operands in _operations(data):
            if op == "Tf":
                table = names.get(str(operands[0]), {})
            elif op in ("Tj", "TJ"):
                parts = operands[-1] if op == "TJ" else operands[-1:]
                assert isinstance(parts, list)
                for part in parts:
                    if not isinstance(part, bytes):
                        continue
                    if table is None:
                        line.append(part.decode("latin-1"))
                    else:
                        glyphs = table
                        line.extend(glyphs.get(int.from_bytes(part[k:k + 2], "big"), "\ufffd")
                                    for k in range(0, len(part) - 1, 2))
            elif op == "ET" and line:
                lines.append("".join(line))
                line = []
    return "\n".join(lines)
