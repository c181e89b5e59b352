"""Settings: built once at start-up from an environment mapping, validated, frozen.

Only the CLI reads `os.environ` (and an optional `.env`); everything else receives a `Settings`.
A bad value raises `SettingsError`, whose message is one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from billing.config import (
    DEFAULT_METER_EVENTS_PER_SECOND,
    MAX_METER_EVENTS_PER_SECOND,
    STRIPE_API_BASE,
    BillingConfig,
    MailConfig,
    OAuthConfig,
)
from billing.errors import ConfigurationError
from billing.store import DEFAULT_POOL_MAX, DEFAULT_POOL_MIN, is_postgres_url, sqlite_path
from billing.tier_file import load_tier_file
from billing.tiers import DEFAULT_TIERS, TIER_NAMES, TierTable
from billing.tokens import ALGORITHM, MIN_SECRET_BYTES

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_SESSION_IDLE_TIMEOUT = 1800
DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_INTEL_SOURCES = ("https://api.llama.fi/hacks",)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_RECONCILE_INTERVAL = 3600.0
DEFAULT_INTEL_REFRESH_INTERVAL = 6 * 3600.0
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SettingsError(Exception):
    """A setting is missing or unusable; `str()` is one line naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(repr=False)  # a PostgreSQL URL may carry a password: see database_label
    database_path: Path | None  # the SQLite file; None when the store is PostgreSQL
    public_url: str
    # None: use (or create) the secret file beside the database (SQLite only)
    jwt_secret: str | None = field(repr=False)
    # The intel tables always live in a local SQLite file of their own (KAMIYO_INTEL_DATABASE): by
    # default beside a SQLite billing file (`intel_file_beside`), else intel.db in the user data
    # directory, one per host. A file of their own: the billing store's commits (one per tool call)
    # would otherwise empty the incident readers' page cache on every call.
    intel_path: Path = field(default_factory=lambda: _default_data_dir() / "intel.db")
    database_pool_min: int = DEFAULT_POOL_MIN
    database_pool_max: int = DEFAULT_POOL_MAX
    jwt_algorithm: str = ALGORITHM
    token_expiry_days: int = 365
    kamiyo_token: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "INFO"
    intel_sources: tuple[str, ...] = DEFAULT_INTEL_SOURCES
    chain_api_url: str | None = None
    chain_api_key: str | None = field(default=None, repr=False)
    public_url_explicit: bool = True
    # MCP sessions: an idle one ends after this many seconds; at most this many open per process.
    session_idle_timeout: int = DEFAULT_SESSION_IDLE_TIMEOUT
    max_sessions: int = DEFAULT_MAX_SESSIONS
    # Seconds between reconciliations with Stripe in `serve` (0: off); see billing.reconcile.schedule.
    reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL
    # Seconds between re-fetches of the http(s) intel sources in `serve` (0: never); see intel.refresh.
    intel_refresh_interval: float = DEFAULT_INTEL_REFRESH_INTERVAL
    billing: BillingConfig = field(default_factory=lambda: BillingConfig(DEFAULT_PUBLIC_URL))
    mail: MailConfig = field(default_factory=MailConfig)
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    # Proxies (CIDRs) whose X-Forwarded-For names the client, for every per-client limit; none by default.
    trusted_proxies: tuple[str, ...] = ()
    # The bearer token /metrics requires; None: /metrics answers local scrapers only.
    metrics_token: str | None = field(default=None, repr=False)

    @property
    def secret_file(self) -> Path:
        """The zero-configuration secret file beside the SQLite database.

        Raises:
            SettingsError: the store is PostgreSQL, where MCP_JWT_SECRET must be set instead.
        """
        if self.database_path is None:
            raise SettingsError("MCP_JWT_SECRET", _POSTGRES_NEEDS_SECRET)
        return self.database_path.with_name(self.database_path.name + ".jwt-secret")

    @property
    def intel_previous_path(self) -> Path | None:
        """The SQLite billing file, where earlier versions kept the intel tables (None with PostgreSQL).

        `IntelStore.open` copies them from there once when the intel file has no incident yet.
        """
        if self.database_path is None or self.database_path == self.intel_path:
            return None
        return self.database_path

    @property
    def database_label(self) -> str:
        """Where the store is, for logs: the SQLite path, or PostgreSQL's host and database (no password)."""
        if self.database_path is not None:
            return str(self.database_path)
        parts = urlsplit(self.database_url)
        return f"postgresql://{parts.hostname or 'localhost'}{f':{parts.port}' if parts.port else ''}{parts.path}"

    @property
    def resource_url(self) -> str:
        return self.public_url.rstrip("/") + "/mcp"


