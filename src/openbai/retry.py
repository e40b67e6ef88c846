"""openbai's one retry policy, on tenacity: try a block again after a failure worth retrying,
waiting ``first_wait`` and doubling the wait (up to ``max_wait``; give or take ``jitter``),
until ``attempts`` tries were made or ``within`` seconds have passed; then the last error is
raised as it is. Storage clients, mounts and executors all retry through it::

    for attempt in retrying(retry_on=BusyError, within=5.0, first_wait=0.005, max_wait=0.1):
        with attempt:
            replace(source, target)
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
    wait_random,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def retrying(
    *,
    retry_on: RetryOn,
    first_wait: float,
    max_wait: float | None = None,
    jitter: float = 0.0,
    attempts: int | None = None,
    within: float | None = None,
) -> Retrying:
    """Tries of a block, as the module docstring says. ``retry_on`` is an exception type (or
    several) or a predicate on the exception; anything else is raised at once. ``within``:
    no try starts after that many seconds from the first."""
    if attempts is None and within is None:
        raise ValueError("a retry needs a limit: attempts or within")
    if not 0.0 <= jitter <= first_wait:
        raise ValueError("jitter must be between 0 and first_wait, so that no wait is negative")
    stops: list[stop_base] = []
    if attempts is not None:
        stops.append(stop_after_attempt(attempts))
    if within is not None:
        stops.append(stop_after_delay(within))
    wait = (
        wait_exponential(multiplier=first_wait)
        if max_wait is None
        else wait_exponential(multiplier=first_wait, max=max_wait)
    )
    return Retrying(
        retry=_predicate(retry_on),
        stop=stop_any(*stops),
        wait=wait + wait_random(-jitter, jitter) if jitter else wait,
        reraise=True,
    )


def _predicate(retry_on: RetryOn) -> retry_base:
    if isinstance(retry_on, type | tuple):
        return retry_if_exception_type(retry_on)
    return retry_if_exception(retry_on)
