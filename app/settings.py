"""The one Settings object; nothing else in leadflow reads os.environ."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Connections. Unset → `leadflow run` / the test harness start embedded servers under data_dir.
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    data_dir: Path = Field(default=Path(".leadflow"), alias="LEADFLOW_DATA_DIR")
    port: int = Field(default=8000, alias="PORT")
    host: str = Field(default="127.0.0.1", alias="HOST")

    admin_token: SecretStr | None = Field(default=None, alias="LEADFLOW_ADMIN_TOKEN")
    sources_file: Path | None = Field(default=None, alias="LEADFLOW_SOURCES_FILE")

    # Lead numbers and business time.
    lead_id_prefix: str = Field(default="LD", alias="LEADFLOW_LEAD_ID_PREFIX", pattern=r"^[A-Z]{1,6}$")
    business_timezone: str = Field(default="Asia/Shanghai", alias="LEADFLOW_TIMEZONE")

    # Intake rules.
    duplicate_window_days: int = Field(default=30, alias="LEADFLOW_DUPLICATE_WINDOW_DAYS", ge=0)
    max_body_bytes: int = Field(default=64 * 1024, alias="LEADFLOW_MAX_BODY_BYTES", ge=1024)
    signature_tolerance_seconds: int = Field(default=300, alias="LEADFLOW_SIGNATURE_TOLERANCE_SECONDS")
    browser_rate_limit_per_minute: int = Field(default=20, alias="LEADFLOW_RATE_LIMIT_PER_MINUTE", ge=1)
    trust_forwarded_for: bool = Field(default=False, alias="LEADFLOW_TRUST_X_FORWARDED_FOR")
    source_cache_seconds: float = Field(default=2.0, alias="LEADFLOW_SOURCE_CACHE_SECONDS", ge=0)
    retry_after_seconds: int = Field(default=5, alias="LEADFLOW_RETRY_AFTER_SECONDS", ge=1)
    # Group commit: submissions arriving while others are written are committed together (see README).
    intake_batch_max: int = Field(default=32, alias="LEADFLOW_INTAKE_BATCH_MAX", ge=1, le=1000)
    intake_batches_in_flight: int = Field(default=4, alias="LEADFLOW_INTAKE_BATCHES_IN_FLIGHT", ge=1, le=50)

    # Assignment (R2).
    default_capacity: int = Field(default=5, alias="LEADFLOW_DEFAULT_CAPACITY", ge=0)
    assignment_max_tries: int = Field(default=5, alias="LEADFLOW_ASSIGNMENT_MAX_TRIES", ge=1)
    assignment_retry_seconds: float = Field(default=30.0, alias="LEADFLOW_ASSIGNMENT_RETRY_SECONDS", ge=0)
    claim_check_interval_seconds: float = Field(default=15.0, alias="LEADFLOW_CLAIM_CHECK_INTERVAL", gt=0)
    assignment_fallback_rounds: int = Field(default=3, alias="LEADFLOW_ASSIGNMENT_FALLBACK_ROUNDS", ge=1)

    # WeCom / DingTalk (R3). Without a corp id, app messages are recorded as undeliverable.
    wecom_base_url: str = Field(default="https://qyapi.weixin.qq.com/cgi-bin/", alias="LEADFLOW_WECOM_BASE_URL")
    wecom_corp_id: str | None = Field(default=None, alias="LEADFLOW_WECOM_CORP_ID")
    wecom_agent_id: int | None = Field(default=None, alias="LEADFLOW_WECOM_AGENT_ID")
    wecom_secret: SecretStr | None = Field(default=None, alias="LEADFLOW_WECOM_SECRET")
    egress_ips: list[str] = Field(default_factory=list, alias="LEADFLOW_EGRESS_IPS",
                                  description="This service's egress IPs/CIDRs, to explain IP refusals")
    canary_share: float = Field(default=0.1, alias="LEADFLOW_CANARY_SHARE", ge=0, le=1,
                                description="Share of deliveries a canary integration config gets")
    notify_retry_base_seconds: float = Field(default=30.0, alias="LEADFLOW_NOTIFY_RETRY_BASE_SECONDS", gt=0)
    notify_retry_max_seconds: float = Field(default=300.0, alias="LEADFLOW_NOTIFY_RETRY_MAX_SECONDS", gt=0)
    notify_max_attempts: int = Field(default=60, alias="LEADFLOW_NOTIFY_MAX_ATTEMPTS", ge=1)

    # Ops alerts (R3.5) and integration probes (R3.4).
    ops_wecom_robot_key: SecretStr | None = Field(default=None, alias="LEADFLOW_OPS_WECOM_ROBOT_KEY")
    ops_dingtalk_url: str = Field(default="https://oapi.dingtalk.com/robot/send", alias="LEADFLOW_OPS_DINGTALK_URL")
    ops_dingtalk_token: SecretStr | None = Field(default=None, alias="LEADFLOW_OPS_DINGTALK_TOKEN")
    ops_dingtalk_secret: SecretStr | None = Field(default=None, alias="LEADFLOW_OPS_DINGTALK_SECRET")
    alert_cooldown_seconds: float = Field(default=1800.0, alias="LEADFLOW_ALERT_COOLDOWN_SECONDS", ge=0)
    watch_interval_seconds: float = Field(default=60.0, alias="LEADFLOW_WATCH_INTERVAL_SECONDS", gt=0)
    reconcile_gap_threshold: float = Field(default=0.10, alias="LEADFLOW_RECONCILE_GAP", ge=0)
    outbox_backlog_alert: int = Field(default=100, alias="LEADFLOW_OUTBOX_BACKLOG_ALERT", ge=1)
    probe_interval_seconds: float = Field(default=900.0, alias="LEADFLOW_PROBE_INTERVAL_SECONDS", gt=0)

    # Outbox relay and worker.
    outbox_sweep_interval_seconds: float = Field(default=0.25, alias="LEADFLOW_OUTBOX_SWEEP_INTERVAL", gt=0)
    # Unprocessed outbox rows older than this count as backlog (metrics, alerts).
    outbox_late_after_seconds: float = Field(default=10.0, alias="LEADFLOW_OUTBOX_LATE_AFTER")
    outbox_requeue_after_seconds: float = Field(default=60.0, alias="LEADFLOW_OUTBOX_REQUEUE_AFTER")
    worker_heartbeat_interval_seconds: float = Field(default=5.0, alias="LEADFLOW_WORKER_HEARTBEAT_INTERVAL")
    worker_heartbeat_max_age_seconds: float = Field(default=30.0, alias="LEADFLOW_WORKER_HEARTBEAT_MAX_AGE")
    # The worker's own Prometheus endpoint (assignment stage histograms); 0 = off.
    worker_metrics_port: int = Field(default=0, alias="LEADFLOW_WORKER_METRICS_PORT", ge=0)
    # Where the API and workers share CPUs, intake (the visitor waits for the answer) goes first: workers run
    # at this Unix nice level (0 = as the API). Their work is queued and durable; a burst is assigned after.
    worker_nice: int = Field(default=10, alias="LEADFLOW_WORKER_NICE", ge=0, le=19)
    # On SIGTERM / SIGINT the worker takes no new job and lets running ones finish for up to this long; the rest
    # are cancelled and retried later (keep it under the orchestrator's kill timeout, e.g. Kubernetes' 30 s).
    worker_shutdown_grace_seconds: float = Field(default=10.0, alias="LEADFLOW_WORKER_SHUTDOWN_GRACE", ge=0)
    # A job killed mid-run (worker SIGKILLed) is picked up again after this plus 10 s (arq's in-progress lock).
    job_timeout_seconds: int = Field(default=60, alias="LEADFLOW_JOB_TIMEOUT_SECONDS", ge=1)
    queue_name: str = Field(default="leadflow:queue", alias="LEADFLOW_QUEUE_NAME")

    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_json: bool = Field(default=True, alias="LEADFLOW_LOG_JSON")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (run through `leadflow run` to get an embedded one)")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set (run through `leadflow run` to get an embedded one)")
        return self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
