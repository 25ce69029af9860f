"""R1.2–R1.4, R1.9, R1.12: hand a valid submission to `leadflow_accept_submission()` (migrations 0002, 0007, 0008).

The function takes the idempotency and phone locks, decides accepted / merged / duplicate, and writes the
submission, lead, inquiry, outbox row and audit entry. It is the only place those decisions are made.

Group commit (`Acceptor`): submissions that arrive while earlier ones are being written are written together,
in one transaction on one connection (a pipelined call per submission), and each caller is answered only
after that transaction commits. Under load this halves the database's work per lead (one commit and WAL
flush per batch instead of per lead) and the client's; an idle service still writes each submission at
once. The transaction first takes every advisory lock of the batch in hash order, the order the function
itself uses, so batches and single calls never deadlock. Within a batch each call sees the ones before it:
two copies of one submission, or two leads with one phone, in the same batch, are decided exactly as if they
had come one after the other. If any submission makes the batch fail (a value PostgreSQL refuses), the batch
is retried one submission at a time, so only that one fails.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from app.db import is_database_unavailable, new_id
from app.domain.errors import Unavailable
from app.domain.intake.mapping import MappedSubmission
from app.domain.intake.schemas import SubmissionDraft
from app.domain.sources.models import Source
from app.fastjson import dumps
from app.metrics import INTAKE_BATCH_RETRIES, INTAKE_BATCH_SIZE

_ACCEPT = """
SELECT outcome, lead_id, lead_number, detail FROM leadflow_accept_submission(
    $1::uuid[], $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13::jsonb, $14, $15, $16::jsonb,
    $17::jsonb, $18, $19)
