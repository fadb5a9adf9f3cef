"""Configuration: one pydantic-settings root, ``LIMNER_`` environment variables (nested
with ``__``, e.g. ``LIMNER_GRPC__MAX_RECEIVE_MESSAGE_BYTES``) over an optional TOML file
(providers and models live there), over defaults. Secrets are ``SecretStr``: never logged,
never returned."""

from __future__ import annotations

import base64
import difflib
import logging
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from limner.startup import ExitCode, SettingProblem, mask_url, split_address


class Section(BaseModel):
    """The base of every settings section: a key that is no setting is an error, never
    silently ignored. (``limner.config`` also checks the TOML file and ``LIMNER_*``
    variables key by key, with the source and a close match, for any section.)"""

    model_config = ConfigDict(extra="forbid")


class GrpcSettings(Section):
    max_receive_message_bytes: int = 32 * 1024 * 1024
    max_send_message_bytes: int = 32 * 1024 * 1024
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000
    # Must not exceed clients' keepalive interval or the server answers GOAWAY.
    min_ping_interval_without_data_ms: int = 10_000
    max_connection_idle_ms: int = 0
    max_connection_age_ms: int = 0
    reflection: bool = True


class ApiKey(Section):
    """An API key and the workspace its requests act in."""

    key: SecretStr
    workspace: str = "default"


class AuthSettings(Section):
    """With no keys, auth is off and every request acts in the ``default`` workspace."""

    api_keys: list[ApiKey] = Field(default_factory=list)


class TlsSettings(Section):
    """TLS for the gRPC port. With a certificate and key the server speaks only TLS; with a
    client CA too, only clients presenting a certificate that CA signed get in (mTLS).
    The files (PEM) are read once, at start."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None


class JobSettings(Section):
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
    # How often each process looks for jobs to take over: jobs a stopping process released
    # are resumed elsewhere within this (at most a third of lease_s).
    claim_interval_s: float = 1.0


class AssetSettings(Section):
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 64 * 1024 * 1024
    chunk_bytes: int = 1024 * 1024
    download_timeout_s: float = 60.0


class HttpSettings(Section):
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


class ShutdownSettings(Section):
    # On SIGTERM: health reports NOT_SERVING for drain_s before the port closes, so load
    # balancers and probes see the drain before connections are refused. Then in-flight
    # RPCs and jobs get grace_s to finish; jobs still running are interrupted and handed
    # over (released for another process or the next start to resume). The process exits
    # about 0.5 s after drain_s + grace_s (2.5 s at most, when the database hangs): 7.5 s
    # with these defaults, inside `docker stop`'s 10 s. Raise the grace together with the
    # orchestrator's limit (README: Running in production, Shutdown and health).
    drain_s: float = 2.0
    grace_s: float = 5.0


class HealthSettings(Section):
    # Each dependency (limner.database, limner.assets, limner.jobs in the gRPC health
    # service) is checked this often, and when a health Check asks for it.
    interval_s: float = 5.0
    # A check that takes longer fails.
    timeout_s: float = 2.0


class MetricsSettings(Section):
    """Prometheus metrics at ``http://<address>/metrics``, on a port of their own."""

    # host:port (port 0 picks a free one; the server logs the bound address). "": off.
    address: str = ""

    @field_validator("address")
    @classmethod
    def _address_has_port(cls, value: str) -> str:
        if value:
            try:
                split_address(value)
            except ValueError as error:
                raise SettingProblem(str(error)) from None
        return value


