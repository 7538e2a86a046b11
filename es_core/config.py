"""Settings, read once from ``ES_*`` environment variables and passed in from there."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the platform. Empty URLs mean "start the embedded part"."""

    model_config = SettingsConfigDict(env_prefix="ES_", extra="ignore")

    data_dir: Path = Field(default=Path(".es-data"), description="where embedded parts keep data")
    postgres_dsn: str = Field(default="", description="external PostgreSQL; empty = embedded")
    redis_url: str = Field(default="", description="external Redis; empty = embedded")
    redis_port: int = Field(default=6390, description="port of the embedded Redis")
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051

    db_pool_min_size: int = 1
    db_pool_max_size: int = 10

    # Limits enforced at the API edge.
    max_items_per_request: int = 1000
    max_payload_bytes: int = 64 * 1024
    max_parts_per_item: int = 256
    max_text_chars: int = 100_000
    max_object_id_chars: int = 256
    max_search_limit: int = 1000
    default_search_limit: int = 10
    max_filter_depth: int = 16
    max_filter_clauses: int = 1024

    # Upsertion.
    encode_batch_size: int = 64
    upsert_db_batch_size: int = 256
    splitter_max_words: int = 128
    splitter_overlap_words: int = 16

    # Search.
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 100
    hnsw_max_scan_tuples: int = 20_000
    # Past this many candidate parts a search scores every matching item exactly instead.
    exact_search_after_candidates: int = 20_000

    # Tasks.
    task_lease_seconds: float = 60.0
    task_resend_after_seconds: float = 600.0
    task_max_attempts: int = 3
    sweeper_interval_seconds: float = 10.0
    task_watch_poll_seconds: float = 0.25

    # Clickstream.
    max_meta_bytes: int = 16 * 1024
    session_max_age_seconds: float = 30 * 24 * 3600
    session_max_future_seconds: float = 300
    # Weight of each event type as a positive signal; types not listed count 0 (ignored).
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0}
    )

    # Improvement: per-user copies of item vectors, adjusted from clicks.
    improvement_seconds_interval: float = 60.0
    improvement_batch_size: int = 200
    improvement_adjustment_rate: float = 0.001
    improvement_num_iterations: int = 10
    improvement_softmin_temperature: float = 1.0
    delete_user_copies_on_upsert: bool = True

    @property
    def broker_url(self) -> str:
        """The configured Redis, else the embedded one on loopback."""
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    def require_postgres_dsn(self) -> str:
        """Server and workers never start a database themselves: ``es up`` hands them a DSN."""
        if not self.postgres_dsn:
            raise RuntimeError("ES_POSTGRES_DSN is not set; start the stack with `es up`")
        return self.postgres_dsn

    @property
    def embedded_postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def embedded_redis_dir(self) -> Path:
        return self.data_dir / "redis"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
