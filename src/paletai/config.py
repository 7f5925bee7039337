"""One Settings object, read from the environment and `.env`.

The names are the old App Service settings (DB_PATH, OPENAI_API_KEY, ...) so that the settings
exported from the old app apply unchanged to the new one; new settings get clear names.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

AIProviderName = Literal["openai", "azure-openai", "anthropic", "offline"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}

# Values that people leave in templates; refused wherever a real secret is required.
PLACEHOLDER_SECRETS = {"changeme", "change-me", "changethis", "secret", "your-secret-key", "..."}


def _legacy_bool(value: Any) -> Any:
    """App Service stores booleans as text: accept True/False/true/1/0 (and yes/no)."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected True/False/true/false/1/0, got {value!r}")
    return value


def _csv_list(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            import json

            return json.loads(value)
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


LegacyBool = Annotated[bool, BeforeValidator(_legacy_bool)]
CsvList = Annotated[list[str], NoDecode, BeforeValidator(_csv_list)]


class Settings(BaseSettings):
    """Every setting the service and the operations kit read."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
        populate_by_name=True,
    )

    # --- identity -------------------------------------------------------------------------
    APP_NAME: str = "PaletAI"
    ENVIRONMENT: Literal["local", "test", "production"] = "local"

    # --- database (legacy name: DB_PATH is the MongoDB URI) ---------------------------------
    DB_PATH: SecretStr | None = Field(default=None, description="MongoDB URI; unset = embedded")
    DB_NAME: str | None = Field(default=None, description="database name when the URI has none")
    PALETAI_DATA_DIR: Path = Path(".paletai")
    PALETAI_DB_PORT: int | None = Field(
        default=None, ge=1, le=65535, description="embedded database's port; unset = a free one"
    )
    PALETAI_DB_RESTART_DELAY_SECONDS: float = Field(
        default=1.0, ge=0, le=60, description="pause before `serve` restarts a dead embedded db"
    )

    # --- AI ---------------------------------------------------------------------------------
    AI_PROVIDER: AIProviderName | None = None
    OPENAI_API_KEY: SecretStr | None = None
    OPENAI_MODEL: str = "gpt-4o"
    OPENAI_BASE_URL: str | None = None
    AZURE_OPENAI_ENDPOINT: str | None = None
    AZURE_OPENAI_API_KEY: SecretStr | None = None
    AZURE_OPENAI_MODEL: str = "gpt-4o"
    AZURE_OPENAI_API_VERSION: str = "2024-10-21"
    ANTHROPIC_API_KEY: SecretStr | None = None
    ANTHROPIC_MODEL: str = "claude-sonnet-4-5"
    ANTHROPIC_BASE_URL: str | None = None
    IS_ANTHROPIC_ENDPOINT: LegacyBool = False
    IS_OPENAI_ENDPOINT: LegacyBool = False
    ENABLE_STREAMING: LegacyBool = False
    STREAMING_THINKING_TOKENS: int = Field(default=0, ge=0)
    AI_MAX_OUTPUT_TOKENS: int = Field(default=16000, ge=256)
    AI_TIMEOUT_SECONDS: float = Field(default=240.0, gt=0)
    AI_MAX_RETRIES: int = Field(default=4, ge=0, le=20)
    AI_RETRY_BASE_SECONDS: float = Field(default=1.0, ge=0)

    # --- limits -----------------------------------------------------------------------------
    DAILY_PROMPT_LIMIT: int = Field(default=20, ge=0)
    # A 2,000-character prompt is at most ~24 KB of JSON even with every character escaped.
    MAX_BODY_BYTES: int = Field(default=64 * 1024, ge=1024, description="413 past this")
    MAX_JSON_DEPTH: int = Field(default=32, ge=2, description="400 for deeper JSON bodies")
    MAX_HEADER_BYTES: int = Field(
        default=16 * 1024, ge=1024, description="request line + headers; larger is refused"
    )
    HTTP_HEADER_TIMEOUT_SECONDS: float = Field(
        default=10.0, gt=0, description="a connection must send a whole request head within"
    )
    HTTP_KEEP_ALIVE_SECONDS: int = Field(default=5, ge=1, description="idle keep-alive close")

    # --- storage ----------------------------------------------------------------------------
    IS_LOCAL_ENV: LegacyBool = False
    AZURE_STORAGE_CONNECTION_STRING: SecretStr | None = None
    AZURE_STORAGE_ACCOUNT_URL: str | None = None
    AZURE_STORAGE_CONTAINER: str = "game-images"
    PUBLIC_BASE_URL: str | None = Field(
        default=None, description="external base URL of the API, used in absolute links"
    )

    # --- push -------------------------------------------------------------------------------
    ONESIGNAL_APP_ID: str | None = None
    ONESIGNAL_REST_API_KEY: SecretStr | None = None
    ONESIGNAL_API_URL: str = "https://api.onesignal.com"

    # --- telemetry --------------------------------------------------------------------------
    APPLICATIONINSIGHTS_CONNECTION_STRING: SecretStr | None = None
    OTEL_SERVICE_NAME: str | None = None
    LOG_LEVEL: str = "INFO"

    # --- security ---------------------------------------------------------------------------
    JWT_SECRET_KEY: SecretStr | None = None
    JWT_EXPIRE_MINUTES: int = Field(default=60 * 24 * 7, ge=1)
    CORS_ORIGINS: CsvList = Field(default_factory=lambda: ["*"])
    LOGIN_MAX_FAILURES: int = Field(
        default=5, ge=1, description="failed logins for one account from one address before 429"
    )
    LOGIN_WINDOW_SECONDS: int = Field(default=300, ge=1)
    LOGIN_MAX_FAILURES_PER_IP: int = Field(default=30, ge=1)
    LOGIN_ACCOUNT_SLOWDOWN_AFTER: int = Field(
        default=10, ge=1, description="failures for one account (any address) before logins slow"
    )
    LOGIN_ACCOUNT_MAX_DELAY_SECONDS: float = Field(default=3.0, ge=0, le=30)
    REGISTER_MAX_PER_IP: int = Field(default=20, ge=1)
    REGISTER_MAX_TOTAL: int = Field(default=200, ge=1, description="registrations, all addresses")
    REGISTER_WINDOW_SECONDS: int = Field(default=3600, ge=1)
    PASSWORD_HASH_CONCURRENCY: int | None = Field(
        default=None, ge=1, le=256, description="argon2 hashes at once per process; unset = cores"
    )
    PASSWORD_HASH_WAIT_SECONDS: float = Field(default=2.0, ge=0, le=60)
    FORWARDED_ALLOW_IPS: CsvList = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="proxies whose X-Forwarded-For is believed: addresses, networks or *",
    )
    ADMIN_TOKEN: SecretStr | None = None

    # --- jobs -------------------------------------------------------------------------------
    WORKER_MODE: Literal["inprocess", "external"] = "inprocess"
    WORKER_CONCURRENCY: int = Field(default=4, ge=1, le=256)
    TASK_LEASE_SECONDS: float = Field(default=30.0, gt=0)
    TASK_MAX_ATTEMPTS: int = Field(default=3, ge=1, le=20)
    WORKER_POLL_SECONDS: float = Field(default=0.5, gt=0)
    WORKER_SHUTDOWN_GRACE_SECONDS: float = Field(
        default=10.0, ge=0, description="on SIGTERM, time to finish running tasks before release"
    )
    # --- covers and the playability check (headless Chromium) -------------------------------
    COVER_MODE: Literal["auto", "screenshot", "card"] = Field(
        default="auto",
        description="auto/screenshot: a screenshot of the game when Chromium runs, else the card",
    )
    PLAYABILITY_CHECK: Literal["auto", "off"] = Field(
        default="auto", description="auto: run each game in Chromium (when present) before publish"
    )
    CHROMIUM_PATH: str | None = Field(
        default=None, description="the Chromium executable; unset = /usr/bin/chromium if present"
    )
    COVER_PROCESSES: int = Field(
        default=2, ge=0, le=16, description="processes rendering covers; 0 = threads in-process"
    )
    # Test aid: sleep this long inside generation so a test can kill a worker mid-task.
    GENERATION_TEST_DELAY_SECONDS: float = Field(default=0.0, ge=0)

    @field_validator("DB_PATH", mode="before")
    @classmethod
    def _empty_uri_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("DB_PATH")
    @classmethod
    def _uri_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if not raw.startswith(("mongodb://", "mongodb+srv://")):
                raise ValueError("must be a MongoDB URI starting with mongodb:// or mongodb+srv://")
            problem = uri_problem(raw)
            if problem:
                raise ValueError(f"is not a valid MongoDB URI: {problem}")
        return value

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.0/8), nor *"
                ) from None
        return value

    # --- derived ----------------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.ENVIRONMENT == "production"

    @property
    def ai_provider(self) -> AIProviderName:
        """The provider in force: AI_PROVIDER, else the legacy flags, else offline."""
        if self.AI_PROVIDER:
            return self.AI_PROVIDER
        if self.IS_ANTHROPIC_ENDPOINT and self.ANTHROPIC_API_KEY:
            return "anthropic"
        if self.IS_OPENAI_ENDPOINT or self.AZURE_OPENAI_ENDPOINT or self.OPENAI_API_KEY:
            if self.AZURE_OPENAI_ENDPOINT and self.AZURE_OPENAI_API_KEY:
                return "azure-openai"
            if self.OPENAI_API_KEY:
                return "openai"
        if self.ANTHROPIC_API_KEY and not self.OPENAI_API_KEY:
            return "anthropic"
        return "offline"

    @property
    def uses_blob_storage(self) -> bool:
        if self.IS_LOCAL_ENV:
            return False
        return bool(self.AZURE_STORAGE_CONNECTION_STRING or self.AZURE_STORAGE_ACCOUNT_URL)

    @property
    def data_dir(self) -> Path:
        return self.PALETAI_DATA_DIR.expanduser().resolve()

    def problems(self) -> list[str]:
        """Every problem that would stop a production start, one line each."""
        out: list[str] = []
        provider = self.ai_provider
        if provider == "openai" and not self.OPENAI_API_KEY:
            out.append("OPENAI_API_KEY: required when AI_PROVIDER=openai")
        if provider == "azure-openai":
            if not self.AZURE_OPENAI_ENDPOINT:
                out.append("AZURE_OPENAI_ENDPOINT: required when AI_PROVIDER=azure-openai")
            if not self.AZURE_OPENAI_API_KEY:
                out.append("AZURE_OPENAI_API_KEY: required when AI_PROVIDER=azure-openai")
        if provider == "anthropic" and not self.ANTHROPIC_API_KEY:
            out.append("ANTHROPIC_API_KEY: required when AI_PROVIDER=anthropic")
        if self.JWT_SECRET_KEY is not None:
            key = self.JWT_SECRET_KEY.get_secret_value()
            if key.lower() in PLACEHOLDER_SECRETS:
                out.append("JWT_SECRET_KEY: is a placeholder value; set a random secret")
            elif len(key) < 32:
                out.append("JWT_SECRET_KEY: must be at least 32 characters")
        if self.is_production:
            if self.DB_PATH is None:
                out.append("DB_PATH: required in production (the MongoDB URI)")
            if self.JWT_SECRET_KEY is None:
                out.append("JWT_SECRET_KEY: required in production")
            if self.ADMIN_TOKEN is not None and len(self.ADMIN_TOKEN.get_secret_value()) < 16:
                out.append("ADMIN_TOKEN: must be at least 16 characters")
        if self.ONESIGNAL_APP_ID and not self.ONESIGNAL_REST_API_KEY:
            out.append("ONESIGNAL_REST_API_KEY: required when ONESIGNAL_APP_ID is set")
        return out

    def jwt_secret(self) -> str:
        """The JWT secret: from the settings, or generated once and kept in the data dir."""
        if self.JWT_SECRET_KEY is not None:
            return self.JWT_SECRET_KEY.get_secret_value()
        path = self.data_dir / "jwt-secret"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting at once agree on the first secret written.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def public_view(self) -> dict[str, Any]:
        """Settings for display: secrets masked, never their values."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        out["(ai provider in force)"] = self.ai_provider
        out["(image storage)"] = "azure-blob" if self.uses_blob_storage else "local"
        return out


def uri_problem(uri: str) -> str | None:
    """What the driver would refuse in this MongoDB URI (None when it parses), in one line."""
    import warnings

    from pymongo.errors import ConfigurationError

    # The very parse AsyncMongoClient(uri) runs (pymongo.uri_parser's checks, no SRV DNS lookup:
    # reachability is the start-up's business); it only warns about unknown options, so do we.
    from pymongo.uri_parser_shared import _validate_uri

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _validate_uri(uri, validate=True, warn=True, normalize=False)
    except (ConfigurationError, ValueError, TypeError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


class SettingsError(Exception):
    """Settings that cannot start the service; the message is one line per problem."""


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"{name}: {err['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's report into one line per bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
