"""Collections at once (`--parallel N`, as mongorestore's --numParallelCollections): results in
the given order whatever order they finish in; the first failure stops the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from paletai.ops.errors import OpsError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_PARALLEL = 4  # mongorestore's --numParallelCollections default


class CollectionFailed(OpsError):
    """One collection failed; the ones running beside it were cancelled, none was started after.
    Exit 1: the command ran and did not complete (an operator mistake found first stays 2)."""

    exit_code = 1


def check_parallel(parallel: int) -> int:
    if parallel < 1:
        raise OpsError(f"--parallel {parallel}: give 1 or more collections at once (default 4)")
    return parallel


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OpsError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def each_collection(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    parallel: int,
    name: Callable[[T], str],
    verb: str,
) -> list[R]:
    """`work(item)` for every item, at most `parallel` at once; their results in `items` order.

    The first failure cancels the collections in progress (their own cleanup runs: open files
    are closed, in-flight batches cancelled) and raises CollectionFailed naming the collection,
    what failed, and how many completed and were stopped."""
    check_parallel(parallel)
    gate = asyncio.Semaphore(parallel)
    results: dict[int, R] = {}
    failures: list[tuple[str, BaseException]] = []

    async def one(index: int, item: T) -> None:
        async with gate:
            if failures:
                return
            try:
                results[index] = await work(item)
            except Exception as exc:
                failures.append((name(item), exc))
                raise

    try:
        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(items):
                group.create_task(one(index, item))
    except BaseExceptionGroup as group_error:
        if not failures:
            raise
        failed, exc = failures[0]
        stopped = len(items) - len(results) - 1
        raise CollectionFailed(
            f"{verb} of {failed} failed: {_describe(exc)} "
            f"({len(results)} collections done, {stopped} stopped)"
        ) from group_error
    return [results[index] for index in range(len(items))]
