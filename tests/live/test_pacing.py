"""Pacing and degradation logic, driven by a fake clock (no sleeping, no threads)."""

from __future__ import annotations

import pytest

from upscaler.live.pacing import DROP, FakeClock, FrameQueue, Scheduler, Stats, Tier, serve_one
from upscaler.live.source import REANCHOR_S, Pacer


def slow_tier(clock: FakeClock, name: str, cost) -> Tier:
    """A tier that 'takes' cost(item) seconds of fake time; starts with a warm-up estimate."""

    def run(item):
        clock.advance(cost(item) if callable(cost) else cost)
        return (name, item)

    return Tier(name, run, cost=cost(0) if callable(cost) else cost)


def simulate(clock, scheduler, arrivals, queue_size=8):
    """Release frames at `arrivals` into a bounded queue and serve them as the real worker
    does; returns [(frame, tier, latency)] in output order."""
    queue = FrameQueue(queue_size)
    done, i = [], 0
    for _ in range(100_000):
        while i < len(arrivals) and arrivals[i] <= clock.now():
            scheduler.stats.arrived()
            if queue.put(i, arrivals[i]) is not None:
                scheduler.stats.dropped(late=False)
            i += 1
        result = serve_one(queue, scheduler)
        if result is None:
            if i == len(arrivals):
                return done
            clock.advance(arrivals[i] - clock.now())
            continue
        head, tier, _, latency = result
        done.append((head.item, tier, latency))
    raise AssertionError("simulation did not finish")


def frames_at(fps: float, count: int) -> list[float]:
    return [i / fps for i in range(count)]


def test_fast_enough_model_enhances_every_frame():
    clock = FakeClock()
    sched = Scheduler(
        [slow_tier(clock, "fast", 0.010), slow_tier(clock, "bicubic", 0.002)],
        budget=0.25,
        clock=clock,
    )
    done = simulate(clock, sched, frames_at(30, 90))
    assert [t for _, t, _ in done] == [0] * 90
    assert max(lat for *_, lat in done) == pytest.approx(0.010)
    snap = sched.stats.snapshot()
    assert snap["enhanced"] == 90 and snap["degraded"] == 0 and snap["dropped"] == 0


def test_slow_model_degrades_instead_of_drifting():
    """A model 3x slower than real time: latency stays within the budget for the whole run
    (no drift), some frames are still enhanced, the rest degrade to the cheap tier."""
    clock = FakeClock()
    sched = Scheduler(
        [slow_tier(clock, "fast", 0.100), slow_tier(clock, "bicubic", 0.005)],
        budget=0.25,
        clock=clock,
    )
    done = simulate(clock, sched, frames_at(30, 300))
    tiers = [t for _, t, _ in done]
    latencies = [lat for *_, lat in done]
    assert len(done) == 300  # nothing dropped: the cheap tier always fits
    assert max(latencies) <= 0.25 + 1e-9
    assert max(latencies[-30:]) <= 0.25 + 1e-9  # the end is no later than the start
    assert 30 <= tiers.count(0) <= 120  # about one frame in three can get the model
    assert tiers.count(1) == 300 - tiers.count(0)
    assert [f for f, *_ in done] == list(range(300))  # order kept
    snap = sched.stats.snapshot()
    assert snap["degraded"] == tiers.count(1) and snap["enhanced"] == tiers.count(0)


def test_too_slow_for_anything_drops_late_frames_and_bounds_latency():
    clock = FakeClock()
    sched = Scheduler(
        [slow_tier(clock, "fast", 0.200), slow_tier(clock, "bicubic", 0.060)],
        budget=0.10,
        clock=clock,
    )
    done = simulate(clock, sched, frames_at(30, 150), queue_size=4)
    served = [(f, lat) for f, t, lat in done if t != DROP]
    snap = sched.stats.snapshot()
    assert snap["dropped"] > 0
    assert snap["frames_out"] + snap["dropped"] == 150
    assert max(lat for _, lat in served) <= 0.10 + 1e-9
    assert snap["enhanced"] == 0  # the model never fits a 100 ms budget


def test_no_drop_mode_degrades_every_late_frame():
    clock = FakeClock()
    sched = Scheduler(
        [slow_tier(clock, "fast", 0.200), slow_tier(clock, "bicubic", 0.020)],
        budget=0.05,
        clock=clock,
        allow_drop=False,
    )
    done = simulate(clock, sched, frames_at(30, 60), queue_size=64)
    assert all(t != DROP for _, t, _ in done) and len(done) == 60