class WebhookSettings(Section):
    """Signed webhooks (README: Webhooks). Without a ``secret`` they are off, and a request
    or workspace default that names one is refused (FAILED_PRECONDITION,
    ``WEBHOOKS_NOT_CONFIGURED``)."""

    # "whsec_" + base64 of 24 to 64 random bytes: every delivery is signed with it (Standard
    # Webhooks). One per server; never logged or returned.
    secret: SecretStr | None = None
    # While receivers move to a new secret, deliveries also carry a signature with each of
    # these (webhook-signature lists them space-separated).
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    # Targets that resolve to loopback, private, link-local or other non-public addresses
    # are refused unless this is true (a receiver on this host or the LAN; the tests).
    allow_private_addresses: bool = False
    # Progress deliveries: at most one per job this often (the first is posted at once,
    # those inside the interval are dropped; outcomes are always posted).
    progress_interval_s: float = 5.0
    # One attempt's time limit (connect, send, answer).
    timeout_s: float = 10.0
    # Retries: exponential backoff from first_retry_s, doubling up to max_retry_s (20 %
    # jitter), at least what a 429 or 503's Retry-After asks. A delivery is given up after
    # max_attempts, or when its next attempt would come more than retry_window_s after the
    # event. 410 Gone is never retried.
    first_retry_s: float = 2.0
    max_retry_s: float = 60.0
    max_attempts: int = 10
    retry_window_s: float = 300.0
    # Deliveries this process posts at once.
    max_concurrent: int = 16
    # How often to look for due deliveries (retries, those other processes queued, or left
    # pending by a stopped one); deliveries queued here are posted at once.
    poll_interval_s: float = 5.0

    @field_validator("secret", "previous_secrets")
    @classmethod
    def _standard_secret(cls, value: Any) -> Any:
        for secret in value if isinstance(value, list) else [value]:
            if secret is None:
                continue
            encoded = secret.get_secret_value()
            try:
                key = base64.b64decode(encoded.removeprefix("whsec_"), validate=True)
            except ValueError:
                key = b""
            if not encoded.startswith("whsec_") or not 24 <= len(key) <= 64:
                raise SettingProblem(
                    'a webhook secret is "whsec_" followed by the base64 of 24 to 64 random '
                    "bytes (README: Webhooks shows how to make one)"
                )
        return value


class OfflineProviderSettings(Section):
    steps: int = 8
    step_delay_s: float = 0.05


# Request fields an OpenAI-compatible server may take that carry a value from the job
# (README: OpenAI-compatible image servers). Anything else in `fields` is a setting error.
CompatibleImageField = Literal[
    "n", "size", "seed", "negative_prompt", "num_inference_steps", "guidance_scale"
]


class CompatibleImageOptions(Section):
    """What an OpenAI-compatible server's Images API takes (kind "openai-compatible").
    Unset keys of a model's entry fall back to the provider's, then to the default."""

    # Default ["n", "size"]. A value the job has for a field not listed is not sent and
    # becomes a PARAMETER_IGNORED warning; without "n", each image is its own request.
    fields: list[CompatibleImageField] | None = None
    # Default "b64_json"; "" sends no response_format (the server's default).
    response_format: Literal["b64_json", "url", ""] | None = None
    # Sent as given when set.
    quality: str | None = None
    output_format: str | None = None
    background: str | None = None
    # The multipart name of each input image of an edit; default "image".
    image_part: Literal["image", "image[]"] | None = None
    # Partial images as previews (stream + partial_images); default false.
    stream: bool | None = None


class CompatibleImageSettings(CompatibleImageOptions):
    # Per provider_model_id: `[providers.<id>.images.models."<provider_model_id>"]`.
    models: dict[str, CompatibleImageOptions] = Field(default_factory=dict)


class WorkflowSettings(Section):
    """A ComfyUI workflow in API format (kind ``comfyui``): the ``file`` (ComfyUI's "Export
    (API)"), and ``inputs``: the node input(s) each request field goes to, as
    ``"node_id.input_name"`` or a list of them. Read once, at start. README: Providers."""

    file: Path
    inputs: dict[str, str | list[str]] = Field(default_factory=dict)
    # The value of the "checkpoint" input, when the workflow maps one.
    checkpoint: str = ""