_POSTGRES_NEEDS_SECRET = ("must be set when KAMIYO_DATABASE_URL is a PostgreSQL URL: every process signs and "
                          "verifies tokens with the same secret (there is no shared secret file)")


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("kamiyo-mcp", appauthor=False))


def default_database_url() -> str:
    return str(_default_data_dir() / "kamiyo.db")


def intel_file_beside(database_path: Path) -> Path:
    """The default intel file of a SQLite billing file: `kamiyo.db` -> `kamiyo.intel.db`, in its directory."""
    return database_path.with_name(f"{database_path.stem}.intel{database_path.suffix or '.db'}")


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build `Settings` from `env`.

    Raises:
        SettingsError: the first bad variable, named.
    """
    database_url = _get(env, "KAMIYO_DATABASE_URL") or default_database_url()
    database_path: Path | None = None
    if is_postgres_url(database_url):
        if not urlsplit(database_url).path.strip("/"):
            raise SettingsError("KAMIYO_DATABASE_URL", "a PostgreSQL URL names its database: "
                                "postgresql://user:password@host:5432/kamiyo")
        if env.get("MCP_JWT_SECRET") is None:
            raise SettingsError("MCP_JWT_SECRET", _POSTGRES_NEEDS_SECRET)
    else:
        try:
            database_path = sqlite_path(database_url)
        except ConfigurationError as exc:
            raise SettingsError("KAMIYO_DATABASE_URL", str(exc)) from None
    intel = _get(env, "KAMIYO_INTEL_DATABASE")
    if intel:
        intel_path = Path(intel).expanduser()
    else:
        intel_path = intel_file_beside(database_path) if database_path else _default_data_dir() / "intel.db"
    pool_min = _int(env, "KAMIYO_DATABASE_POOL_MIN", DEFAULT_POOL_MIN, low=0, high=1000)
    pool_max = _int(env, "KAMIYO_DATABASE_POOL_MAX", DEFAULT_POOL_MAX, low=1, high=1000)
    if pool_min > pool_max:
        raise SettingsError("KAMIYO_DATABASE_POOL_MIN", f"must not exceed KAMIYO_DATABASE_POOL_MAX ({pool_max})")

    secret = env.get("MCP_JWT_SECRET")
    if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(
            "MCP_JWT_SECRET",
            f"must be at least {MIN_SECRET_BYTES} bytes (got {len(secret.encode())}); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
        )
    algorithm = _get(env, "MCP_JWT_ALGORITHM") or ALGORITHM
    if algorithm != ALGORITHM:
        raise SettingsError("MCP_JWT_ALGORITHM", f"only {ALGORITHM} is accepted (got {algorithm!r})")

    public_url = _public_url(_get(env, "KAMIYO_PUBLIC_URL") or DEFAULT_PUBLIC_URL)
    return Settings(
        database_url=database_url,
        database_path=database_path,
        intel_path=intel_path,
        database_pool_min=pool_min,
        database_pool_max=pool_max,
        public_url=public_url,
        public_url_explicit=_get(env, "KAMIYO_PUBLIC_URL") is not None,
        jwt_secret=secret,
        jwt_algorithm=algorithm,
        token_expiry_days=_int(env, "MCP_TOKEN_EXPIRY_DAYS", 365, low=1, high=3650),
        kamiyo_token=_get(env, "KAMIYO_TOKEN"),
        allowed_hosts=_csv(env, "KAMIYO_ALLOWED_HOSTS"),
        log_level=_log_level(_get(env, "KAMIYO_LOG_LEVEL") or "INFO"),
        intel_sources=_csv(env, "KAMIYO_INTEL_SOURCES") if "KAMIYO_INTEL_SOURCES" in env else DEFAULT_INTEL_SOURCES,
        chain_api_url=_optional_url(env, "KAMIYO_CHAIN_API_URL"),
        chain_api_key=_get(env, "KAMIYO_CHAIN_API_KEY"),
        session_idle_timeout=_int(env, "KAMIYO_SESSION_IDLE_TIMEOUT", DEFAULT_SESSION_IDLE_TIMEOUT,
                                  low=1, high=7 * 86_400),
        max_sessions=_int(env, "KAMIYO_MAX_SESSIONS", DEFAULT_MAX_SESSIONS, low=1, high=1_000_000),
        billing=load_billing(env, public_url),
        mail=load_mail(env),
        oauth=load_oauth(env),
        reconcile_interval=_duration(env, "KAMIYO_RECONCILE_INTERVAL", DEFAULT_RECONCILE_INTERVAL),
        trusted_proxies=_networks(env, "KAMIYO_TRUSTED_PROXIES"),
        metrics_token=_operator_token(env, "KAMIYO_METRICS_TOKEN"),
        intel_refresh_interval=_duration(env, "KAMIYO_INTEL_REFRESH_INTERVAL", DEFAULT_INTEL_REFRESH_INTERVAL),
    )


def load_billing(env: Mapping[str, str], public_url: str) -> BillingConfig:
    secret_key = _get(env, "STRIPE_SECRET_KEY")
    if secret_key is not None and not secret_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise SettingsError("STRIPE_SECRET_KEY", "must be a Stripe secret key (sk_test_... or sk_live_...)")
    webhook_secret = _get(env, "STRIPE_WEBHOOK_SECRET")
    if webhook_secret is not None and not webhook_secret.startswith("whsec_"):
        raise SettingsError("STRIPE_WEBHOOK_SECRET", "must be a Stripe webhook signing secret (whsec_...)")
    prices: dict[str, str] = {}
    for tier in TIER_NAMES:
        name = f"STRIPE_PRICE_MCP_{tier.upper()}"
        price = _get(env, name)
        if price is not None:
            if not price.startswith(("price_", "plan_")) and not price.isidentifier():
                raise SettingsError(name, f"must be a Stripe price id such as price_123 (got {price!r})")
            prices[tier] = price
    if len(set(prices.values())) != len(prices):
        raise SettingsError("STRIPE_PRICE_MCP_PERSONAL", "two tiers are configured with the same price id")
    origins = tuple(_origin(o, "KAMIYO_ALLOWED_REDIRECT_ORIGINS") for o in _csv(env, "KAMIYO_ALLOWED_REDIRECT_ORIGINS"))
    overage_price, meter_event_name = _overage(env, prices)
    return BillingConfig(
        public_url=public_url,
        stripe_secret_key=secret_key,
        stripe_webhook_secret=webhook_secret,
        stripe_api_base=(_optional_url(env, "STRIPE_API_BASE") or STRIPE_API_BASE).rstrip("/"),
        prices=prices,
        allowed_redirect_origins=origins or (_origin(public_url, "KAMIYO_PUBLIC_URL"),),
        checkout_automatic_tax=_bool(env, "KAMIYO_CHECKOUT_AUTOMATIC_TAX", False),
        checkout_rate_per_minute=_int(env, "KAMIYO_CHECKOUT_RATE_PER_MINUTE", 10, low=1, high=100_000),
        checkout_lookup_rate_per_minute=_int(env, "KAMIYO_CHECKOUT_LOOKUP_RATE_PER_MINUTE", 30, low=1,
                                             high=100_000),
        claim_rate_per_minute=_int(env, "KAMIYO_CLAIM_RATE_PER_MINUTE", 20, low=1, high=100_000),
        rotate_rate_per_minute=_int(env, "KAMIYO_ROTATE_RATE_PER_MINUTE", 10, low=1, high=100_000),
        support_email=_get(env, "KAMIYO_SUPPORT_EMAIL") or "support@kamiyo.ai",
        webhook_unverified_rate_per_minute=_int(env, "KAMIYO_WEBHOOK_UNVERIFIED_RATE_PER_MINUTE", 30,
                                                low=1, high=100_000),
        tiers=load_tiers(env),
        overage_price=overage_price,
        meter_event_name=meter_event_name,
        meter_events_per_second=_int(env, "KAMIYO_METER_EVENTS_PER_SECOND", DEFAULT_METER_EVENTS_PER_SECOND,
                                     low=1, high=MAX_METER_EVENTS_PER_SECOND),
    )


# ---- metered overage and the tier table (issue 13) ---------------------------------------------

_METER_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def load_tiers(env: Mapping[str, str]) -> TierTable:
    """The tier table: the built-in one, with `KAMIYO_TIERS_FILE`'s overrides when set."""
    path = _get(env, "KAMIYO_TIERS_FILE")
    if path is None:
        return DEFAULT_TIERS
    try:
        return load_tier_file(Path(path).expanduser())
    except ConfigurationError as exc:
        raise SettingsError("KAMIYO_TIERS_FILE", str(exc)) from None