def test_recovers_the_model_when_the_load_goes_away():
    """The model is slow for the first 3 s (a busy machine) then fast: the cost estimate
    follows and the model is used for every frame again."""
    clock = FakeClock()
    model = slow_tier(clock, "fast", lambda _: 0.150 if clock.now() < 3.0 else 0.010)
    sched = Scheduler([model, slow_tier(clock, "bicubic", 0.004)], budget=0.2, clock=clock)
    done = simulate(clock, sched, frames_at(30, 240))
    early = [t for f, t, _ in done if f < 90]
    late = [t for f, t, _ in done if f >= 150]
    assert early.count(1) > 30
    assert late == [0] * len(late)


def test_probes_the_model_again_after_a_busy_spell_pushed_it_over_the_budget():
    """The model costs 0.4 s for the first 2 s (a busy machine), 20 ms after. Its estimate
    goes over the budget, so it would never be chosen (nor measured) again: a probe every
    `probe_after` s finds it fast again, at the price of a late frame while it is not."""
    clock = FakeClock()
    model = slow_tier(clock, "fast", lambda _: 0.400 if clock.now() < 2.0 else 0.020)
    model.measured(0.020)  # the warm-up, before the busy spell
    sched = Scheduler([model, slow_tier(clock, "bicubic", 0.005)], budget=0.25, clock=clock)
    done = simulate(clock, sched, frames_at(30, 300))
    assert [t for f, t, _ in done if f >= 150] == [0] * len([f for f, *_ in done if f >= 150])
    late = [lat for _, _, lat in done if lat > 0.25 + 1e-9]
    assert len(late) <= 3 and max(late) < 0.25 + 0.400
    assert model.best == pytest.approx(0.020) and model.cost == pytest.approx(0.020)


def test_middle_tier_is_used_before_bicubic():
    clock = FakeClock()
    tiers = [
        slow_tier(clock, "fast", 0.090),
        slow_tier(clock, "cheaper-model", 0.020),
        slow_tier(clock, "bicubic", 0.003),
    ]
    sched = Scheduler(tiers, budget=0.15, clock=clock)
    simulate(clock, sched, frames_at(30, 120))
    per = sched.stats.snapshot()["per_tier"]
    assert per.get("cheaper-model", 0) > per.get("bicubic", 0)


def test_choose_keeps_room_for_the_frames_behind():
    clock = FakeClock()
    sched = Scheduler(
        [Tier("m", lambda x: x, 0.1), Tier("b", lambda x: x, 0.01)], 0.25, clock, margin=1.0
    )
    assert sched.choose(arrival=0.0, behind=[], now=0.1) == 0
    # the model would fit this frame but make the second queued frame late
    assert sched.choose(arrival=0.0, behind=[0.0, 0.0], now=0.14) == 1
    assert sched.choose(arrival=0.0, behind=[], now=0.245) == DROP


def test_queue_drops_the_oldest_when_full():
    queue = FrameQueue(3)
    dropped = [queue.put(i, i * 0.1) for i in range(5)]
    assert [d.item if d else None for d in dropped] == [None, None, None, 0, 1]
    head, behind = queue.get()
    assert head.item == 2 and behind == pytest.approx([0.3, 0.4])
    assert queue.overflowed == 2
    queue.close()
    queue.get(), queue.get()
    assert queue.get() == (None, [])


def test_pacer_releases_at_native_rate_and_reanchors_after_a_stall():
    clock = FakeClock(100.0)
    pacer = Pacer(clock)
    times = [pacer.wait(i / 25) for i in range(5)]
    assert times == pytest.approx([100 + i / 25 for i in range(5)])
    clock.advance(REANCHOR_S + 2)  # the source stalls
    late = pacer.wait(5 / 25)
    assert pacer.reanchored == 1
    assert pacer.wait(6 / 25) == pytest.approx(late + 1 / 25)  # no burst to catch up


def test_stats_rates_and_latency():
    clock = FakeClock()
    stats = Stats(clock)
    for _ in range(31):
        stats.arrived()
        stats.done(0, "fast", 0.05)
        clock.advance(1 / 30)
    snap = stats.snapshot()
    assert snap["fps_in"] == pytest.approx(30, rel=0.05)
    assert snap["latency_ms"]["p50"] == pytest.approx(50)
