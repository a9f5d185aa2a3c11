"""A synthetic marketplace catalogue, made by the product itself for the demo and tests.

Items are bilingual (Japanese and English) listings of products with feature labels
(waterproof, wireless, ...). Each label shows up in the text through one of several
phrasings, sometimes only in the description or the tags, and a small share of labels
is flipped so the task is not trivially separable. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from saikika.core.items import Item

PRODUCTS = {
    "en": [
        "backpack",
        "jacket",
        "speaker",
        "headphones",
        "watch",
        "mug",
        "lamp",
        "sneakers",
        "tent",
        "camera bag",
        "keyboard",
        "blanket",
        "water bottle",
        "toy car",
        "notebook",
        "sofa cushion",
        "phone case",
        "scarf",
    ],
    "ja": [
        "リュック",
        "ジャケット",
        "スピーカー",
        "ヘッドホン",
        "腕時計",
        "マグカップ",
        "ランプ",
        "スニーカー",
        "テント",
        "カメラバッグ",
        "キーボード",
        "ブランケット",
        "水筒",
        "ミニカー",
        "ノート",
        "クッション",
        "スマホケース",
        "マフラー",
    ],
}

FEATURES = {
    "waterproof": {
        "en": ["waterproof", "water-resistant", "rainproof", "IPX7 rated"],
        "ja": ["防水", "撥水加工", "雨に強い", "IPX7防水"],
    },
    "wireless": {
        "en": ["wireless", "Bluetooth", "cordless", "no cables needed"],
        "ja": ["ワイヤレス", "Bluetooth対応", "コードレス", "無線接続"],
    },
    "handmade": {
        "en": ["handmade", "hand-crafted", "made by hand", "artisan made"],
        "ja": ["ハンドメイド", "手作り", "職人の手仕事", "手縫い"],
    },
    "vintage": {
        "en": ["vintage", "retro", "from the 1970s", "antique style"],
        "ja": ["ヴィンテージ", "レトロ", "昭和レトロ", "アンティーク調"],
    },
    "organic": {
        "en": ["organic cotton", "organic", "natural materials", "chemical-free"],
        "ja": ["オーガニックコットン", "オーガニック", "天然素材", "無農薬素材"],
    },
    "kids": {
        "en": ["for kids", "child-safe", "for children", "ages 3+"],
        "ja": ["キッズ向け", "子供用", "こども向け", "3歳から"],
    },
    "portable": {
        "en": ["portable", "lightweight", "compact", "fits in a pocket"],
        "ja": ["持ち運び便利", "軽量", "コンパクト", "ポケットサイズ"],
    },
    "used": {
        "en": ["used", "pre-owned", "second-hand", "gently used"],
        "ja": ["中古", "ユーズド", "美品中古", "使用感あり"],
    },
}
# Introduced by feedback in the demo: the model has never seen it before.
NEW_FEATURES = {
    "limited-edition": {
        "en": ["limited edition", "numbered release", "only 100 made", "exclusive run"],
        "ja": ["限定品", "数量限定", "限定モデル", "シリアルナンバー入り"],
    },
}

FILLER = {
    "en": [
        "Ships within two days.",
        "Great as a gift.",
        "Colour may differ slightly from the photos.",
        "Please ask if you have any questions.",
        "Stored in a smoke-free home.",
        "Free shipping.",
    ],
    "ja": [
        "2日以内に発送します。",
        "プレゼントにもおすすめです。",
        "写真と色味が若干異なる場合があります。",
        "ご質問はお気軽にどうぞ。",
        "ペットなし・禁煙環境で保管。",
        "送料無料です。",
    ],
}
LABEL_NOISE = 0.02


def generate(
    n: int, seed: int = 7, *, features: dict | None = None, id_prefix: str = "item", noise: float = LABEL_NOISE
) -> Iterator[Item]:
    """Yield n labeled items. `features` defaults to FEATURES (add NEW_FEATURES to grow the label set).

    The same seed with `noise=0` yields the same items with their true labels: that is how the demo
    sends corrections as feedback.
    """
    rng = random.Random(seed)
    features = FEATURES if features is None else features
    names = sorted(features)
    for i in range(n):
        lang = rng.choice(("en", "ja"))
        product = rng.choice(PRODUCTS[lang])
        chosen = rng.sample(names, k=rng.choice((0, 1, 1, 2, 2, 3)))
        phrases = {label: rng.choice(features[label][lang]) for label in chosen}
        in_title = [label for label in chosen if rng.random() < 0.6]
        title_bits = [phrases[label] for label in in_title] + [product]
        title = " ".join(title_bits) if lang == "en" else "".join(f"【{p}】" for p in title_bits[:-1]) + product
        sentences = [phrases[label] for label in chosen if label not in in_title or rng.random() < 0.5]
        sentences = [f"This {product} is {p}." if lang == "en" else f"この{product}は{p}です。" for p in sentences]
        sentences += rng.sample(FILLER[lang], k=2)
        rng.shuffle(sentences)
        tags = [product] + [phrases[label] for label in chosen if rng.random() < 0.3]
        # Draw every random number whatever `noise` is, so noisy and clean runs stay aligned.
        labels = {label for label in chosen if rng.random() >= noise}
        spurious = rng.choice(names)
        if rng.random() < noise:
            labels.add(spurious)
        yield Item(
            id=f"{id_prefix}-{seed}-{i:06d}",
            title=title,
            description=" ".join(sentences),
            tags=tuple(tags),
            labels=tuple(sorted(labels)),
        )