def _overage(env: Mapping[str, str], prices: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The metered overage price and its meter's event name: both set, or neither."""
    price = _get(env, "STRIPE_PRICE_MCP_OVERAGE")
    event_name = _get(env, "STRIPE_METER_EVENT_NAME")
    if price is not None:
        if not price.startswith("price_") and not price.isidentifier():
            raise SettingsError("STRIPE_PRICE_MCP_OVERAGE",
                                f"must be a Stripe price id such as price_123 (got {price!r})")
        if price in prices.values():
            raise SettingsError("STRIPE_PRICE_MCP_OVERAGE", "must differ from every tier's price")
        if event_name is None:
            raise SettingsError("STRIPE_METER_EVENT_NAME", "must be set with STRIPE_PRICE_MCP_OVERAGE: the event name "
                                "of the Billing Meter the overage price is on")
    if event_name is not None:
        if not _METER_EVENT_NAME.match(event_name):
            raise SettingsError("STRIPE_METER_EVENT_NAME", "must be 1 to 100 letters, digits, '_', '-', '.' or ':' "
                                f"(got {event_name!r})")
        if price is None:
            raise SettingsError("STRIPE_PRICE_MCP_OVERAGE", "must be set with STRIPE_METER_EVENT_NAME: the metered "
                                "price on that meter")
    return price, event_name


def load_mail(env: Mapping[str, str]) -> MailConfig:
    return MailConfig(
        smtp_host=_get(env, "SMTP_HOST"),
        smtp_port=_int(env, "SMTP_PORT", 587, low=1, high=65535),
        smtp_username=_get(env, "SMTP_USERNAME"),
        smtp_password=env.get("SMTP_PASSWORD") or None,
        smtp_starttls=_bool(env, "SMTP_STARTTLS", True),
        email_from=_get(env, "EMAIL_FROM") or "KAMIYO <no-reply@kamiyo.ai>",
    )


def load_oauth(env: Mapping[str, str]) -> OAuthConfig:
    ca_file = _get(env, "SSL_CERT_FILE")
    if ca_file is not None and not Path(ca_file).is_file():
        raise SettingsError("SSL_CERT_FILE", f"is not a readable file: {ca_file}")
    return OAuthConfig(
        enabled=_bool(env, "KAMIYO_OAUTH_ENABLED", True),
        access_token_seconds=_int(env, "KAMIYO_OAUTH_ACCESS_TOKEN_SECONDS", 3600, low=60, high=86_400),
        refresh_token_days=_int(env, "KAMIYO_OAUTH_REFRESH_TOKEN_DAYS", 30, low=1, high=365),
        sign_in_mails_per_email_per_hour=_int(env, "KAMIYO_OAUTH_SIGN_IN_MAILS_PER_HOUR", 5, low=1, high=1000),
        sign_in_rate_per_minute=_int(env, "KAMIYO_OAUTH_SIGN_IN_RATE_PER_MINUTE", 10, low=1, high=100_000),
        register_rate_per_minute=_int(env, "KAMIYO_OAUTH_REGISTER_RATE_PER_MINUTE", 10, low=1, high=100_000),
        metadata_private_hosts=tuple(h.lower() for h in _csv(env, "KAMIYO_OAUTH_METADATA_PRIVATE_HOSTS")),
        metadata_ca_file=ca_file,
    )


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, f"must be true or false (got {raw!r})")


