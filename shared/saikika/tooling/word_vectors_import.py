"""A word-vectors file (`saikika.model.word_vectors`) from a spaCy vocabulary: a model package's `vocab` folder,
or the package's wheel as PyPI serves it (read in place, nothing installed, spaCy not needed).

The vectors the livedoor titles were measured with are chiVe's (Works Applications, Apache-2.0) as the `ja-ginza`
wheel ships them (5.3.0: 480,443 words sharing 20,000 rows of 300 float32, stored here scaled, as float16): `make word-vectors` downloads that
wheel and writes `.cache/word-vectors/ja-ginza-5.3.0.npz`.

spaCy stores `vocab/strings.json` (every string), `vocab/key2row` (msgpack: a string's 64-bit key → its row) and
`vocab/vectors` (a .npy matrix); a key is MurmurHash64A (seed 1) of the string's UTF-8, so the strings are hashed
here to find each key's word.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from saikika.model.word_vectors import WordVectors

_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def murmurhash64a(data: bytes, seed: int = 1) -> int:
    """MurmurHash64A (Austin Appleby), as spaCy's `hash_string` computes it with seed 1."""
    h = (seed ^ (len(data) * _M)) & _MASK
    blocks = len(data) // 8
    for block in range(blocks):
        k = int.from_bytes(data[8 * block : 8 * block + 8], "little")
        k = (k * _M) & _MASK
        k ^= k >> 47
        k = (k * _M) & _MASK
        h = ((h ^ k) * _M) & _MASK
    tail = data[8 * blocks :]
    if tail:
        h = ((h ^ int.from_bytes(tail, "little")) * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


def _vocab_files(source: Path) -> dict[str, bytes]:
    """strings.json, key2row and vectors of the one `vocab` folder in `source` (a folder or a wheel)."""
    names = ("strings.json", "key2row", "vectors")
    if source.is_dir():
        found = sorted(p.parent for p in source.rglob("vocab/key2row"))
        if len(found) != 1:
            raise ValueError(f"{source}: expected one vocab/key2row, found {len(found)}")
        return {name: (found[0] / name).read_bytes() for name in names}
    with zipfile.ZipFile(source) as wheel:
        folders = sorted({n.rsplit("/", 1)[0] for n in wheel.namelist() if n.endswith("/vocab/key2row")})
        if len(folders) != 1:
            raise ValueError(f"{source}: expected one vocab/key2row, found {len(folders)}")
        return {name: wheel.read(f"{folders[0]}/{name}") for name in names}


def from_spacy_vocab(source: Path, weight: float = 1.0) -> WordVectors:
    import msgpack

    files = _vocab_files(source)
    key2row: dict[int, int] = msgpack.unpackb(files["key2row"], strict_map_key=False)
    vectors = np.load(io.BytesIO(files["vectors"]), allow_pickle=False)
    words, rows = [], []
    for string in json.loads(files["strings.json"]):
        row = key2row.get(murmurhash64a(string.encode("utf-8", "surrogatepass")))
        if row is not None:
            words.append(string)
            rows.append(row)
    if len(words) < len(key2row) * 0.99:
        raise ValueError(
            f"{source}: only {len(words)} of {len(key2row)} vector keys matched a string (not spaCy's "
            "MurmurHash64A keys?)"
        )
    # Scaled so that a typical word vector (the median row) has length 1: `weight` then means the same whatever the
    # vectors' own scale (chiVe's median row is 3.77 long; a livedoor title's mean vector then about 0.42). float16
    # halves the file (a component keeps three significant digits; livedoor titles scored the same).
    table = vectors.astype(np.float64)
    table /= np.median(np.linalg.norm(table, axis=1)) or 1.0
    return WordVectors.from_words(words, np.asarray(rows, dtype=np.int64), table.astype(np.float16), weight=weight)
