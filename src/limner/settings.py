"""Configuration: one pydantic-settings root, ``LIMNER_`` environment variables (nested
with ``__``, e.g. ``LIMNER_GRPC__MAX_RECEIVE_MESSAGE_BYTES``) over an optional TOML file
(providers and models live there), over defaults. Secrets are ``SecretStr``: never logged,
never returned."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class GrpcSettings(BaseModel):
    max_receive_message_bytes: int = 32 * 1024 * 1024
    max_send_message_bytes: int = 32 * 1024 * 1024
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000
    # Must not exceed clients' keepalive interval or the server answers GOAWAY.
    min_ping_interval_without_data_ms: int = 10_000
    max_connection_idle_ms: int = 0
    max_connection_age_ms: int = 0
    reflection: bool = True


class ApiKey(BaseModel):
    """An API key and the workspace its requests act in."""

    key: SecretStr
    workspace: str = "default"


class AuthSettings(BaseModel):
    """With no keys, auth is off and every request acts in the ``default`` workspace."""

    api_keys: list[ApiKey] = Field(default_factory=list)


class JobSettings(BaseModel):
    heartbeat_interval_s: float = 10.0
    timeout_s: float = 900.0
    max_attempts: int = 3
    default_provider_concurrency: int = 4
    preview_interval_s: float = 0.5
    # Queue positions are published at most this often per waiting job.
    queue_report_interval_s: float = 0.25
    # While a provider that reports no progress works, a learnt ETA is published this often.
    estimate_interval_s: float = 1.0
    # How long a process's claim on a job lasts without renewal (it renews every third of
    # it). After that, another process sharing the database takes the job over.
    lease_s: float = 30.0


class AssetSettings(BaseModel):
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 64 * 1024 * 1024
    chunk_bytes: int = 1024 * 1024
    download_timeout_s: float = 60.0


class HttpSettings(BaseModel):
    """The one HTTP client every provider call and result download shares."""

    # "httpx": httpx's own transport (httpcore + h11). "aiohttp": the same httpx API over
    # aiohttp's connector and parser (httpx-aiohttp), which reads large answers (2 MB of
    # base64 JSON) with a third of the CPU; see bench/bench_http.py.
    transport: Literal["httpx", "aiohttp"] = "aiohttp"
    max_connections: int = 256
    max_keepalive_connections: int = 64
    # Provider answers read and parsed at once (0: no limit); the others wait in the
    # sockets' buffers. Bounds memory when many jobs' answers arrive together: 256 answers
    # of 2 MB each peaked at ~1 GB without it (bench/bench_http.py).
    max_answers_in_memory: int = 8


class ShutdownSettings(BaseModel):
    # Health reports NOT_SERVING for this long before the port closes, so load balancers
    # and probes see the drain before connections are refused.
    drain_s: float = 1.0
    # In-flight RPCs and jobs get this long to finish before they are interrupted.
    grace_s: float = 10.0


class OfflineProviderSettings(BaseModel):
    steps: int = 8
    step_delay_s: float = 0.05


class ProviderSettings(BaseModel):
    """One provider endpoint. ``kind`` names the adapter."""

    kind: str
    base_url: str = ""
    api_key: SecretStr | None = None
    extra_headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = 120.0
    max_retries: int = 3
    max_concurrent_jobs: int = 4
    # How often to poll providers that report progress by polling (AUTOMATIC1111).
    progress_poll_s: float = 0.25


class ModelProfileSettings(BaseModel):
    max_reference_images: int = 0
    supported_sizes: list[str] = Field(default_factory=list)
    default_size: str = "1024x1024"
    supports_seed: bool = False
    supports_negative_prompt: bool = False
    supports_edit: bool = False
    supports_mask: bool = False
    supports_previews: bool = False
    supports_sampling_parameters: bool = False
    supports_aspect_ratio: bool = False
    max_images_per_request: int = 1


ModalityName = Literal["text", "image"]


def _modalities(*names: ModalityName) -> list[ModalityName]:
    return list(names)


class ModelSettings(BaseModel):
    """A model declared in the configuration file."""

    id: str
    provider: str
    provider_model_id: str
    display_name: str = ""
    input_modalities: list[ModalityName] = Field(default_factory=lambda: _modalities("text"))
    output_modalities: list[ModalityName] = Field(default_factory=lambda: _modalities("image"))
    profile: ModelProfileSettings = Field(default_factory=ModelProfileSettings)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        import re

        if not re.match(r"^[a-z][a-z0-9-]{0,62}$", value):
            raise ValueError("model ids match [a-z][a-z0-9-]* (at most 63 characters)")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIMNER_", env_nested_delimiter="__", extra="ignore"
    )

    address: str = "127.0.0.1:50051"
    data_dir: Path = Path(".limner")
    database_url: str = ""
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    assets: AssetSettings = Field(default_factory=AssetSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
    offline: OfflineProviderSettings = Field(default_factory=OfflineProviderSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: list[ModelSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _models_name_providers(self) -> Settings:
        known = {"offline", *self.providers}
        for model in self.models:
            if model.provider not in known:
                raise ValueError(
                    f"model {model.id!r} names provider {model.provider!r}, which is not "
                    f"configured (known: {', '.join(sorted(known))})"
                )
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'limner.db').resolve()}"

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Builds settings from overrides > environment > ``config_file`` > defaults.
        ``LIMNER_CONFIG_FILE`` names the file when ``config_file`` is not given."""
        import os

        path = config_file or (
            Path(os.environ["LIMNER_CONFIG_FILE"]) if os.environ.get("LIMNER_CONFIG_FILE") else None
        )
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"configuration file {path} does not exist")

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            model_config = SettingsConfigDict(toml_file=path)

            @classmethod
            def settings_customise_sources(
                cls,
                settings_cls: type[BaseSettings],
                init_settings: PydanticBaseSettingsSource,
                env_settings: PydanticBaseSettingsSource,
                dotenv_settings: PydanticBaseSettingsSource,
                file_secret_settings: PydanticBaseSettingsSource,
            ) -> tuple[PydanticBaseSettingsSource, ...]:
                sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
                if path is not None:
                    sources += (TomlConfigSettingsSource(settings_cls),)
                return sources

        loaded = _FromFile(**overrides)
        return cls.model_validate(loaded.model_dump())