"""
log = structlog.get_logger(__name__)

_LOCK_KEYS = "SELECT leadflow_lock_keys($1::text[])"
_NEXT_NUMBER = "SELECT leadflow_next_lead_number($1)"
ACQUIRE_TIMEOUT = 3  # seconds: a stalled database answers 503, it does not hold the visitor


@dataclass
class Acceptance:
    outcome: str  # accepted | merged | duplicate | rejected | already_replayed
    lead_id: uuid.UUID | None
    lead_number: str | None
    detail: str | None  # rejected: the reason code; duplicate / already_replayed: the earlier submission id


def lead_number_prefix(prefix: str, at: datetime, tz: Any) -> str:
    """`LD-20261125-`: the business-timezone date of `at`; the database appends the sequence number."""
    # Every zone's offset is whole minutes, so the local date cannot change within a UTC minute.
    return _prefix_for_minute(prefix, int(at.timestamp() // 60), tz)


@functools.lru_cache(maxsize=64)
def _prefix_for_minute(prefix: str, epoch_minute: int, tz: Any) -> str:
    return f"{prefix}-{datetime.fromtimestamp(epoch_minute * 60, tz):%Y%m%d}-"


async def accept_in_database(
    acceptor: Acceptor, *, source: Source, draft: SubmissionDraft, mapped: MappedSubmission, key_is_native: bool,
    signature: str | None, merge_since: datetime, number_prefix: str,
) -> Acceptance:
    """Decide and write (committed when this returns). Database unreachable → Unavailable (nothing was written)."""
    ids = [draft.id, new_id(), new_id(), new_id(), new_id()]
    args = (ids, source.id, source.key, source.kind, draft.received_at, draft.content_type,
            draft.raw_body, draft.body_sha256, dumps(draft.headers), draft.remote_addr,
            draft.idempotency_key, key_is_native, dumps(mapped.log), draft.replay_of_id,
            signature, dumps(mapped.fields),
            dumps(mapped.attributes), merge_since, number_prefix)
    if draft.replay_of_id is not None:  # replays lock their submission row first: never batched
        return await acceptor.accept_alone(args)
    keys = [f"phone:{mapped.fields['phone']}"]
    if draft.idempotency_key is not None:
        keys.append(f"idem:{source.id}:{draft.idempotency_key}")
    return await acceptor.accept(args, keys)


@dataclass
class _Waiting:
    args: tuple[Any, ...]
    lock_keys: list[str]
    answer: asyncio.Future[Acceptance] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Acceptor:
    """Group commit for intake (see the module's docstring). One per process, on the intake pool.

    At most `max_in_flight` batches are written at once, each of at most `max_batch` submissions; a
    submission that finds a free slot is written at once, alone.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 32, max_in_flight: int = 4) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._waiting: deque[_Waiting] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def accept(self, args: tuple[Any, ...], lock_keys: list[str]) -> Acceptance:
        waiting = _Waiting(args, lock_keys)
        self._waiting.append(waiting)
        self._start_batches()
        # shield: a caller that goes away (client disconnect) must not cancel the batch's answer for others
        return await asyncio.shield(waiting.answer)

    async def accept_alone(self, args: tuple[Any, ...]) -> Acceptance:
        """One submission in its own transaction (the function's implicit one)."""
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                row = await conn.fetchrow(_ACCEPT, *args)
        except Exception as error:
            if is_database_unavailable(error):
                raise Unavailable("database", type(error).__name__) from error
            raise
        return _acceptance(row)

    async def drain(self) -> None:
        """Wait until every submission handed in so far is answered (shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _start_batches(self) -> None:
        while self._waiting and self._in_flight < self.max_in_flight:
            batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), self.max_batch))]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: list[_Waiting]) -> None:
        INTAKE_BATCH_SIZE.observe(len(batch))
        try:
            if len(batch) == 1:
                await self._write_alone(batch[0])
                return
            try:
                rows = await self._write_together(batch)
            except Exception as error:
                if is_database_unavailable(error):
                    for waiting in batch:
                        _answer(waiting, error=error)
                    return
                reason = getattr(error, "sqlstate", None) or type(error).__name__
                INTAKE_BATCH_RETRIES.labels(reason).inc()
                log.warning("intake_batch_retried_one_by_one", size=len(batch), reason=reason,
                            error=f"{type(error).__name__}: {str(error)[:200]}")
                for waiting in batch:  # one bad value aborted the transaction: give each its own
                    await self._write_alone(waiting)
                return
            for waiting, row in zip(batch, rows, strict=True):
                _answer(waiting, row=row)
        finally:
            self._in_flight -= 1
            self._start_batches()

    async def _write_alone(self, waiting: _Waiting) -> None:
        try:
            _answer(waiting, acceptance=await self.accept_alone(waiting.args))
        except Exception as error:
            _answer(waiting, error=error)

    async def _write_together(self, batch: list[_Waiting]) -> list[asyncpg.Record]:
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
            await conn.execute(_LOCK_KEYS, [key for waiting in batch for key in waiting.lock_keys])
            return await conn.fetchmany(_ACCEPT, [waiting.args for waiting in batch])


def _unavailable_or(error: Exception) -> Exception:
    if isinstance(error, Unavailable):
        return error
    if is_database_unavailable(error):
        unavailable = Unavailable("database", type(error).__name__)
        unavailable.__cause__ = error
        return unavailable
    return error


def _acceptance(row: asyncpg.Record) -> Acceptance:
    return Acceptance(outcome=row["outcome"], lead_id=row["lead_id"], lead_number=row["lead_number"],
                      detail=row["detail"])


def _answer(waiting: _Waiting, *, row: asyncpg.Record | None = None, acceptance: Acceptance | None = None,
            error: Exception | None = None) -> None:
    if waiting.answer.done():
        return
    if error is not None:
        waiting.answer.set_exception(_unavailable_or(error))
    else:
        waiting.answer.set_result(acceptance or _acceptance(row))


async def draw_lead_number(pool: asyncpg.Pool, number_prefix: str) -> str:
    """A number from the same sequence and format, for answers that make no lead (honeypot spam)."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            return await conn.fetchval(_NEXT_NUMBER, number_prefix)
    except Exception as error:
        if is_database_unavailable(error):
            raise Unavailable("database", type(error).__name__) from error
        raise


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """The pool's default reset is a round trip per release; our statements leave no session state."""


async def create_intake_pool(database_url: str, max_size: int = 20) -> asyncpg.Pool:
    """min_size 0: the API starts (and answers 503) while the database is down."""
    return await asyncpg.create_pool(
        database_url.replace("postgresql+asyncpg://", "postgresql://"), min_size=0, max_size=max_size,
        timeout=3, command_timeout=15, reset=_no_reset, server_settings={"timezone": "UTC"})
