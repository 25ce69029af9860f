"""Engine, session factory, the one MetaData (with a constraint naming convention), and the unit of work."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
import uuid_utils.compat as uuid_utils
from sqlalchemy import DateTime, MetaData, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from app.domain.errors import DomainError, Unavailable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012  (SQLAlchemy reads it as is)


def new_id() -> uuid.UUID:
    """A time-sortable UUIDv7 for internal ids."""
    return uuid_utils.uuid7()


def create_engine(url: str, *, pool_size: int = 10, pre_ping: bool = False) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping (a round trip per checkout, a third of intake's database time): a connection found
        # dead raises, the pool is invalidated, that request answers 503 and the next one reconnects.
        pool_pre_ping=pre_ping,
        pool_timeout=5,
        hide_parameters=True,  # SQL errors in logs must not carry raw bodies or phone numbers
        # A dead database must surface as 503 in seconds, not hang a form visitor.
        connect_args={"timeout": 3, "command_timeout": 15, "server_settings": {"timezone": "UTC"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


_UNAVAILABLE_ERRORS = (
    exc.OperationalError,
    exc.InterfaceError,
    ConnectionError,
    TimeoutError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    # a pooled connection left in a bad state by a server restart mid-query ("another operation is in
    # progress"): the request is retried on a fresh connection
    asyncpg.exceptions.InternalClientError,
)


# SQLSTATE classes that mean "not now": connection exceptions, insufficient resources (too many
# connections, disk full), and the server shutting down or restarting (57P01-57P03).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03")


def _is_unavailable_one(error: BaseException) -> bool:
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return True
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def is_data_error(error: BaseException) -> bool:
    """True for values PostgreSQL refuses (SQLSTATE class 22, or asyncpg's own argument checks)."""
    chain = [error, getattr(error, "orig", None), error.__cause__]
    for e in chain:
        if e is None:
            continue
        if isinstance(e, asyncpg.DataError):
            return True
        sqlstate = getattr(e, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
    return False


def is_database_unavailable(error: BaseException) -> bool:
    """True when the error means "cannot reach / use the database now", as opposed to a bug or bad data."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.TimeoutError):  # pool checkout timeout
        return True
    chain = [error, getattr(error, "orig", None), error.__cause__, getattr(error.__cause__, "__cause__", None)]
    return any(_is_unavailable_one(e) for e in chain if e is not None)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commits on success, rolls back on error; connectivity errors become Unavailable.

    A DomainError raised with keep_changes=True commits first (a refusal that is itself recorded).
    """
    try:
        async with sessions() as session:
            await session.begin()
            try:
                yield session
            except DomainError as error:
                await (session.commit() if error.keep_changes else session.rollback())
                raise
            except BaseException as error:
                try:
                    await session.rollback()
                except Exception as rollback_error:  # keep the first error: it says what went wrong
                    error.add_note(f"rollback failed too: {type(rollback_error).__name__}: {rollback_error}")
                raise
            await session.commit()
    except Unavailable:
        raise
    except Exception as error:
        if is_database_unavailable(error):
            raise Unavailable("database", type(error).__name__) from error
        raise
