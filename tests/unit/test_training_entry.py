"""`saikika.model.training.train_from`, the one way the CLI, the retrain function and the training job train: where
in memory ends and streaming begins, in batches of STREAM_BATCH_ROWS, and the errors a data set too small gets."""

from __future__ import annotations

import pytest

from saikika.core.errors import SaikikaError
from saikika.core.items import Item
from saikika.model import catalogue, training
from saikika.model.training import LabelPolicy, TrainingDataError, TrainingMode, train_from

ROWS = list(catalogue.generate(300, seed=21))


class Reads:
    """The rows, read again for every call (as a pass over the files is), the reads counted."""

    def __init__(self, rows: list[Item]):
        self.rows, self.reads = rows, 0

    def __call__(self):
        self.reads += 1
        return iter(self.rows)


def test_up_to_the_bound_trains_in_memory_with_one_read():
    reads = Reads(ROWS)
    result = train_from(reads, in_memory_rows=len(ROWS))
    assert result.mode is TrainingMode.IN_MEMORY and result.model.rows_used == len(ROWS)
    assert reads.reads == 1


def test_past_the_bound_streams_every_row():
    reads = Reads(ROWS)
    result = train_from(reads, in_memory_rows=len(ROWS) - 1)
    assert result.mode is TrainingMode.STREAMED and result.model.rows_used == len(ROWS)
    assert reads.reads > 3  # the head that decided, the count, then the epochs of both fits


def test_a_known_row_count_decides_without_reading_ahead():
    hinted, unhinted = Reads(ROWS), Reads(ROWS)
    assert train_from(hinted, in_memory_rows=10, rows=len(ROWS)).mode is TrainingMode.STREAMED
    assert train_from(unhinted, in_memory_rows=10).mode is TrainingMode.STREAMED
    assert hinted.reads == unhinted.reads - 1  # no head read
    in_memory = Reads(ROWS)
    assert train_from(in_memory, in_memory_rows=len(ROWS), rows=len(ROWS)).mode is TrainingMode.IN_MEMORY
    assert in_memory.reads == 1


def test_rows_as_a_list_train_either_way():
    assert train_from(ROWS, in_memory_rows=len(ROWS)).mode is TrainingMode.IN_MEMORY
    assert train_from(ROWS, in_memory_rows=100).mode is TrainingMode.STREAMED


def test_streams_in_batches_of_stream_batch_rows():
    assert [len(b) for b in training.batches(iter(range(12_001)), training.STREAM_BATCH_ROWS)] == [5_000, 5_000, 2_001]
    assert training.STREAM_BATCH_ROWS == 5_000


@pytest.mark.parametrize("in_memory_rows", [len(ROWS), 10], ids=["in memory", "streamed"])
def test_fewer_rows_than_the_minimum_is_a_training_data_error_either_way(in_memory_rows):
    with pytest.raises(TrainingDataError, match=f"{len(ROWS)} valid rows, fewer than SAIKIKA_RETRAIN_MIN_ROWS=301"):
        train_from(ROWS, in_memory_rows, min_rows=301)


def test_the_error_is_a_saikika_error_and_a_value_error():
    assert issubclass(TrainingDataError, SaikikaError) and issubclass(TrainingDataError, ValueError)
    assert training.TrainingDataError is TrainingDataError


def test_the_label_error_says_what_each_kind_of_label_needs():
    rows = [Item(id=f"x{i}", title=f"mug {i}", labels=("known",) if i % 2 else ("new",)) for i in range(40)]
    rows[0] = Item(id="x0", title="mug", labels=("new",))
    rare = [r for r in rows if r.labels != ("new",)] + rows[:5]
    policy = LabelPolicy(new_label_min_support=10, known=frozenset({"known"}))
    with pytest.raises(TrainingDataError) as raised:
        train_from(rare, 1_000, policy=policy)
    message = str(raised.value)
    assert "a label the champion does not know needs 10 examples, SAIKIKA_NEW_LABEL_MIN_SUPPORT=10" in message
    assert "one it knows needs 3" in message
