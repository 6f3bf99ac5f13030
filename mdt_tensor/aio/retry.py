"""Retry with capped, jittered exponential backoff: :func:`retry_async`, :func:`retry_sync`.

The retrying itself is tenacity's (``AsyncRetrying`` / ``Retrying``); this module is the glue:
the call and decorator forms, a jitter that never pushes a delay past ``max_delay``, never
retrying cancellation, and re-raising the last exception instead of ``tenacity.RetryError``
(see ``docs/design/aio-retry-and-breaker.md``). Backoff sleeps are injectable for tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import tenacity

from .._validation import check_callable, check_int, check_number, check_seconds
from ..errors import DTypeError
from ._checks import exception_types

__all__ = ["RetryOptions", "retry_async", "retry_sync"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class _NotAwaitableError(DTypeError):
    """``retry_async`` was given a function whose result cannot be awaited (never retried)."""



@dataclasses.dataclass(frozen=True)
class RetryOptions:
    """How :func:`retry_async` / :func:`retry_sync` retry (validated on construction).

    The delay before retry ``k`` (``k = 1, 2, ...``) is
    ``d_k = min(initial_delay * backoff_factor ** (k - 1), max_delay)`` (the first one is capped
    too), then jittered down to a uniform value in ``[d_k * (1 - jitter), d_k]``: jitter never
    pushes a delay past ``max_delay``. ``jitter=1`` is "full jitter", ``0`` none.

    Attributes:
        max_retries: retries after the first attempt (``max_retries + 1`` attempts); >= 0.
        initial_delay: seconds before the first retry (capped by ``max_delay``); >= 0.
        backoff_factor: growth of the delay per retry; >= 1.
        max_delay: cap on every delay, seconds; >= 0.
        jitter: fraction in [0, 1] by which a delay may be shortened at random.
        retry_on: exception classes worth a retry; ``None``: every ``Exception``. Anything else
            is raised at once. ``asyncio.CancelledError`` is never retried, even if named.
        on_retry: ``on_retry(attempt, exception, delay)``, called before each backoff sleep
            (``attempt`` is the number of the attempt that failed, from 1); with
            :func:`retry_async` it may be ``async``.
        sleep: the sleep function (sync, or with :func:`retry_async` sync or async); ``None``:
            the real one. Inject a fake to test backoff without waiting.
    """

    max_retries: int = 3
    initial_delay: float = 1.0
    backoff_factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] | None = None
    on_retry: Callable[[int, BaseException, float], Any] | None = None
    sleep: Callable[[float], Any] | None = None

    def __post_init__(self) -> None:
        check_int(self.max_retries, "max_retries", low=0)
        check_seconds(self.initial_delay, "initial_delay")
        check_seconds(self.max_delay, "max_delay")
        check_number(self.backoff_factor, "backoff_factor", low=1.0)
        check_number(self.jitter, "jitter", low=0.0, high=1.0)
        object.__setattr__(self, "retry_on", exception_types(self.retry_on, "retry_on"))
        for name in ("on_retry", "sleep"):
            if getattr(self, name) is not None:
                check_callable(getattr(self, name), name)

    def delay(self, retry: int, unit: float = 1.0) -> float:
        """The delay before retry ``retry`` (from 1), given a uniform draw ``unit`` in [0, 1].

        Example:
            >>> opts = RetryOptions(initial_delay=10.0, max_delay=2.0, jitter=0.5)
            >>> opts.delay(1), opts.delay(1, unit=0.0)
            (2.0, 1.0)
        """
        base = tenacity.wait_exponential(
            multiplier=self.initial_delay, max=self.max_delay, exp_base=self.backoff_factor
        )(_AttemptView(retry))  # type: ignore[arg-type]  # duck-types RetryCallState
        return base * (1.0 - self.jitter * (1.0 - unit))


class _AttemptView:
    """The one field of ``tenacity.RetryCallState`` that ``wait_exponential`` reads."""

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


class _JitteredExponentialWait(tenacity.wait.wait_base):
    def __init__(self, options: RetryOptions) -> None:
        self.options = options

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.options.delay(retry_state.attempt_number, random.random())


_RETRY_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(RetryOptions))


def _tenacity_kwargs(options: RetryOptions, default_sleep: Callable[[float], Any],
                     callback: Callable[[tenacity.RetryCallState], Any]) -> dict[str, Any]:
    assert options.retry_on is not None
    never = tenacity.retry_if_not_exception_type((asyncio.CancelledError, _NotAwaitableError))
    retry = tenacity.retry_if_exception_type(options.retry_on) & never
    return {
        "sleep": options.sleep or default_sleep,
        "stop": tenacity.stop_after_attempt(options.max_retries + 1),
        "wait": _JitteredExponentialWait(options),
        "retry": retry,
        "before_sleep": callback if options.on_retry is not None else None,
        "reraise": True,  # the last exception, not tenacity.RetryError
    }


def _event(retry_state: tenacity.RetryCallState) -> tuple[int, BaseException, float]:
    assert retry_state.outcome is not None and retry_state.next_action is not None
    exception = retry_state.outcome.exception()
    assert exception is not None
    return retry_state.attempt_number, exception, retry_state.next_action.sleep


async def _run_async(func: Callable[..., Awaitable[T]], args: tuple[Any, ...],
                     kwargs: dict[str, Any], options: RetryOptions) -> T:
    async def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        assert options.on_retry is not None
        outcome = options.on_retry(*_event(retry_state))
        if inspect.isawaitable(outcome):
            await outcome

    async def attempt() -> T:
        result = func(*args, **kwargs)
        if not inspect.isawaitable(result):
            raise _NotAwaitableError(
                f"retry_async needs a function that returns an awaitable; {func!r} returned "
                f"{type(result).__name__} (use retry_sync for plain functions)"
            )
        return await result

    async def sleep(seconds: float) -> None:
        # An injected sleep may be sync (a fake clock) or async.
        assert options.sleep is not None
        outcome = options.sleep(seconds)
        if inspect.isawaitable(outcome):
            await outcome

    settings = _tenacity_kwargs(options, asyncio.sleep, before_sleep)
    if options.sleep is not None:
        settings["sleep"] = sleep
    return await tenacity.AsyncRetrying(**settings)(attempt)


def _run_sync(func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
              options: RetryOptions) -> T:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        assert options.on_retry is not None
        options.on_retry(*_event(retry_state))

    def attempt() -> T:
        result = func(*args, **kwargs)
        if inspect.iscoroutine(result):
            result.close()
            raise _NotAwaitableError(
                f"retry_sync got a coroutine from {func!r}; use retry_async for async functions"
            )
        return result

    if options.on_retry is not None and inspect.iscoroutinefunction(options.on_retry):
        raise DTypeError("retry_sync cannot await an async `on_retry`; use retry_async")
    if options.sleep is not None and inspect.iscoroutinefunction(options.sleep):
        raise DTypeError("retry_sync needs a synchronous `sleep`")
    return tenacity.Retrying(**_tenacity_kwargs(options, time.sleep, before_sleep))(attempt)


def _split_call_options(func: Callable[..., Any], kwargs: dict[str, Any],
                        retry_options: RetryOptions | None) -> tuple[RetryOptions, dict[str, Any]]:
    """Separate retry options from ``func``'s keywords in the call form (never silently)."""
    if retry_options is not None:
        if not isinstance(retry_options, RetryOptions):
            raise DTypeError(f"`retry_options` must be a RetryOptions, got {retry_options!r}")
        return retry_options, kwargs
    option_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _RETRY_OPTION_NAMES}
    if option_kwargs:
        try:
            parameters = inspect.signature(func).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        clash = sorted(name for name in option_kwargs if name in parameters)
        if clash:
            raise DTypeError(
                f"{', '.join(clash)} is both a retry option and a parameter of {func!r}; pass "
                f"the retry options as retry_options=RetryOptions(...) so every other keyword "
                f"goes to the function"
            )
    return RetryOptions(**option_kwargs), kwargs


