"""An upsert task is written in batches small enough to overlap encoding and writing."""

from __future__ import annotations

from es_core.config import Settings
from es_core.upsertion import write_batch_size


def test_a_large_write_goes_in_quarters_of_at_most_the_database_batch() -> None:
    settings = Settings(upsert_db_batch_size=256, upsert_min_pipeline_batch=32)
    assert write_batch_size(250, settings) == 63
    assert write_batch_size(2000, settings) == 256


def test_a_small_write_is_not_cut_below_the_pipeline_minimum() -> None:
    settings = Settings(upsert_db_batch_size=256, upsert_min_pipeline_batch=32)
    assert write_batch_size(100, settings) == 32
    assert write_batch_size(10, settings) == 32  # one batch
    assert write_batch_size(0, settings) == 32


def test_the_database_batch_still_bounds_a_batch() -> None:
    settings = Settings(upsert_db_batch_size=2, upsert_min_pipeline_batch=32)
    assert write_batch_size(100, settings) == 2
