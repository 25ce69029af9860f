"""The arq/Redis client the API and workers share; short timeouts so a dead Redis costs milliseconds."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool

from app.settings import Settings


def worker_heartbeat_key(queue_name: str) -> str:
    """Per queue: deployments sharing one Redis (LEADFLOW_QUEUE_NAME) must not vouch for each other's workers."""
    return f"{queue_name}:worker-heartbeat"


def create_queue_client(settings: Settings) -> ArqRedis:
    """No ping on creation: the API must start, and accept leads, while Redis is down."""
    pool = ConnectionPool.from_url(settings.require_redis_url(), socket_connect_timeout=1, socket_timeout=2,
                                   health_check_interval=10)
    return ArqRedis(pool, default_queue_name=settings.queue_name)


def arq_redis_settings(settings: Settings) -> RedisSettings:
    redis_settings = RedisSettings.from_dsn(settings.require_redis_url())
    redis_settings.conn_timeout = 1
    redis_settings.conn_retries = 60
    redis_settings.conn_retry_delay = 1
    return redis_settings
