"""A small ESC/POS decoder for tests: our printer bytes back into text lines and raster images."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

# Bytes a GBK printer reads as the first of a double-byte character in Chinese mode.
GBK_LEAD = range(0x81, 0xFF)
INVERT = bytes(255 - b for b in range(256))


@dataclass
class TextLine:
    """A printed line as the printer lays it out: `columns` counts what it takes on paper."""

    text: str
    columns: int
    bold: bool
    double_width: bool
    double_height: bool


@dataclass
class Raster:
    """A GS v 0 image (consecutive fragments of one width joined), ink black on white."""

    image: Image.Image

    @property
    def width(self) -> int:
        return self.image.width


@dataclass
class Decoded:
    items: list[TextLine | Raster] = field(default_factory=list)
    feeds: int = 0
    cuts: list[bytes] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[TextLine]:
        return [item for item in self.items if isinstance(item, TextLine)]

    @property
    def images(self) -> list[Raster]:
        return [item for item in self.items if isinstance(item, Raster)]


class DecodeError(ValueError):
    pass


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.chinese = False
        self.bold = False
        self.width = 1
        self.height = 1


def decode(data: bytes, charset: str = "gbk") -> Decoded:
    """Every command we send, understood; anything else is an error (a stray byte is a bug).

    `charset` is the printer's Chinese character set: "gb18030" also reads four-byte codes.
    """
    out = Decoded()
    state = _State()
    text: list[str] = []
    columns = 0
    i = 0

    def flush() -> None:
        nonlocal text, columns
        out.items.append(
            TextLine("".join(text), columns, state.bold, state.width == 2, state.height == 2)
        )
        text, columns = [], 0

    def need(n: int) -> bytes:
        if i + n > len(data):
            raise DecodeError(f"command at {i} runs past the end")
        return data[i : i + n]

    while i < len(data):
        byte = data[i]
        if byte == 0x0A:
            flush()
            i += 1
        elif byte == 0x1B:  # ESC
            cmd = need(2)[1]
            if cmd == 0x40:  # ESC @ initialize
                state.reset()
                out.commands.append("init")
                i += 2
            elif cmd == 0x45:  # ESC E n bold
                state.bold = bool(need(3)[2] & 1)
                i += 3
            elif cmd == 0x21:  # ESC ! n print mode
                n = need(3)[2]
                state.bold = bool(n & 0x08)
                state.height = 2 if n & 0x10 else 1
                state.width = 2 if n & 0x20 else 1
                i += 3
            elif cmd == 0x61:  # ESC a n alignment
                out.commands.append(f"align {need(3)[2]}")
                i += 3
            elif cmd == 0x64:  # ESC d n print and feed n lines
                if text:
                    flush()
                out.feeds += need(3)[2]
                i += 3
            else:
                raise DecodeError(f"unknown ESC {cmd:#04x} at {i}")
        elif byte == 0x1D:  # GS
            cmd = need(2)[1]
            if cmd == 0x21:  # GS ! n character size
                n = need(3)[2]
                state.width = (n >> 4) + 1
                state.height = (n & 0x0F) + 1
                i += 3
            elif cmd == 0x56:  # GS V m [n] cut
                m = need(3)[2]
                length = 4 if m in (65, 66) else 3
                out.cuts.append(need(length))
                i += length
            elif cmd == 0x76:  # GS v 0 m xL xH yL yH raster
                header = need(8)
                if header[2] != 0x30:
                    raise DecodeError(f"GS v {header[2]:#04x} at {i}")
                if text:
                    raise DecodeError(f"an image in the middle of a line at {i}")
                width_bytes = header[4] | header[5] << 8
                height = header[6] | header[7] << 8
                i += 8
                size = width_bytes * height
                bits = need(size)
                i += size
                # ESC/POS sets a bit for ink; Pillow's 1-bit mode sets one for white.
                image = Image.frombytes("1", (width_bytes * 8, height), bits.translate(INVERT))
                last = out.items[-1] if out.items else None
                if isinstance(last, Raster) and last.width == image.width:
                    joined = Image.new("1", (image.width, last.image.height + height), 1)
                    joined.paste(last.image, (0, 0))
                    joined.paste(image, (0, last.image.height))
                    last.image = joined
                else:
                    out.items.append(Raster(image))
            else:
                raise DecodeError(f"unknown GS {cmd:#04x} at {i}")
        elif byte == 0x1C:  # FS
            cmd = need(2)[1]
            if cmd == 0x26:
                state.chinese = True
            elif cmd == 0x2E:
                state.chinese = False
            else:
                raise DecodeError(f"unknown FS {cmd:#04x} at {i}")
            i += 2
        elif byte < 0x20 or byte == 0x7F:
            raise DecodeError(f"control byte {byte:#04x} at {i}")
        elif byte < 0x80:
            text.append(chr(byte))
            columns += state.width
            i += 1
        elif state.chinese and byte in GBK_LEAD:
            four = charset == "gb18030" and 0x30 <= need(2)[1] <= 0x39
            code = need(4 if four else 2)
            try:
                text.append(code.decode(charset))
            except UnicodeDecodeError:
                raise DecodeError(f"not {charset}: {code!r} at {i}") from None
            # A four-byte character prints full width, like a two-byte one.
            columns += 2 * state.width
            i += len(code)
        else:
            raise DecodeError(f"byte {byte:#04x} outside Chinese mode at {i}")
    if text:
        flush()
    return out


def read_qr(image: Image.Image) -> list[str]:
    """The texts of the QR codes zxing-cpp finds in `image`."""
    import zxingcpp

    return [
        result.text
        for result in zxingcpp.read_barcodes(image.convert("L"))
        if result.format == zxingcpp.BarcodeFormat.QRCode
    ]
