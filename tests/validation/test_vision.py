"""Image (vision) training data: roles, counts, detail, inline image formats and sizes, with line numbers."""
from __future__ import annotations

import base64
import struct
import zlib

import pytest

from shared.catalogue import load_catalogue
from shared.validation.images import check_data_uri

from .builders import CHAT_MODEL, DPO_MODEL, SYSTEM, VISION_MODEL, codes_at, dataset, run

MB = 1 << 20


def png(color_type: int = 2, width: int = 2, height: int = 2) -> bytes:
    """A real (tiny) PNG of the given colour type."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    raw = b"".join(b"\x00" + b"\x80" * (width * channels) for _ in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
    if color_type == 3:
        body += chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff")
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg(components: int = 3, exif: int = 0) -> bytes:
    """The start of a baseline JPEG: SOI, an APP1 segment of ``exif`` bytes, then the frame header."""
    out = b"\xff\xd8"
    out += b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    if exif:
        out += b"\xff\xe1" + struct.pack(">H", exif + 2) + b"\x00" * exif
    sof = struct.pack(">BHHB", 8, 16, 16, components) + b"".join(bytes((i + 1, 0x11, 0)) for i in range(components))
    out += b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
    return out + b"\xff\xda" + b"\x00" * 32 + b"\xff\xd9"


def webp() -> bytes:
    return b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8L" + b"\x00" * 22


def uri(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def example(*images: str, detail: str | None = None, role: str = "user") -> dict:
    parts = [{"type": "text", "text": "What is in this picture?"}]
    for url in images:
        image = {"url": url} if detail is None else {"url": url, "detail": detail}
        parts.append({"type": "image_url", "image_url": image})
    return {"messages": [SYSTEM, {"role": role, "content": parts}, {"role": "assistant", "content": "A chart."}]}


def vision(i: int = 0) -> dict:
    return example(f"https://example.com/{i}.png", detail="low")


@pytest.mark.parametrize("image", [
    uri(png(2)), uri(png(6)), uri(jpeg(3), "image/jpeg"), uri(jpeg(3), "image/jpg"), uri(jpeg(3, exif=60_000), "image/jpeg"),
    uri(webp(), "image/webp"), "https://example.com/a.jpg", "http://example.com/a.webp"])
def test_images_in_the_allowed_formats_are_accepted(image):
    report = run(dataset(vision, n=60, replace={4: example(image, detail="high")}), model=VISION_MODEL)
    assert report.valid, report.to_dict()["errors"]
    assert report.stats["examples_with_images"] == 60


@pytest.mark.parametrize("image,code,says", [
    (uri(png(0)), "image_not_rgb", "grayscale"),
    (uri(png(4)), "image_not_rgb", "grayscale with alpha"),
    (uri(png(3)), "image_not_rgb", "palette"),
    (uri(jpeg(1), "image/jpeg"), "image_not_rgb", "grayscale"),
    (uri(jpeg(4), "image/jpeg"), "image_not_rgb", "CMYK"),
    (uri(b"GIF89a" + b"\x00" * 20, "image/gif"), "unsupported_image_format", "image/gif"),
    (uri(b"BM" + b"\x00" * 40, "image/bmp"), "unsupported_image_format", "image/bmp"),
    (uri(b"GIF89a" + b"\x00" * 20, "image/png"), "unsupported_image_format", "bytes are a GIF image"),
    (uri(jpeg(3), "image/png"), "invalid_image_data", "write data:image/jpeg;base64"),
    (uri(b"hello, world"), "invalid_image_data", "not an image file"),
    ("data:image/png," + "%89PNG", "invalid_image_data", "not base64"),
    ("data:image/png;base64,iVBORw0KGgo*&^%", "invalid_image_data", "not valid base64"),
    ("data:image/png;base64", "invalid_image_data", "no ','"),
    ("data:image/png;base64,", "invalid_image_data", "no data"),
    ("data:;base64,AAAA", "unsupported_image_format", "of no type"),
])
def test_bad_inline_images_are_rejected_on_their_line(image, code, says):
    report = run(dataset(vision, n=12, replace={7: example(image)}), model=VISION_MODEL)
    assert codes_at(report) == [(7, code)], report.to_dict()["errors"]
    assert says in report.errors[0].message
    assert "user message 2, content part 2" in report.errors[0].message


def test_an_inline_image_is_at_most_10_mb_decoded():
    head = png(2)
    at_limit = head + b"\x00" * (10 * MB - len(head))
    assert check_data_uri(uri(at_limit)) is None
    over = uri(at_limit + b"\x00")
    code, message = check_data_uri(over)
    assert code == "image_too_large" and "10,485,761 bytes" in message and "10,485,760" in message
    report = run(dataset(vision, n=12, replace={3: example(over)}), model=VISION_MODEL)
    assert codes_at(report) == [(3, "image_too_large")]


def test_detail_is_low_high_or_auto():
    for detail in ("low", "high", "auto"):
        assert run(dataset(vision, n=12, replace={2: example("https://e.com/a.png", detail=detail)}),
                   model=VISION_MODEL).valid
    report = run(dataset(vision, n=12, replace={2: example("https://e.com/a.png", detail="ultra")}), model=VISION_MODEL)
    assert codes_at(report) == [(2, "invalid_image_detail")]
    assert '"detail": "ultra"' in report.errors[0].message


def test_at_most_64_images_per_example():
    urls = [f"https://example.com/{k}.png" for k in range(65)]
    assert run(dataset(vision, n=12, replace={5: example(*urls[:64])}), model=VISION_MODEL).valid
    report = run(dataset(vision, n=12, replace={5: example(*urls)}), model=VISION_MODEL)
    assert codes_at(report) == [(5, "too_many_images")]
    assert "to 65; an example may have at most 64" in report.errors[0].message
    # counted over the whole example, not per message
    two = example(*urls[:40])
    two["messages"][2:2] = [{"role": "assistant", "content": "More?"},
                            {"role": "user", "content": example(*urls[:30])["messages"][1]["content"]}]
    assert codes_at(run(dataset(vision, n=12, replace={5: two}), model=VISION_MODEL)) == [(5, "too_many_images")]


@pytest.mark.parametrize("role", ["system", "assistant"])
def test_images_only_in_user_messages(role):
    report = run(dataset(vision, n=12, replace={6: example("https://e.com/a.png", role=role)}), model=VISION_MODEL)
    assert codes_at(report)[0] == (6, "images_not_supported")
    assert "user messages only" in report.errors[0].message


@pytest.mark.parametrize("model,ok", [("gpt-4o-2024-08-06", True), ("gpt-4.1-2025-04-14", True),
                                      ("gpt-4.1-mini-2025-04-14", False), ("gpt-4.1-nano-2025-04-14", False),
                                      (CHAT_MODEL, False), ("Qwen-32B", False)])
def test_only_models_with_vision_fine_tuning_take_images(model, ok):
    assert load_catalogue().resolve(model).vision is ok
    report = run(dataset(vision, n=12), model=model)
    assert report.valid is ok
    if not ok:
        assert set(report.error_counts) == {"images_not_supported"} and "has no image (vision) fine-tuning" in (
            report.errors[0].message)


def test_at_most_50000_examples_with_images_per_file(monkeypatch):
    cat = load_catalogue()
    monkeypatch.setattr(cat, "vision", cat.vision._replace(max_image_examples_per_file=5))
    text = {"messages": [SYSTEM, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    report = run(dataset(vision, n=12, replace={1: text, 2: text | {"x": 1}}), model=VISION_MODEL)
    # lines 3-7 are the first five with images; 8-12 are over the limit
    assert [c for c in codes_at(report) if c[1] == "too_many_image_examples"] == [
        (n, "too_many_image_examples") for n in range(8, 13)]
    assert "example 6 with images" in report.errors[0].message


def test_images_in_a_preference_pairs_input():
    pair = {"input": {"messages": [SYSTEM, example(uri(png(2)))["messages"][1]]},
            "preferred_output": [{"role": "assistant", "content": "A bar chart of sales."}],
            "non_preferred_output": [{"role": "assistant", "content": "A picture."}]}
    report = run(dataset(lambda i: pair | {"id": i}, n=12), model=DPO_MODEL, method="dpo")
    assert report.stats["examples_with_images"] == 12
    bad = pair | {"input": {"messages": [SYSTEM, example(uri(png(0)))["messages"][1]]}}
    report = run(dataset(lambda i: pair, n=12, replace={4: bad}), model=DPO_MODEL, method="dpo")
    assert (4, "image_not_rgb") in codes_at(report)
