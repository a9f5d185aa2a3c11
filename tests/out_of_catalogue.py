"""Short texts unlike the synthetic catalogue: other products, other languages' words, single words, numbers,
emoji, a URL. None says any of the catalogue's features (waterproof, wireless, handmade, ...) in any phrasing."""

from __future__ import annotations

from saikika.core.items import Item

TEXTS = [
    "bicycle",
    "guitar strings",
    "dog food 5kg",
    "garden hose",
    "office chair",
    "frying pan",
    "printer ink cartridge",
    "yoga mat",
    "car tyres",
    "light bulb",
    "Fahrrad",
    "bonjour",
    "кошка",
    "सेब",
    "여름",
    "自転車",
    "天気",
    "ありがとう",
    "the",
    "banana",
    "hello",
    "ok",
    "a",
    "12345",
    "3.14",
    "0",
    "2026-12-01",
    "🎉",
    "🐶🐱",
    "👍",
    "https://example.com/item?id=1",
    "www.saikika.test",
    "lorem ipsum dolor sit amet",
    "?!",
    "mug",
    "tent",
]


def items() -> list[Item]:
    return [Item(id=f"ooc-{i}", title=text) for i, text in enumerate(TEXTS)]
