"""Settings, built once per process and passed down (pydantic-settings, env prefix ``WANFLOW_``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True)
class EngineOptions:
    """How the generation engine runs on this worker: device, memory policy, budget and batch bound."""

    device: str = "auto"
    policy: str = "auto"  # or a memory policy to start from (adapters.memory.Policy)
    budget_gb: float | None = None  # CPU: simulate a card this size; CUDA: cap what is planned
    max_batch: int = 4
    # speed preset (governance.speed): the deployment's default, the CLI's override, and the preset knobs
    speed: str = "plain"
    speed_override: str | None = None
    speed_compile: bool = True
    speed_step_cache: str = "first_block"
    speed_cache_threshold: float | None = None
    speed_fp8: bool = True
    speed_distill_lora: str | None = None


class Settings(BaseSettings):
    """Everything wanflow reads from the environment.

    Paths default to folders under ``home`` so that one variable moves the whole embedded stack.
    """

    model_config = SettingsConfigDict(env_prefix="WANFLOW_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".wanflow"), description="Catalog DB, MLflow store, assets, model cache.")
    catalog_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under home.")
    mlflow_tracking_uri: str | None = Field(default=None, description="Default sqlite:///<home>/mlflow.db.")
    publish_dir: Path | None = Field(default=None, description="Local delivery folder; default <home>/published.")
    brands_dir: Path | None = Field(default=None, description="Brand profiles; default: brands/ beside the brief.")
    device: str = Field(default="auto", description="torch device for generation: auto, cpu, cuda, cuda:N.")
    wan_tiny_seed: int = Field(default=0, description="Seed of the stand-in model's random weights.")
    review_session_hours: float = Field(default=12.0, description="Dashboard sign-in lifetime.")
    secure_cookies: bool = Field(default=False, description="Mark dashboard cookies Secure (serve over HTTPS).")
    dashboard_workers: int = Field(default=1, ge=1, le=64, description="Dashboard processes (`review serve --workers`).")
    sign_in_max_failures: int = Field(default=5, ge=1, description="Failed sign-ins of one name that pause its "
                                                                   "sign-in for the rest of the window.")
    sign_in_window_minutes: float = Field(default=15.0, gt=0, description="Window for sign_in_max_failures.")
    # --- languages (core/i18n.py): a user's own setting wins, then the browser's Accept-Language, then this ---
    locale: Literal["en", "ja"] = Field(default="en", description="Default language of the dashboard and reports.")
    timezone: str = Field(default="UTC", description="IANA time zone of the dates shown (e.g. Asia/Tokyo).")
    # QC models, each a local folder (never downloaded); a check whose model is not set is recorded "not run"
    clip_model: Path | None = Field(default=None, description="CLIP folder: text-video alignment, forbidden elements.")
    aesthetic_model: Path | None = Field(default=None, description="LAION-style aesthetic predictor (.safetensors/.pth).")
    subject_model: Path | None = Field(default=None, description="DINO/DINOv2 or CLIP folder: subject consistency.")
    safety_model: Path | None = Field(default=None, description="Image classifier folder: unsafe content.")
    qc_device: str = Field(default="cpu", description="torch device for the QC models (QC overlaps generation).")
    memory_policy: Literal["auto", "none", "vae_tiling", "model_cpu_offload", "group_offload_block",
                           "group_offload_leaf"] = Field(
        default="auto", description="auto: chosen from the card's free memory; else the policy to start from.")
    memory_budget_gb: float | None = Field(
        default=None, gt=0, description="CUDA: cap on what generation plans to use; CPU: simulate a card of this size.")
    max_batch_size: int = Field(default=4, ge=1, le=64, description="Upper bound on clips per batch.")
    # --- speed presets (governance/speed.py, adapters/speed.py); docs/performance.md has the measurements ---
    speed: Literal["plain", "fast", "turbo"] = Field(
        default="plain", description="Speed preset when neither `wanflow run --speed` nor the brief names one.")
    speed_override: Literal["plain", "fast", "turbo"] | None = Field(
        default=None, description="Speed preset for every job of this process (set by `wanflow run --speed`).")
    speed_compile: bool = Field(default=True, description="fast/turbo: compile the repeated transformer blocks.")
    speed_step_cache: Literal["first_block", "taylorseer"] = Field(
        default="first_block", description="turbo: diffusers' step cache hook.")
    speed_cache_threshold: float | None = Field(
        default=None, gt=0, description="turbo: FirstBlockCache threshold (default 0.1) or TaylorSeer interval (3).")
    speed_fp8: bool = Field(default=True, description="turbo: FP8 linear layers where the card has FP8 units.")
    speed_distill_lora: Path | None = Field(
        default=None, description="turbo: a step-distillation LoRA folder (weights + distill.json: steps, guidance).")
    # --- delivery (wan_tasks/publish.py, destinations.py, provenance.py) ---
    presets_file: Path | None = Field(default=None, description="Rendition presets YAML; default wan_tasks/renditions.yaml.")
    publish_to: str | None = Field(default=None, description="Destination: a folder (default publish_dir) or s3://bucket/prefix.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint; credentials from the AWS_* variables.")
    webhook_url: str | None = Field(default=None, description="CMS webhook that receives each campaign's manifest (POST JSON).")
    c2pa_key: Path | None = Field(default=None, description="C2PA signing key (PEM).")
    c2pa_cert_chain: Path | None = Field(default=None, description="C2PA certificate chain (PEM, signer first).")
    c2pa_trust_anchors: Path | None = Field(default=None, description="PEM roots trusted when verifying.")
    c2pa_tsa_url: str | None = Field(default=None, description="RFC 3161 time-stamp authority for signatures.")
    c2pa_alg: str = Field(default="es256", description="Signing algorithm of the key: es256, es384, ps256, ed25519, ...")
    temp_grace_s: float = Field(default=3600.0, ge=0, description="Temporary files of killed writes older than this "
                                "are removed at the start of run and publish, by db upgrade and db sweep.")
    encode_workers: int = Field(default=0, ge=0, description="Parallel encoder processes; 0 = the CPU count.")
    watermark_method: Literal["rivaGan", "dwtDct", "none"] = Field(
        default="rivaGan", description="Invisible watermark of every video rendition (docs/provenance.md); none: "
                                       "fingerprint only.")
    require_watermark: bool = Field(default=False, description="The destination requires the watermark: publish "
                                    "refuses a rendition whose watermark does not read back.")
    publish_retries: int = Field(default=2, ge=0, description="Retries of a failed delivery before it is recorded as failed.")
    publish_retry_delay_s: float = Field(default=2.0, ge=0, description="Seconds between delivery retries.")
    # --- fleet (wan_tasks/worker.py, flows/shard.py, catalog/claims.py) ---
    gpu_slot: str = Field(default="wanflow-gpu-0", description="Prefect global concurrency limit of this worker's card.")
    worker_name: str | None = Field(default=None, description="Fleet worker name; default host:pid.")
    shard_size: int = Field(default=4, ge=1, le=1024, description="Jobs a GPU worker claims at once.")
    lease_s: float = Field(default=120.0, gt=0, description="A claim not renewed for this long may be taken over.")
    max_claims: int = Field(default=3, ge=1, description="A job whose lease expired this often is failed as poison.")
    slot_lease_s: float = Field(default=300.0, ge=60, description="Lease of a held GPU slot on the Prefect server (≥ 60).")
    slot_timeout_s: float | None = Field(default=None, gt=0, description="Give up waiting for a GPU slot after this.")
    # --- rollout (wan_tasks/rollout.py, flows/rollout.py) ---
    gpu_price_per_hour: float = Field(default=2.50, ge=0, description="Price of one GPU-hour (cost per approved clip).")
    rollout_policy: Path | None = Field(default=None, description="Rollout gates YAML used when evaluate names none.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v.upper() != "UTC":
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {v!r} (an IANA name such as Asia/Tokyo)") from exc
        return v

    @cached_property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def catalog_db_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.home_dir / 'catalog.db'}"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.home_dir / "mlartifacts"

    @property
    def assets_dir(self) -> Path:
        return self.home_dir / "assets"

    @property
    def models_dir(self) -> Path:
        return self.home_dir / "models"

    @property
    def delivery_dir(self) -> Path:
        return (self.publish_dir or self.home_dir / "published").expanduser().resolve()

    @property
    def engine_options(self) -> EngineOptions:
        return EngineOptions(device=self.device, policy=self.memory_policy, budget_gb=self.memory_budget_gb,
                             max_batch=self.max_batch_size, speed=self.speed, speed_override=self.speed_override,
                             speed_compile=self.speed_compile, speed_step_cache=self.speed_step_cache,
                             speed_cache_threshold=self.speed_cache_threshold, speed_fp8=self.speed_fp8,
                             speed_distill_lora=str(self.speed_distill_lora) if self.speed_distill_lora else None)

    @property
    def dev_ca_dir(self) -> Path:
        """Where `wanflow demo` keeps its development CA (tests make their own)."""
        return self.home_dir / "dev-ca"

    def ensure_dirs(self) -> None:
        for d in (self.home_dir, self.assets_dir, self.models_dir, self.mlflow_artifacts_dir):
            d.mkdir(parents=True, exist_ok=True)