def _dispatch(name: str, decorate: Callable[[Any, RetryOptions], Any], run: Callable[..., Any],
              func: Callable[..., Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The three forms :func:`retry_async` and :func:`retry_sync` share: decorator factory, bare
    decorator, one retried call (``run``)."""
    if func is None:
        if args:
            raise DTypeError(f"{name}(...) as a decorator factory takes keyword options only")
        unknown = sorted(set(kwargs) - _RETRY_OPTION_NAMES)
        if unknown:
            raise DTypeError(
                f"{name}(...) got unknown retry option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(sorted(_RETRY_OPTION_NAMES))}"
            )
        options = RetryOptions(**kwargs)
        return lambda f: decorate(f, options)
    check_callable(func, "func")
    if not args and not kwargs:
        return decorate(func, RetryOptions())
    retry_options = kwargs.pop("retry_options", None)
    options, func_kwargs = _split_call_options(func, kwargs, retry_options)
    return run(func, args, func_kwargs, options)


@overload
def retry_async(func: None = None, /, **options: Any) -> Callable[[F], F]: ...
@overload
def retry_async(func: F, /) -> F: ...
@overload
def retry_async(
    func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
) -> Awaitable[T]: ...


def retry_async(func: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """Retry an async function with capped, jittered exponential backoff (tenacity inside).

    Three forms:

    * ``@retry_async`` (bare) and ``@retry_async(max_retries=5, ...)``: decorators; the keywords
      are the fields of :class:`RetryOptions`. The wrapper keeps ``functools.wraps`` metadata.
    * ``await retry_async(fn, *args, max_retries=5, **kwargs)``: one retried call (the original's
      form). Keywords named like a :class:`RetryOptions` field are retry options, the rest go to
      ``fn``; if ``fn`` itself has a parameter of such a name, this raises ``TypeError`` rather
      than guess: then pass ``retry_options=RetryOptions(...)``, and *every* other keyword goes
      to ``fn`` untouched.
    * ``retry_async(fn)`` with nothing else is the bare decorator (it returns the retrying
      function); a retried call without arguments is ``await retry_async(fn)()``.

    ``max_retries + 1`` attempts in all; when they run out the last exception is re-raised
    (never ``tenacity.RetryError``); an exception outside ``retry_on`` and
    ``asyncio.CancelledError`` are raised at once.

    Raises:
        ValueRangeError: ``max_retries < 0`` or another option out of range (at decoration or
            call time, before ``fn`` runs).

    Example:
        >>> import asyncio
        >>> calls = []
        >>> async def no_sleep(seconds):
        ...     pass
        >>> @retry_async(max_retries=2, retry_on=(ConnectionError,), sleep=no_sleep)
        ... async def flaky():
        ...     calls.append(1)
        ...     if len(calls) < 3:
        ...         raise ConnectionError("try again")
        ...     return "ok"
        >>> asyncio.run(flaky()), len(calls)
        ('ok', 3)
    """
    return _dispatch("retry_async", _decorate_async, _run_async, func, args, kwargs)


def _decorate_async(
    func: Callable[..., Awaitable[T]], options: RetryOptions
) -> Callable[..., Awaitable[T]]:
    check_callable(func, "func")

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        return await _run_async(func, args, kwargs, options)

    wrapper.retry_options = options  # type: ignore[attr-defined]
    return wrapper


@overload
def retry_sync(func: None = None, /, **options: Any) -> Callable[[F], F]: ...
@overload
def retry_sync(func: F, /) -> F: ...
@overload
def retry_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


def retry_sync(func: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """The synchronous twin of :func:`retry_async` (same forms, options and rules).

    ``retry_sync(fn, *args, **kwargs)`` returns ``fn``'s result; ``retry_sync(fn)`` alone is the
    bare decorator (call ``retry_sync(fn)()`` for a retried call without arguments).

    Example:
        >>> attempts = []
        >>> def flaky(x):
        ...     attempts.append(x)
        ...     if len(attempts) < 2:
        ...         raise TimeoutError("slow")
        ...     return x * 2
        >>> retry_sync(flaky, 21, max_retries=3, sleep=lambda s: None)
        42
        >>> retry_sync(flaky, 1, max_retries=-1)
        Traceback (most recent call last):
        ...
        mdt_tensor.errors.ValueRangeError: Expected `max_retries` >= 0, but got -1.
    """
    return _dispatch("retry_sync", _decorate_sync, _run_sync, func, args, kwargs)


def _decorate_sync(func: Callable[..., T], options: RetryOptions) -> Callable[..., T]:
    check_callable(func, "func")
    if inspect.iscoroutinefunction(func):
        raise DTypeError(f"retry_sync cannot decorate the async function {func!r}; use retry_async")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return _run_sync(func, args, kwargs, options)

    wrapper.retry_options = options  # type: ignore[attr-defined]
    return wrapper
