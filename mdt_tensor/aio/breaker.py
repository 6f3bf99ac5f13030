"""A circuit breaker: stop calling a failing dependency for a while, then probe it.

:class:`CircuitBreaker` guards async and sync calls alike (a ``threading.Lock`` never held
across an ``await``), does not count cancellation as a failure, takes an injectable monotonic
clock and limits concurrent half-open probes; why it is ours and not a library's is in
``docs/design/aio-retry-and-breaker.md``.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import functools
import inspect
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from .._validation import check_callable, check_int, check_seconds
from ..errors import CircuitOpenError
from ._checks import exception_types

__all__ = ["CircuitOpenError", "CircuitState", "CircuitBreakerStats", "CircuitBreaker"]

F = TypeVar("F", bound=Callable[..., Any])


class CircuitState(enum.StrEnum):
    """State of a :class:`CircuitBreaker` (``CircuitState.OPEN == "open"``, as the original)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclasses.dataclass(frozen=True)
class CircuitBreakerStats:
    """A snapshot of a breaker's state and counters.

    Attributes:
        state: the state (after any due OPEN -> HALF_OPEN transition).
        consecutive_failures: failures since the last success or state change.
        failures: all recorded failures. successes: all recorded successes.
        rejections: calls refused with :class:`CircuitOpenError`.
        ignored: calls that ended in cancellation or an exception outside ``expected_exceptions``.
        state_changes: number of transitions so far.
        half_open_in_flight: probe calls now running.
    """

    state: CircuitState
    consecutive_failures: int
    failures: int
    successes: int
    rejections: int
    ignored: int
    state_changes: int
    half_open_in_flight: int


class _Admission(NamedTuple):
    generation: int
    probe: bool


