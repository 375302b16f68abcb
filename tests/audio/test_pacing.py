"""PacingClock: when each position of a stream is due, without drift, at any speed."""

from __future__ import annotations

import asyncio
import time

import pytest

from realtime_client.audio import PacingClock


class FakeTime:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_positions_are_due_from_one_origin_at_the_speed() -> None:
    t = FakeTime()
    clock = PacingClock(2.0, clock=t)
    assert clock.origin is None
    assert clock.due(0.0) == 100.0  # the first question starts the clock
    assert clock.origin == 100.0
    assert clock.due(1.0) == pytest.approx(100.5)  # twice real time: 1 s of stream in 0.5 s
    clock.start(at=10.0)
    assert clock.due(3.0) == pytest.approx(11.5)


def test_late_wake_ups_do_not_accumulate() -> None:
    """Each delay is measured from the origin: work and late wake-ups never add up."""
    t = FakeTime(0.0)
    clock = PacingClock(1.0, clock=t)
    clock.start()
    for k in range(1, 500):
        t.now += 0.007  # the work done for the previous block
        t.now += clock.delay_s(k * 0.020) + 0.003  # the sleep, woken 3 ms late every time
        # 3 ms late, never more (20 ms sleeps would be 10 ms * k late by now).
        assert t.now == pytest.approx(k * 0.020 + 0.003)


def test_a_late_block_is_due_at_once_and_the_next_on_schedule() -> None:
    t = FakeTime(0.0)
    clock = PacingClock(1.0, start=0.0, clock=t)
    t.now = 0.055  # 35 ms behind block 1 (due at 20 ms)
    assert clock.delay_s(0.020) == 0.0
    assert clock.delay_s(0.040) == 0.0
    assert clock.delay_s(0.060) == pytest.approx(0.005)  # back on the original schedule


def test_unpaced_everything_is_due_at_once() -> None:
    t = FakeTime()
    clock = PacingClock(0, clock=t)
    assert clock.due(0.0) == clock.due(3600.0) == 100.0
    assert clock.delay_s(3600.0) == 0.0


@pytest.mark.parametrize("speed", [-1.0, float("nan"), float("inf")])
def test_rejects_a_bad_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        PacingClock(speed)


async def test_wait_sleeps_until_due_on_the_real_clock() -> None:
    clock = PacingClock(4.0)
    clock.start()
    t0 = time.monotonic()
    for k in range(1, 11):
        await clock.wait(k * 0.020)  # 10 blocks of 20 ms at 4x: 50 ms in all
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.050 - 0.002
    assert elapsed < 0.050 + 0.100  # a loaded machine is late, but never one block per wait


async def test_unpaced_wait_still_lets_other_tasks_run() -> None:
    clock = PacingClock(0)
    ran: list[int] = []

    async def other() -> None:
        for i in range(3):
            ran.append(i)
            await asyncio.sleep(0)

    task = asyncio.ensure_future(other())
    for k in range(5):
        await clock.wait(k * 1000.0)  # an hour of stream: no sleeping, only yielding
    assert ran == [0, 1, 2]
    await task