class ProviderSettings(Section):
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
    # ComfyUI: workflows by name. A model whose provider_model_id is one of these names runs
    # it; any other provider_model_id is a checkpoint for Limner's built-in workflows.
    workflows: dict[str, WorkflowSettings] = Field(default_factory=dict)
    # false: the provider (and the models it serves) is listed but unavailable; e.g.
    # [providers.offline] enabled = false turns off the built-in placeholder renderer.
    enabled: bool = True
    # Kind "openai-compatible" only: the header api_key is sent in (default Authorization),
    # its scheme (default "Bearer" in Authorization, none in any other header), and what
    # the server's Images API takes.
    auth_header: str | None = None
    auth_scheme: str | None = None
    images: CompatibleImageSettings | None = None

    @field_validator("auth_header", "auth_scheme", "images")
    @classmethod
    def _compatible_only(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is not None and kind != "openai-compatible":
            raise SettingProblem(
                f'{info.field_name} is a setting of kind "openai-compatible" only, not "{kind}"'
            )
        header_name = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
        if info.field_name == "auth_header" and not re.fullmatch(header_name, value or ""):
            raise SettingProblem(f'"{value}" is not an HTTP header name')
        return value

    @field_validator("workflows")
    @classmethod
    def _comfyui_only(
        cls, value: dict[str, WorkflowSettings], info: ValidationInfo
    ) -> dict[str, WorkflowSettings]:
        kind = info.data.get("kind")
        if value and kind is not None and kind != "comfyui":
            raise SettingProblem(f'workflows is a setting of kind "comfyui" only, not "{kind}"')
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        from limner.providers import PROVIDER_KINDS  # limner.providers imports this module

        if value not in PROVIDER_KINDS:
            close = difflib.get_close_matches(value, list(PROVIDER_KINDS), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise SettingProblem(
                f'unknown provider kind "{value}"{hint}; known kinds: '
                + ", ".join(sorted(PROVIDER_KINDS))
            )
        return value


class ModelProfileSettings(Section):
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


class ModelSettings(Section):
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

    @field_validator("output_modalities")
    @classmethod
    def _has_output(cls, value: list[ModalityName], info: ValidationInfo) -> list[ModalityName]:
        if not value:
            model = info.data.get("id", "")
            raise SettingProblem(
                f'model "{model}" has no output modality; list "image" and/or "text"'
            )
        return value


# The database URLs Limner works with: SQLite (any driver spelling) and PostgreSQL on asyncpg.
DATABASE_SCHEMES = frozenset(
    {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite", "postgresql+asyncpg"}
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIMNER_", env_nested_delimiter="__", extra="forbid"
    )

    address: str = "127.0.0.1:50051"
    data_dir: Path = Path(".limner")
    database_url: str = ""
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    assets: AssetSettings = Field(default_factory=AssetSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    offline: OfflineProviderSettings = Field(default_factory=OfflineProviderSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: list[ModelSettings] = Field(default_factory=list)

    @field_validator("address")
    @classmethod
    def _address_has_port(cls, value: str) -> str:
        try:
            split_address(value)
        except ValueError as error:
            raise SettingProblem(str(error)) from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise SettingProblem(
                f'"{value}" is not valid; expected "DEBUG", "INFO", "WARNING", "ERROR" or '
                '"CRITICAL"'
            )
        return level

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str) -> str:
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if not value or scheme in DATABASE_SCHEMES:
            return value
        postgres = "postgresql+asyncpg://USER:PASSWORD@HOST[:PORT]/DATABASE"
        if scheme.startswith("postgres"):
            message = f'"{mask_url(value)}": Limner talks to PostgreSQL through asyncpg; use '
        else:
            message = f'"{mask_url(value)}" is not a database URL Limner can use; use '
            message += "sqlite:///PATH or "
        raise SettingProblem(message + postgres, exit_code=ExitCode.DATABASE_URL)

    @model_validator(mode="after")
    def _models_name_providers(self) -> Settings:
        known = sorted({"offline", *self.providers})
        for index, model in enumerate(self.models):
            if model.provider not in known:
                close = difflib.get_close_matches(model.provider, known, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                raise SettingProblem(
                    f'model "{model.id}" names provider "{model.provider}", which is not '
                    f"configured{hint}; configured providers: {', '.join(known)}",
                    loc=("models", index, "provider"),
                )
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'limner.db').resolve()}"

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Builds settings from overrides > environment > ``config_file`` > defaults.
        ``LIMNER_CONFIG_FILE`` names the file when ``config_file`` is not given. Every
        mistake (unknown key, bad value, missing or malformed file) raises a
        ``limner.startup.StartupError`` whose lines name the key and its source."""
        from limner.config import load_settings

        return load_settings(cls, config_file, overrides)
