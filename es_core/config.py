"""Settings, read once from ``ES_*`` environment variables and passed in from there."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the platform. Empty URLs mean "start the embedded part"."""

    model_config = SettingsConfigDict(env_prefix="ES_", extra="ignore")

    data_dir: Path = Field(default=Path(".es-data"), description="where embedded parts keep data")
    postgres_dsn: str = Field(default="", description="external PostgreSQL; empty = embedded")
    redis_url: str = Field(default="", description="external Redis; empty = embedded")
    redis_port: int = Field(default=6390, description="port of the embedded Redis")
    # The Redis password, kept apart from the URL so that no URL logged or shown carries it;
    # ``es up`` generates the embedded Redis's and hands it to its children this way.
    redis_password: SecretStr = SecretStr("")
    # The account the embedded Redis runs as when ``es up`` runs as root (it never runs as root).
    redis_user: str = "nobody"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051

    # Security (README "Security"). "required": every RPC but the open services needs an API
    # key (authorization: Bearer <token>) of a role the RPC asks for; "off": none is asked for,
    # which the server allows only while it listens on loopback.
    auth: Literal["off", "required"] = "off"
    # How long a server trusts a key's row before reading it again: a revoked key works at
    # most this long after RevokeApiKey.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Services any caller may use, with or without a key.
    auth_open_services: list[str] = Field(
        default_factory=lambda: [
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc.reflection.v1.ServerReflection",
        ]
    )
    # TLS: the server's certificate chain and key (PEM); both or neither.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # With it, callers must present a client certificate this CA signed (mutual TLS).
    tls_client_ca_file: Path | None = None
    # A proxy in front terminates TLS: the server may listen beyond loopback in plaintext.
    behind_tls_proxy: bool = False
    # es up (also `es up --tls`) makes a local CA and a server certificate in data_dir/tls and
    # serves TLS with them, unless ES_TLS_CERT_FILE names a certificate already.
    local_tls: bool = False
    # es up (also `es up --mtls`) serves mutual TLS: as local_tls, and callers must present a
    # client certificate the local CA signed (or one ES_TLS_CLIENT_CA_FILE's CA signed). es up
    # makes data_dir/tls/client.pem and client-key.pem for its own readiness probe and for the
    # operator; with ES_TLS_CLIENT_CA_FILE set, es up does the same without this setting.
    local_mtls: bool = False

    # Observability (README "Observability"). Prometheus /metrics on this host and port
    # (0 = off): the server on metrics_port, a worker on worker_metrics_port (0 = the
    # server's port + 1, so both fit on one host).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # "json": every process logs one JSON object per line (time, level, logger, message,
    # request_id and task_id when known).
    log_format: Literal["text", "json"] = "text"
    # OpenTelemetry traces are sent here (OTLP over gRPC) when set; OTEL_EXPORTER_OTLP_ENDPOINT
    # counts too. Empty = no tracing.
    otel_exporter_otlp_endpoint: str = ""

    db_pool_min_size: int = 1
    db_pool_max_size: int = 10

    # Budgets: what one caller can make the server and the database spend.
    # Calls in flight at once; one more is refused with RESOURCE_EXHAUSTED.
    grpc_max_concurrent_rpcs: int = Field(default=100, ge=1)
    # The server pings an idle connection this often and drops it if no answer comes in time.
    grpc_keepalive_seconds: float = Field(default=60.0, gt=0)
    grpc_keepalive_timeout_seconds: float = Field(default=20.0, gt=0)
    # A connection is closed (GOAWAY) after this age, its calls given the grace to finish:
    # clients reconnect, so load spreads over servers and no connection lives forever. The
    # grace is as long as the stream caps below, so a stream ends by its own cap, not by this.
    grpc_max_connection_age_seconds: float = Field(default=3600.0, gt=0)
    grpc_max_connection_age_grace_seconds: float = Field(default=600.0, gt=0)
    # Unary calls: a call with no deadline gets the default; a longer one is cut to the maximum.
    rpc_default_deadline_seconds: float = Field(default=30.0, gt=0)
    rpc_max_deadline_seconds: float = Field(default=120.0, gt=0)
    # Searches (Search, SearchByPayload, CountItems, FindSimilarItems, PredictCategories) run
    # filters a caller writes: they get their own pool, so they cannot starve the other calls.
    db_search_pool_max_size: int = Field(default=6, ge=1)
    # PostgreSQL statement_timeout per role of query: the server's searches, its other calls,
    # and the workers' tasks (0 = no limit). A statement past it is cancelled.
    db_search_statement_timeout_seconds: float = Field(default=10.0, ge=0)
    db_api_statement_timeout_seconds: float = Field(default=30.0, ge=0)
    db_worker_statement_timeout_seconds: float = Field(default=3600.0, ge=0)
    # How long a request waits for a pooled connection before it is told the database is busy.
    db_acquire_timeout_seconds: float = Field(default=5.0, gt=0)
    # The most a filter may cost per row it reads (es_core/filters/cost.py says what costs what).
    max_filter_cost: int = Field(default=1024, ge=1)
    # WatchTask ends with DEADLINE_EXCEEDED after this long, the task's latest state sent;
    # the caller watches again to go on.
    watch_task_max_seconds: float = Field(default=600.0, gt=0)
    # StreamEvents: the longest one stream may stay open and the most messages it may carry.
    stream_events_max_seconds: float = Field(default=600.0, gt=0)
    stream_events_max_messages: int = Field(default=10_000, ge=1)
    # Combinations a fine-tuning request's hyperparameter space may have (product of the
    # candidate counts), checked before any trial is drawn.
    max_hyperparameter_combinations: int = Field(default=4096, ge=1)
    # The server's health service follows PostgreSQL, the broker and Triton: each is probed
    # this often, and one that does not answer within the timeout counts as down.
    health_check_seconds: float = Field(default=5.0, gt=0)
    health_check_timeout_seconds: float = Field(default=2.0, gt=0)
    # Every process brings the schema up to date when it starts (under an advisory lock). With
    # false, migrations are the operator's step (`es migrate`, the Kubernetes Job): a process
    # waits up to migration_wait_seconds for the schema its release needs, then exits saying
    # which migrations are pending; an old release never migrates a newer database's schema.
    migrate_on_start: bool = True
    migration_wait_seconds: float = Field(default=300.0, ge=0)

    # Limits enforced at the API edge.
    max_items_per_request: int = 1000
    max_payload_bytes: int = 64 * 1024
    max_parts_per_item: int = 256
    max_text_chars: int = 100_000
    max_object_id_chars: int = 256
    # Session, event and batch ids, and the collection and model a reindex names.
    max_id_chars: int = Field(default=128, ge=1)
    max_user_id_chars: int = Field(default=256, ge=1)
    max_search_limit: int = 1000
    # A query's text, searched or recorded with a session.
    max_query_chars: int = 4096
    default_search_limit: int = 10
    max_filter_depth: int = 16
    max_filter_clauses: int = 1024
    # List RPCs (tasks, sessions, collections, models): page_size 0 means the default, and a
    # larger one is cut to the maximum (AIP-158); ranking spec versions have their own maximum.
    default_page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    max_ranking_specs_page_size: int = Field(default=500, ge=1)
    # Page tokens are HMAC-signed (es_core/page_tokens.py): a comma-separated list of secrets of
    # at least 16 characters each; the first signs, every one verifies, so a key is rotated by
    # putting a new one first and dropping the old one once the tokens it signed are used up.
    # Empty = one key generated on first start and kept in the database, which every server
    # process (on any host) then shares.
    page_token_keys: SecretStr = Field(default=SecretStr(""), description="page token keys")

    # Upsertion.
    encode_batch_size: int = 64
    # What runs the models, in this process and in Triton (es_core/encoders/backends.py):
    # "torch" (sentence-transformers), "onnx" (ONNX Runtime, float32), "onnx-int8" (ONNX
    # Runtime, weights quantized to int8) or "openvino" (OpenVINO on the float32 ONNX file, at
    # OpenVINO's default CPU precision: bfloat16 where the CPU has it natively, else float32;
    # the default, for the speed bench.encode measures, see the README). A fine-tuned version
    # runs it only when its judged NDCG@10 on the deploy gate's held-out queries is at most
    # encoder_backend_max_ndcg_drop below the float model's (measured when it is registered
    # and kept with it; otherwise it runs torch). Models with no such measurement (the
    # built-in base model) run it as set; bench.encode measures them.
    encoder_backend: Literal["torch", "onnx", "onnx-int8", "openvino"] = "openvino"
    encoder_backend_max_ndcg_drop: float = 0.005
    # Threads one ONNX Runtime / OpenVINO model uses; 0 = the runtime's default (every core).
    encoder_threads: int = Field(default=0, ge=0)
    # Where ONNX exports of models that ship none are kept (None: <data_dir>/models/exports).
    # Exports are named for the model's path and weights, so several stacks may share one.
    exports_dir: Path | None = None
    upsert_db_batch_size: int = 256
    # A write of more items than four times this is written in quarters (at most
    # upsert_db_batch_size items each), each encoded while the one before is written.
    upsert_min_pipeline_batch: int = Field(default=32, ge=1)
    splitter_max_words: int = 128
    splitter_overlap_words: int = 16

    # Content by reference (es_core/loaders): where each loader reads, with what credentials.
    # Credentials come only from here or the environment; a request never carries one, and
    # no error or result shows one.
    # S3 or any S3-compatible store; empty endpoint = AWS. Empty keys = boto3's own chain
    # (environment, profile, instance role).
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr = SecretStr("")
    s3_secret_access_key: SecretStr = SecretStr("")
    # Google Cloud Storage; empty endpoint = Google. Empty credentials file = application
    # default credentials, or anonymous when an endpoint (an emulator) is set.
    gcs_endpoint_url: str = ""
    gcs_project: str = ""
    gcs_credentials_file: Path | None = None
    # PostgreSQL sources by name (JSON object: name -> DSN); a request names a source, never a DSN.
    postgres_sources: dict[str, SecretStr] = Field(default_factory=dict)
    # Directories the file loader may read under; empty = the file loader reads nothing.
    file_roots: list[Path] = Field(default_factory=list)
    # URL prefixes the http loader may fetch (e.g. "https://cdn.example.com/docs/"); empty =
    # it fetches nothing (a worker must not be a way into the internal network).
    http_allowed_prefixes: list[str] = Field(default_factory=list)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    # The most one item's content may be (an object, a file, a URL's body); larger fails it.
    loader_max_item_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    # Items per page of an import: each page is fetched, encoded and written in one
    # transaction with the import's checkpoint.
    import_page_size: int = Field(default=256, ge=1, le=10_000)
    # Items stored by reference keep their text in the parts (for lexical ranking,
    # fine-tuning and reindex); false keeps only vectors and the reference, and a reindex
    # reads the text again from the source.
    keep_referenced_text: bool = True

    # Search.
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 100
    hnsw_max_scan_tuples: int = 20_000
    # Past this many candidate parts a search scores every matching item exactly instead.
    exact_search_after_candidates: int = 20_000

    # Ranking. PostgreSQL text search configuration of new collections' lexical index.
    text_search_config: str = "english"
    # Candidates each retriever gives a hybrid ranking when its spec leaves the window at 0;
    # a hybrid ranking's pages end after the fused window.
    ranking_window: int = Field(default=50, ge=1, le=1000)
    max_ranking_window: int = Field(default=1000, ge=1)
    # Fitting fusion weights from clicks (the ranking fit task, also run on a schedule).
    ranking_fit_seconds_interval: float = Field(default=24 * 3600.0, ge=0)
    ranking_fit_min_sessions: int = Field(default=20, ge=2)
    ranking_fit_max_sessions: int = Field(default=5000, ge=2)
    ranking_fit_test_fraction: float = Field(default=0.2, gt=0, lt=1)
    # Position bias the fit corrects clicks for: rank r (0-based) is assumed looked at with
    # probability 1 / (1 + r) ** this (0 = no correction). 0.5 measured best on SciFact with
    # simulated cascade clicks (bench.quality_hybrid: 1 leaned too far to words, 0 to vectors).
    ranking_fit_position_bias: float = Field(default=0.5, ge=0, le=4)
    # A learned spec goes live only when its held-out NDCG@10 beats the live one's by more.
    ranking_gate_margin: float = Field(default=0.005, ge=0)

    # Tasks.
    task_lease_seconds: float = 60.0
    task_resend_after_seconds: float = 600.0
    task_max_attempts: int = 3
    sweeper_interval_seconds: float = 10.0
    task_watch_poll_seconds: float = 0.25
    # WatchTask wakes on PostgreSQL notifications of task changes (one listening connection
    # per server); it re-reads the task on this slower timer too, in case one was lost.
    task_watch_notify: bool = True
    task_watch_fallback_seconds: float = Field(default=5.0, gt=0)

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
    # Trust region: the most (L2) one adjustment may move a part vector; inf turns it off.
    improvement_max_step: float = Field(default=0.2, gt=0)
    # Push passed-over results only down to the session's lowest clicked one (noise guard).
    improvement_skip_floor: bool = True
    delete_user_copies_on_upsert: bool = True

    # Suggestions that learn (es_core/suggestions/harvest.py): the queries of sessions with a
    # positive event become phrases of the "clickstream" domain. Off: the beat does not run
    # the harvest and a harvest called anyway writes nothing (phrases already harvested stay).
    suggestions_harvest: bool = True
    suggestions_harvest_interval_seconds: float = Field(default=600.0, ge=1)
    # Only sessions created this recently count.
    suggestions_harvest_lookback_seconds: float = Field(default=30 * 24 * 3600.0, gt=0)
    # A success this old counts half as much as one now.
    suggestions_harvest_half_life_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    # A query is harvested only once this many distinct user ids succeeded with it, so
    # one user's typing is never shown to another: never fewer than 2.
    suggestions_harvest_min_users: int = Field(default=2, ge=2)
    # A harvested phrase whose weight falls below this leaves the clickstream domain.
    suggestions_harvest_min_weight: float = Field(default=0.1, gt=0, lt=1)
    # Limits on a query's normalised text (the dictionary allows 256 characters).
    suggestions_harvest_min_chars: int = Field(default=2, ge=1, le=256)
    suggestions_harvest_max_chars: int = Field(default=100, ge=1, le=256)

    # Reindex: a green collection filled from another, re-encoded by its own model.
    # The source's items are split into this many key ranges, copied by parallel subtasks.
    reindex_parallelism: int = Field(default=4, ge=1, le=64)
    # Items per page; each page is read, re-encoded and written in one transaction.
    reindex_batch_size: int = Field(default=256, ge=1, le=10_000)
    # Users' improved copies in the source, fixed when a reindex starts: "drop" (the
    # destination starts with originals only; new sessions improve it again) or "recompute"
    # (once the reindex is done, an improvement task rebuilds them in the destination from the
    # users' sessions, their queries encoded by the destination's model).
    reindex_user_copies: Literal["drop", "recompute"] = "drop"

    # Bulk fills (a reindex's green collection; a large import into a collection that is not
    # read by default): rows first, the HNSW index built once at the end with this much
    # maintenance_work_mem (a PostgreSQL size: the graph should fit, else the build spills
    # and slows down) and this many parallel maintenance workers.
    index_build_maintenance_work_mem: str = Field(
        default="1GB", pattern=r"^[0-9]+ ?(kB|MB|GB|TB)?$"
    )
    index_build_parallel_workers: int = Field(default=2, ge=0, le=64)
    # An import goes the bulk way into a collection that is neither blue nor the rollback
    # target when it expects at least this many items and more than the collection holds.
    bulk_import_min_items: int = Field(default=10_000, ge=1)

    # Plugins: the fine-tuning method (entry point group ``embedding_studio.plugins``) by name.
    plugin: str = "text-minilm"
    # The categories method (entry point group ``embedding_studio.categories_plugins``).
    categories_plugin: str = "text"

    # Categories (the built-in "text" categories method reads these).
    # Payload field naming an item's category (what fine-tuning from clicks will read).
    categories_field: str = Field(default="category", min_length=1, max_length=256)
    # What is encoded to place a category: its text (its name when the text is empty), or
    # always its name.
    categories_text: Literal["text", "name"] = "text"
    # Calibrated softmax temperature over negative cosine distances: with 0.05 a category 0.05
    # closer than another is e (2.7) times as probable.
    categories_temperature: float = Field(default=0.05, gt=0, le=100)
    # The default selector: probability at least this (with the calibrated temperature).
    categories_min_probability: float = Field(default=0.05, ge=0, lt=1)
    # The most categories one categories collection holds: probabilities are computed exactly
    # over all of them on every prediction.
    categories_max_per_collection: int = Field(default=10_000, ge=1, le=100_000)

    # MLflow: empty URI = sqlite store and local artifacts under ``data_dir/mlflow``.
    mlflow_tracking_uri: str = ""
    mlflow_experiment: str = "embedding-studio"
    # ``es up --mlflow-ui`` serves the MLflow UI on localhost at this port.
    mlflow_ui_port: int = 5000

    # Fine-tuning.
    fine_tuning_test_fraction: float = Field(default=0.2, gt=0, lt=1)
    fine_tuning_max_trials: int = Field(default=4, ge=1)
    # The deploy gate: the model in service answers the held-out queries from the collection;
    # the candidate ranks the whole collection (past gate_max_items items, the in-service
    # model's top gate_pool_per_query per query, plus what was shown and clicked: it encodes
    # every item it ranks, about 18 abstracts a second on two cores, once per trial); a trained
    # model is deployable only when the lower bound of its paired-bootstrap NDCG@10 gain (at
    # gate_confidence) is above gate_margin (absolute).
    fine_tuning_gate_margin: float = Field(default=0.0, ge=0)
    fine_tuning_gate_confidence: float = Field(default=0.95, gt=0, lt=1)
    fine_tuning_gate_max_items: int = Field(default=2000, ge=1)
    fine_tuning_gate_pool_per_query: int = Field(default=30, ge=10, le=1000)
    fine_tuning_seed: int = 0
    fine_tuning_batch_size: int = 16
    fine_tuning_max_seq_length: int = 128
    # Hard negatives mined per training query: the nearest never-clicked items of the whole
    # collection by the model in service (``es_core.fine_tuning.mining``); 0 = only the items
    # shown above a click.
    fine_tuning_mined_negatives: int = Field(default=5, ge=0)
    fine_tuning_min_examples: int = 4

    # Inference through Triton. Empty URL = the Triton ``es up`` starts (it passes its gRPC
    # address to the server and workers as ES_TRITON_URL); a set URL = an external Triton.
    triton_url: str = Field(default="", description="Triton gRPC address host:port; empty = local")
    serve_with_triton: bool = Field(
        default=True, description="es up serves models from a local Triton; False = in-process"
    )
    triton_host: str = "127.0.0.1"
    triton_grpc_port: int = 8001
    triton_http_port: int = 8000
    triton_metrics_port: int = 8002
    # Rows per inference request; also the served models' max_batch_size.
    triton_batch_size: int = Field(default=64, ge=1, le=4096)
    # Seconds one inference request may take before the call fails.
    triton_timeout_seconds: float = Field(default=60.0, gt=0)
    # Most model versions deployed at once (each holds its two encoders in Triton's memory).
    max_deployed_models: int = Field(default=3, ge=1)
    # How often the local Triton process looks for deploys and undeploys in the catalogue.
    triton_poll_seconds: float = Field(default=1.0, gt=0)
    # How long a deployment task waits for Triton to load or unload a model's encoders.
    deployment_timeout_seconds: float = Field(default=300.0, gt=0)

    # deploy_as_blue: after the switch, delete the collection that was the rollback target until
    # then (it stopped receiving writes at that switch) and so undeploy its model. Without it,
    # every promotion keeps one more model deployed, and max_deployed_models soon stops them.
    promotion_delete_stale: bool = True

    # Online interleaving of green and blue (team-draft). The share of live searches that may
    # be interleaved (first pages of text searches that create a session and name no
    # collection), 0 = only when a request asks for it.
    interleaving_share: float = Field(default=0.0, ge=0, le=1)
    # Confidence of the verdict's sign test and interval (0.95: p < 0.05 decides).
    interleaving_confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # deploy_as_blue waits for an interleaving verdict before its switch: green better
    # switches; blue better, or no verdict after the limits below, keeps blue.
    promotion_wait_for_interleaving: bool = False
    # It asks only at planned looks (this many decided sessions, then twice that, ... up to
    # interleaving_max_sessions), the error split among them, lest asking at every session
    # find a difference that is not there.
    interleaving_first_look: int = Field(default=10, ge=1)
    interleaving_max_sessions: int = Field(default=2000, ge=1)
    interleaving_max_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)

    # ``es up`` restarts a child that died (worker, beat, server, Triton, MLflow UI) after
    # restart_backoff_seconds, doubled at each failure up to restart_max_backoff_seconds, and
    # gives up (stops the stack, exit code 1) at restart_max_failures within restart_window_seconds.
    restart_backoff_seconds: float = Field(default=1.0, gt=0)
    restart_max_backoff_seconds: float = Field(default=30.0, gt=0)
    restart_max_failures: int = Field(default=5, ge=1)
    restart_window_seconds: float = Field(default=300.0, gt=0)

    @field_validator("page_token_keys")
    @classmethod
    def _page_token_keys_long_enough(cls, value: SecretStr) -> SecretStr:
        if any(len(key) < 16 for key in _split_keys(value)):
            raise ValueError("ES_PAGE_TOKEN_KEYS: every key must be at least 16 characters")
        return value

    @property
    def page_token_key_list(self) -> list[bytes]:
        """The configured page token keys, signing key first; empty when none is set."""
        return [key.encode() for key in _split_keys(self.page_token_keys)]

    @property
    def broker_url(self) -> str:
        """The configured Redis, else the embedded one on loopback; with the password when one
        is set and the URL has none. Never log it: log ``redacted_url(...)``."""
        url = self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"
        password = self.redis_password.get_secret_value()
        parts = urlsplit(url)
        if not password or parts.password is not None:
            return url
        user = quote(parts.username or "", safe="")
        netloc = f"{user}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
        return urlunsplit(parts._replace(netloc=netloc))

    def require_postgres_dsn(self) -> str:
        """Server and workers never start a database themselves: ``es up`` hands them a DSN."""
        if not self.postgres_dsn:
            raise RuntimeError("ES_POSTGRES_DSN is not set; start the stack with `es up`")
        return self.postgres_dsn

    @property
    def resolved_worker_metrics_port(self) -> int:
        """The port a worker serves /metrics on; 0 = metrics off."""
        if self.metrics_port == 0 and self.worker_metrics_port == 0:
            return 0
        return self.worker_metrics_port or self.metrics_port + 1

    @property
    def metrics_multiproc_root(self) -> Path:
        """Where workers keep prometheus_client's per-process files (one directory per worker)."""
        return self.data_dir / "metrics"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        """The configured tracking server, else the sqlite store in the data directory."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return (self.mlflow_dir / "artifacts").resolve()

    @property
    def models_cache_dir(self) -> Path:
        """Where model versions downloaded from MLflow are kept, one directory per model id."""
        return self.data_dir / "models"

    @property
    def embedded_postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def local_tls_dir(self) -> Path:
        """Where ``es up --tls`` keeps the local CA and the server's certificate."""
        return self.data_dir / "tls"

    @property
    def embedded_redis_dir(self) -> Path:
        return self.data_dir / "redis"


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for logs and files others read."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


def _split_keys(value: SecretStr) -> list[str]:
    return [key.strip() for key in value.get_secret_value().split(",") if key.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
