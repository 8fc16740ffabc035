"""Configuration: one declarative YAML file validated with pydantic.

The packaged ``default_config.yaml`` is used unless a file is given with ``--config`` or the
``QPIPE_CONFIG`` environment variable. A user file only needs the keys it changes; a wrong key
or value raises :class:`~qpipe.errors.ConfigError` naming the key and the problem. Relative
paths in the file are resolved against the file's own directory.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qpipe.calendars import SUPPORTED_EXCHANGES
from qpipe.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).with_name("default_config.yaml")
CONFIG_ENV = "QPIPE_CONFIG"
DATA_ENV = "QPIPE_DATA"


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class UniverseConfig(StrictModel):
    """Which instruments to keep: ``symbols`` (None = all the source offers) minus ``exclude``."""

    symbols: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    kinds: list[Literal["stock", "etf"]] = Field(default_factory=lambda: ["stock", "etf"])


class CalendarConfig(StrictModel):
    """Trading calendar and the first session of the partitions (default: the source's start)."""

    exchange: str = "XNYS"
    start: dt.date | None = None
    end: dt.date | None = None
    """Last session of the partitions; None: open-ended (the source's last day if it has one)."""
    sync_delay_minutes: int = Field(60, ge=0, le=24 * 60)
    """Minutes after a session's close before the nightly sync treats it as final."""

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        if value not in SUPPORTED_EXCHANGES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_EXCHANGES)}, got {value!r}")
        return value


class SyntheticSourceConfig(StrictModel):
    """A seeded synthetic market: stocks in sectors, ETFs, listings, corporate actions, halts."""

    seed: int = 7
    n_stocks: int = Field(200, ge=1, le=20_000)
    n_sectors: int = Field(8, ge=1, le=20)
    n_etfs: int = Field(12, ge=0, le=40)
    start: dt.date = dt.date(2015, 1, 2)
    """First session of the synthetic history (the market is generated forward from here)."""
    momentum_strength: float = Field(1.0, ge=0.0, le=10.0)
    """Scale of the planted persistent drift that gives 12-1 momentum a positive IC (0 = none)."""


class ColumnMap(StrictModel):
    """Names of the columns in the user's files (only ``date`` and ``close`` are required)."""

    date: str = "date"
    symbol: str = "symbol"
    open: str | None = "open"
    high: str | None = "high"
    low: str | None = "low"
    close: str = "close"
    volume: str | None = "volume"
    adj_close: str | None = None
    """If set, splits and dividends are derived from the ratio ``adj_close / close``."""


class FilesSourceConfig(StrictModel):
    """The user's own CSV or Parquet files: one long table, or one file per symbol."""

    path: Path
    layout: Literal["long", "per_symbol"] = "long"
    format: Literal["auto", "csv", "parquet"] = "auto"
    columns: ColumnMap = Field(default_factory=ColumnMap)
    date_format: str | None = None
    """``strptime`` format of the date column; None lets pandas parse ISO dates."""


class SampleSourceConfig(StrictModel):
    """Real daily bars for AAPL, IBM, MSFT, GOOG and FB (2000-2013) shipped with qpipe."""

    path: Path | None = None
    """Override the packaged file (same columns as ``wiki_prices_5.csv.gz``)."""


class DataConfig(StrictModel):
    """Where bars come from."""

    source: Literal["synthetic", "sample", "files"] = "synthetic"
    synthetic: SyntheticSourceConfig = Field(default_factory=SyntheticSourceConfig)
    sample: SampleSourceConfig = Field(default_factory=SampleSourceConfig)
    files: FilesSourceConfig | None = None

    @model_validator(mode="after")
    def _files_needs_section(self) -> DataConfig:
        if self.source == "files" and self.files is None:
            raise ValueError("source 'files' needs a 'files' section with at least 'path'")
        return self


class FactorsConfig(StrictModel):
    """Which factors to compute (None = the whole library) and user expression factors."""

    names: list[str] | None = None
    expressions: dict[str, str] = Field(default_factory=dict)
    """User factors as expressions over the operators, e.g. ``rank(ts_mean(close, 20) / close)``."""
    modules: list[str] = Field(default_factory=list)
    """Python modules to import; factors they register with ``@qpipe.factors.factor`` join in."""


class StrategyConfig(StrictModel):
    """One strategy: its kind and the parameters that kind takes."""

    kind: Literal["linear", "rotation"]
    params: dict[str, Any] = Field(default_factory=dict)


class LiveConfig(StrictModel):
    """Live trading at the close. Safe by default: paper broker, dry run, no live ports."""

    broker: Literal["paper", "ib"] = "paper"
    dry_run: bool = True
    host: str = "127.0.0.1"
    port: int = Field(7497, ge=1, le=65535)
    client_id: int = Field(1, ge=0)
    allow_live_ports: bool = False
    accounts: list[str] = Field(default_factory=list)
    max_order_notional: float = Field(100_000.0, gt=0)
    max_weight: float = Field(0.2, gt=0, le=1)
    minutes_before_close: int = Field(10, ge=1, le=120)


class Settings(StrictModel):
    """The whole configuration file."""

    universe: UniverseConfig = Field(default_factory=UniverseConfig)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    factors: FactorsConfig = Field(default_factory=FactorsConfig)
    strategies: dict[str, StrategyConfig] = Field(default_factory=dict)
    live: LiveConfig = Field(default_factory=LiveConfig)

    @model_validator(mode="after")
    def _files_need_start(self) -> Settings:
        if self.data.source == "files" and self.calendar.start is None:
            raise ValueError("calendar.start is required with the files source")
        return self


def _format_error(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for section in ("files", "sample"):
        sub = data.get(section)
        if isinstance(sub, dict) and isinstance(sub.get("path"), str):
            p = Path(sub["path"]).expanduser()
            sub["path"] = str(p if p.is_absolute() else (base / p))


def parse_settings(raw: Any, source: str = "<config>", base: Path | None = None) -> Settings:
    """Validate an already-parsed YAML document; ``source`` names it in error messages."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid configuration in {source}: the top level must be a mapping")
    if base is not None:
        _resolve_paths(raw, base)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(source, exc)) from None


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load ``path``, else ``$QPIPE_CONFIG``, else the packaged default configuration."""
    chosen = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    p = Path(chosen).expanduser()
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {p}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML in {p}: {exc}") from None
    return parse_settings(raw, source=str(p), base=p.resolve().parent)


def data_dir() -> Path:
    """The data directory: ``$QPIPE_DATA`` if set, else ``./data`` (absolute path)."""
    return Path(os.environ.get(DATA_ENV) or "data").expanduser().resolve()