def _origin(raw: str, name: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, f"must be http(s) origins such as https://kamiyo.ai (got {raw!r})")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"must be a whole number (got {raw!r})") from None
    if not low <= value <= high:
        raise SettingsError(name, f"must be between {low} and {high} (got {value})")
    return value


def _operator_token(env: Mapping[str, str], name: str) -> str | None:
    token = _get(env, name)
    if token is not None and (len(token) < 24 or any(c.isspace() for c in token)):
        raise SettingsError(name, "must be at least 24 characters without spaces; generate one with: "
                                  "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return token


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDRs, normalized (`10.0.0.1` → `10.0.0.1/32`)."""
    networks = []
    for part in _csv(env, name):
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(name, f"must be IP addresses or CIDRs such as 10.0.0.0/8, comma-separated "
                                      f"(got {part!r})") from None
    return tuple(networks)


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds, written as 90, 90s, 15m, 1h or 1d; 0 turns the feature off."""
    raw = _get(env, name)
    if raw is None:
        return default
    number, unit = (raw[:-1], raw[-1].lower()) if raw[-1].lower() in _DURATION_UNITS else (raw, "s")
    try:
        value = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        raise SettingsError(name, f"must be a duration such as 3600, 15m or 1h, or 0 for off (got {raw!r})") from None
    if value != 0 and not 1 <= value <= 30 * 86400:
        raise SettingsError(name, f"must be 0 (off) or between 1 s and 30 d (got {raw!r})")
    return value


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name) or ""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _public_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError("KAMIYO_PUBLIC_URL", f"must be an http(s) URL such as {DEFAULT_PUBLIC_URL} (got {raw!r})")
    if parts.query or parts.fragment:
        raise SettingsError("KAMIYO_PUBLIC_URL", "must not have a query or fragment")
    return raw.rstrip("/")


def _optional_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _get(env, name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, f"must be an http(s) URL (got {raw!r})")
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError("KAMIYO_LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR (got {raw!r})")
    return level


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