class CircuitBreaker:
    """Stop calling a failing dependency for a while, then probe it.

    * CLOSED: calls pass; ``failure_threshold`` *consecutive* failures open the breaker.
    * OPEN: calls raise :class:`CircuitOpenError` (``retry_after`` = seconds until probing);
      once ``recovery_timeout`` has passed on ``clock``, the next read of the state (lazily: no
      timer) moves to HALF_OPEN.
    * HALF_OPEN: at most ``half_open_max_calls`` probe calls run at once (a probe admitted in an
      earlier half-open round that is still running counts too); more are refused with
      ``retry_after=0.0`` (a probe is in flight; try again when it ends). A probe failure
      re-opens the breaker; ``success_threshold`` probe successes close it.

    A failure is an exception that is an instance of ``expected_exceptions``. Cancellation
    (``asyncio.CancelledError``) and other exceptions pass through and count neither way (the
    original counted cancellation as a failure). A call that began in an earlier state (e.g. a
    slow call admitted while CLOSED that ends after the breaker opened) updates the counters but
    not the state. Mutations take a ``threading.Lock`` that is never held across an ``await``,
    so one breaker can guard async code and threads alike.

    Use as ``async with breaker:``, ``with breaker:``, or as a decorator on async or sync
    functions.

    Args:
        failure_threshold: consecutive failures that open the breaker; >= 1.
        recovery_timeout: seconds OPEN before probing; >= 0 (the original's ``timeout``).
        half_open_max_calls: concurrent probes allowed in HALF_OPEN; >= 1.
        success_threshold: probe successes that close the breaker; >= 1.
        expected_exceptions: exception classes that count as failures.
        clock: monotonic seconds; inject a fake for tests.
        name: used in error messages.

    Example:
        >>> now = [0.0]
        >>> breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30, clock=lambda: now[0])
        >>> @breaker
        ... def call(ok):
        ...     if not ok:
        ...         raise ConnectionError("down")
        ...     return "up"
        >>> for _ in range(2):
        ...     try:
        ...         call(False)
        ...     except ConnectionError:
        ...         pass
        >>> breaker.state
        <CircuitState.OPEN: 'open'>
        >>> now[0] = 10.0
        >>> try:
        ...     call(True)
        ... except CircuitOpenError as err:
        ...     err.retry_after
        20.0
        >>> now[0] = 30.0
        >>> call(True), breaker.state
        ('up', <CircuitState.CLOSED: 'closed'>)
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        expected_exceptions: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str = "circuit",
    ) -> None:
        self.failure_threshold = check_int(failure_threshold, "failure_threshold", low=1)
        self.half_open_max_calls = check_int(half_open_max_calls, "half_open_max_calls", low=1)
        self.success_threshold = check_int(success_threshold, "success_threshold", low=1)
        self.recovery_timeout: float = check_seconds(recovery_timeout, "recovery_timeout")  # type: ignore[assignment]
        self.expected_exceptions = exception_types(expected_exceptions, "expected_exceptions")
        check_callable(clock, "clock")
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._consecutive_failures = 0
        self._half_open_successes = 0
        self._in_flight_probes = 0
        self._failures = self._successes = self._rejections = self._ignored = 0
        self._state_changes = 0
        self._admissions: contextvars.ContextVar[tuple[_Admission, ...]] = contextvars.ContextVar(
            f"circuit_breaker_{id(self)}", default=()
        )

    # state ------------------------------------------------------------------------------------
    def _set_state(self, state: CircuitState) -> None:
        self._state = state
        self._generation += 1
        self._state_changes += 1
        self._consecutive_failures = 0
        self._half_open_successes = 0
        # _in_flight_probes is not reset: a probe of an earlier half-open round that is still
        # running keeps its slot until it ends, so no more than half_open_max_calls ever run
        if state is CircuitState.OPEN:
            self._opened_at = self.clock()

    def _refresh(self) -> None:
        if (self._state is CircuitState.OPEN
                and self.clock() - self._opened_at >= self.recovery_timeout):
            self._set_state(CircuitState.HALF_OPEN)

    @property
    def state(self) -> CircuitState:
        """The current state; reading it performs a due OPEN -> HALF_OPEN transition."""
        with self._lock:
            self._refresh()
            return self._state

    def get_state(self) -> CircuitState:
        """The current state (the original's name; compares equal to its strings)."""
        return self.state

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted toward ``failure_threshold``."""
        with self._lock:
            return self._consecutive_failures

    def stats(self) -> CircuitBreakerStats:
        """A consistent snapshot of state and counters."""
        with self._lock:
            self._refresh()
            return CircuitBreakerStats(
                self._state, self._consecutive_failures, self._failures, self._successes,
                self._rejections, self._ignored, self._state_changes, self._in_flight_probes,
            )

    def reset(self) -> None:
        """Force CLOSED and clear the consecutive-failure count (totals are kept)."""
        with self._lock:
            if self._state is not CircuitState.CLOSED:
                self._set_state(CircuitState.CLOSED)
            self._consecutive_failures = 0

    # admission and outcome -------------------------------------------------------------------
    def _admit(self) -> _Admission:
        with self._lock:
            self._refresh()
            if self._state is CircuitState.CLOSED:
                return _Admission(self._generation, probe=False)
            if self._state is CircuitState.HALF_OPEN:
                if self._in_flight_probes < self.half_open_max_calls:
                    self._in_flight_probes += 1
                    return _Admission(self._generation, probe=True)
                self._rejections += 1
                raise CircuitOpenError(
                    f"{self.name} is half-open and its {self.half_open_max_calls} probe call(s) "
                    f"are in flight",
                    retry_after=0.0,
                )
            self._rejections += 1
            retry_after = max(0.0, self._opened_at + self.recovery_timeout - self.clock())
            raise CircuitOpenError(
                f"{self.name} is open; retry after {retry_after:.3f} s", retry_after=retry_after
            )

    def _record(self, admission: _Admission, exc: BaseException | None) -> None:
        failed = (exc is not None and isinstance(exc, self.expected_exceptions)
                  and not isinstance(exc, asyncio.CancelledError))
        with self._lock:
            current = admission.generation == self._generation
            if admission.probe:
                self._in_flight_probes -= 1
            if exc is not None and not failed:
                self._ignored += 1
                return
            if failed:
                self._failures += 1
            else:
                self._successes += 1
            if not current:
                return
            if failed:
                self._consecutive_failures += 1
                if (self._state is CircuitState.HALF_OPEN
                        or self._consecutive_failures >= self.failure_threshold):
                    self._set_state(CircuitState.OPEN)
            elif self._state is CircuitState.HALF_OPEN:
                self._half_open_successes += 1
                if self._half_open_successes >= self.success_threshold:
                    self._set_state(CircuitState.CLOSED)
            else:
                self._consecutive_failures = 0

    # context managers and decorator ------------------------------------------------------------
    def _enter(self) -> None:
        admission = self._admit()
        self._admissions.set(self._admissions.get() + (admission,))

    def _exit(self, exc: BaseException | None) -> None:
        stack = self._admissions.get()
        self._admissions.set(stack[:-1])
        self._record(stack[-1], exc)

    async def __aenter__(self) -> CircuitBreaker:
        self._enter()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        self._exit(exc)

    def __enter__(self) -> CircuitBreaker:
        self._enter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self._exit(exc)

    def __call__(self, func: F) -> F:
        """Decorate an async or sync function so every call goes through the breaker."""
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                admission = self._admit()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    self._record(admission, exc)
                    raise
                self._record(admission, None)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            admission = self._admit()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._record(admission, exc)
                raise
            self._record(admission, None)
            return result

        return sync_wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        s = self.stats()
        return (f"CircuitBreaker(name={self.name!r}, state={s.state.value}, "
                f"consecutive_failures={s.consecutive_failures}/{self.failure_threshold})")
