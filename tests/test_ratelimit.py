"""The limiter's arithmetic under a fake clock: no real sleeping."""

import asyncio

import pytest

from archiver.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(clock: FakeClock, limit: int = 3, period: float = 60.0) -> RateLimiter:
    return RateLimiter(limit, period, clock=clock, sleep=clock.sleep)


async def use(lim: RateLimiter, clock: FakeClock, duration: float = 0.0) -> float:
    async with lim.slot():
        start = clock.now
        clock.now += duration
    return start


async def test_no_window_ever_holds_more_than_the_limit() -> None:
    clock = FakeClock()
    lim = limiter(clock, limit=3)
    starts = [await use(lim, clock, duration=0.5) for _ in range(10)]
    for i, t in enumerate(starts):
        in_window = [s for s in starts if t <= s < t + 60]
        assert len(in_window) <= 3, (i, starts)
    assert starts[:3] == [1000.0, 1000.5, 1001.0], "the first burst does not wait"
    assert starts[3] == pytest.approx(1000.5 + 60), "counted from the first request's completion"


async def test_delay_is_counted_from_completion() -> None:
    """A slow response holds its slot until it completes: the server counts arrivals."""
    clock = FakeClock()
    lim = limiter(clock, limit=1)
    await use(lim, clock, duration=10)
    assert lim.delay(clock.now) == pytest.approx(60)


async def test_pause_stops_everyone() -> None:
    clock = FakeClock()
    lim = limiter(clock, limit=100)
    lim.pause(7)
    start = await use(lim, clock)
    assert start == pytest.approx(1007) and lim.waited_seconds == pytest.approx(7)


async def test_in_flight_requests_hold_slots() -> None:
    clock = FakeClock()
    lim = limiter(clock, limit=2)
    entered = [asyncio.Event(), asyncio.Event()]
    release = asyncio.Event()

    async def hold(i: int) -> None:
        async with lim.slot():
            entered[i].set()
            await release.wait()

    holders = [asyncio.create_task(hold(i)) for i in range(2)]
    await asyncio.gather(*(e.wait() for e in entered))
    assert lim.delay(clock.now) == float("inf")
    third = asyncio.create_task(use(lim, clock))
    await asyncio.sleep(0)
    assert not third.done()
    release.set()
    await asyncio.gather(*holders)
    assert await third == pytest.approx(1060)


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_urgent_requests_overtake_queued_backfill() -> None:
    """The live tail is never stuck behind a long backfill's queue, not even its sleeping head."""
    from archiver.ratelimit import urgent

    clock = FakeClock()
    lim = limiter(clock, limit=1)
    gate = asyncio.Event()

    async def gated_sleep(seconds: float) -> None:
        await gate.wait()
        clock.now += seconds

    lim._sleep = gated_sleep
    order: list[str] = []

    async def request(name: str) -> None:
        async with lim.slot():
            order.append(name)

    await request("first")  # the single slot is now used for 60 s
    backfill = [asyncio.create_task(request(f"backfill-{i}")) for i in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)  # all three queued, backfill-0 asleep waiting for the slot

    async def tail() -> None:
        with urgent():
            await request("tail")

    live = asyncio.create_task(tail())
    for _ in range(5):
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*backfill, live)
    assert order == ["first", "tail", "backfill-0", "backfill-1", "backfill-2"]


async def test_cancelled_waiter_leaves_the_queue() -> None:
    clock = FakeClock()
    lim = limiter(clock, limit=1)
    await use(lim, clock)
    gate = asyncio.Event()

    async def never(_: float) -> None:
        await gate.wait()

    lim._sleep = never  # the head waits "forever" for its slot
    waiting = asyncio.create_task(use(lim, clock))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert lim._queue == [] and lim._in_flight == 0
