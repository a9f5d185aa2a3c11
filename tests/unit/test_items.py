import json

import pytest

from saikika.core.items import (
    BATCH_MAX_ITEMS,
    DESCRIPTION_MAX_CHARS,
    MESSAGE_MAX_BYTES,
    ItemError,
    parse_item,
    parse_message,
)


def test_single_item_and_unknown_fields_ignored():
    parsed = parse_message(json.dumps({"id": "a", "title": "防水バッグ", "price": 3, "tags": ["bag"]}).encode())
    assert parsed.problems == []
    [item] = parsed.items
    assert (item.id, item.title, item.tags) == ("a", "防水バッグ", ("bag",))
    assert item.labels is None


def test_batch_keeps_input_order():
    body = {"items": [{"id": str(i), "title": f"t{i}"} for i in range(5)]}
    parsed = parse_message(json.dumps(body).encode())
    assert [item.id for item in parsed.items] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1, 2]", "expected an item object"),
        (b'"text"', "expected an item object"),
        (b'{"items": {}}', "must be an array"),
        (b'{"items": []}', "1 to 1000"),
        (json.dumps({"items": [{"id": "x", "title": "t"}] * (BATCH_MAX_ITEMS + 1)}).encode(), "got 1001"),
        (b"x" * (MESSAGE_MAX_BYTES + 1), "more than the limit"),
    ],
)
def test_message_level_problems(data, reason):
    parsed = parse_message(data)
    assert parsed.items == []
    assert len(parsed.problems) == 1
    assert reason in parsed.problems[0].error
    assert parsed.problems[0].index is None


@pytest.mark.parametrize(
    "item, reason",
    [
        ({"title": "no id"}, "'id' must be a string"),
        ({"id": "", "title": "t"}, "'id' must be a string"),
        ({"id": "x" * 257, "title": "t"}, "'id' must be a string"),
        ({"id": 5, "title": "t"}, "'id' must be a string"),
        ({"id": "a"}, "at least one of"),
        ({"id": "a", "title": "  ", "description": "", "tags": [" "]}, "at least one of"),
        ({"id": "a", "title": 3}, "'title' must be a string"),
        ({"id": "a", "tags": "red"}, "'tags' must be a list"),
        ({"id": "a", "tags": ["ok", 1]}, "'tags[1]' must be a string"),
        ({"id": "a", "description": "x" * (DESCRIPTION_MAX_CHARS + 1)}, "more than the limit"),
        ("just a string", "must be a JSON object"),
    ],
)
def test_item_problems(item, reason):
    with pytest.raises(ItemError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_item(item)


def test_partially_valid_batch_reports_index_and_id():
    body = {"items": [{"id": "ok", "title": "t"}, {"id": "bad"}, 7, {"id": "ok2", "tags": ["x"]}]}
    parsed = parse_message(json.dumps(body).encode())
    assert [item.id for item in parsed.items] == ["ok", "ok2"]
    assert [(p.index, p.id) for p in parsed.problems] == [(1, "bad"), (2, None)]


def test_labeled_items_need_labels_and_dedupe_them():
    with pytest.raises(ItemError, match="'labels' is required"):
        parse_item({"id": "a", "title": "t"}, labeled=True)
    item = parse_item({"id": "a", "title": "t", "labels": ["x", "y", "x"]}, labeled=True)
    assert item.labels == ("x", "y")
    assert parse_item({"id": "a", "title": "t", "labels": []}, labeled=True).labels == ()


def test_model_text_joins_all_fields():
    item = parse_item({"id": "a", "title": "T", "description": "D", "tags": ["x", "y"]})
    assert item.text() == "T\nD\nx y"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x1c", "\x0b", "\r"])
def test_a_record_holding_a_line_separator_stays_one_line(separator, tmp_path):
    # `dumps` writes non-ASCII as it is, so a title may hold U+2028 or U+0085 raw: `str.splitlines` would cut the
    # record there; `jsonl.lines` splits at "\n" alone.
    from saikika.cloud import data_files
    from saikika.core import jsonl

    records = [{"id": f"i{n}", "title": f"a{separator}b", "labels": ["kids"]} for n in range(3)]
    text = jsonl.dumps(records)
    assert [json.loads(line) for line in jsonl.lines(text)] == records
    path = tmp_path / "rows.jsonl"
    path.write_text(text, encoding="utf-8", newline="")
    rows = data_files.load_rows([str(path)])
    assert [item.title for item in rows.items] == [f"a{separator}b"] * 3 and rows.invalid == []
