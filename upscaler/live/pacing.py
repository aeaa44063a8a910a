"""Real-time pacing for live mode: a clock, a bounded frame queue and the scheduler.

A live source cannot wait for us. Frames are released at their native rate into a small
bounded queue (when it is full the *oldest* frame is dropped), and the scheduler decides for
each frame, from measured per-frame costs, the best enhancement *tier* that still finishes
within the latency budget without making the frames queued behind it late:

- tier 0, the model asked for (e.g. ``fast``): the frame is *enhanced*;
- later tiers, cheaper paths (an optional cheaper model, then plain bicubic): *degraded*;
- too late even for the cheapest tier: *dropped* (never shown, never encoded).

So when the machine falls behind, output quality degrades frame by frame instead of latency
drifting upwards; when it catches up, tier 0 is used again. Everything takes a `Clock`, so
tests drive it with a fake slow clock instead of sleeping.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: `Scheduler.choose` result for a frame that is too late for every tier.
DROP = -1


class Clock(Protocol):
    """Seconds on a monotonic time line, and a way to wait on it."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to (`sleep` or `advance`): for tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


@dataclass
class Queued:
    """A frame waiting for the scheduler, with the time the source released it."""

    item: Any
    arrival: float


class FrameQueue:
    """Bounded FIFO between the source and the scheduler; a full queue drops its oldest."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self.maxsize = maxsize
        self._items: deque[Queued] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.overflowed = 0

    def put(self, item: Any, arrival: float) -> Queued | None:
        """Queue `item`; returns the oldest frame dropped to make room, if any."""
        with self._cond:
            dropped = None
            if len(self._items) >= self.maxsize:
                dropped = self._items.popleft()
                self.overflowed += 1
            self._items.append(Queued(item, arrival))
            self._cond.notify()
            return dropped

    def close(self) -> None:
        """No more frames will come; `get` returns None once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def get(self, timeout: float = 0.0) -> tuple[Queued | None, list[float]]:
        """(head frame, arrival times of the frames behind it); (None, []) when there is none
        within `timeout` seconds (real time) or the queue is closed and empty."""
        with self._cond:
            if not self._items and not self._closed and timeout > 0:
                self._cond.wait(timeout)
            if not self._items:
                return None, []
            head = self._items.popleft()
            return head, [q.arrival for q in self._items]


@dataclass
class Tier:
    """One way of producing an output frame, with its running cost estimate in seconds and
    the lowest cost it has been measured at (`best`; None: only the estimate is known)."""

    name: str
    run: Callable[[Any], Any]
    cost: float = 0.0
    used: int = 0
    best: float | None = None
    measured_at: float | None = None  # clock time of its last run (None: not run yet)

    def measured(self, seconds: float) -> None:
        """Record a warm-up run: the estimate starts at the lowest one (the least disturbed)."""
        self.best = seconds if self.best is None else min(self.best, seconds)
        self.cost = self.best


class Stats:
    """Thread-safe live counters: frames in/out per tier, drops, latency and fps."""

    def __init__(self, clock: Clock, window: int = 300) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.frames_in = 0
        self.enhanced = 0
        self.degraded = 0
        self.dropped_late = 0
        self.dropped_queue = 0
        self.per_tier: dict[str, int] = {}
        self._latency: deque[float] = deque(maxlen=window)
        self._all_latency_max = 0.0
        self._latency_sum = 0.0
        self._latency_count = 0
        self._in_times: deque[float] = deque(maxlen=window)
        self._out_times: deque[float] = deque(maxlen=window)
        self.started = clock.now()

    def arrived(self) -> None:
        with self._lock:
            self.frames_in += 1
            self._in_times.append(self._clock.now())

    def dropped(self, late: bool) -> None:
        with self._lock:
            if late:
                self.dropped_late += 1
            else:
                self.dropped_queue += 1

    def done(self, tier: int, name: str, latency: float) -> None:
        with self._lock:
            if tier == 0:
                self.enhanced += 1
            else:
                self.degraded += 1
            self.per_tier[name] = self.per_tier.get(name, 0) + 1
            self._latency.append(latency)
            self._all_latency_max = max(self._all_latency_max, latency)
            self._latency_sum += latency
            self._latency_count += 1
            self._out_times.append(self._clock.now())

    @staticmethod
    def _rate(times: deque[float], now: float, span: float = 2.0) -> float:
        recent = [t for t in times if now - t <= span]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def snapshot(self) -> dict[str, Any]:
        """Counters, fps over the last 2 s and latency (ms) over the last frames."""
        with self._lock:
            now = self._clock.now()
            recent = sorted(self._latency)
            out = self.enhanced + self.degraded

            def pct(q: float) -> float:
                if not recent:
                    return 0.0
                return round(1000 * recent[min(len(recent) - 1, int(q * len(recent)))], 1)

            return {
                "frames_in": self.frames_in,
                "frames_out": out,
                "enhanced": self.enhanced,
                "degraded": self.degraded,
                "dropped": self.dropped_late + self.dropped_queue,
                "dropped_late": self.dropped_late,
                "dropped_queue": self.dropped_queue,
                "per_tier": dict(self.per_tier),
                "fps_in": round(self._rate(self._in_times, now), 2),
                "fps_out": round(self._rate(self._out_times, now), 2),
                "latency_ms": {
                    "last": round(1000 * self._latency[-1], 1) if self._latency else 0.0,
                    "mean": round(1000 * statistics.fmean(recent), 1) if recent else 0.0,
                    "p50": pct(0.5),
                    "p95": pct(0.95),
                    "max": round(1000 * self._all_latency_max, 1),
                    "mean_all": round(1000 * self._latency_sum / self._latency_count, 1)
                    if self._latency_count
                    else 0.0,
                },
                "uptime_s": round(now - self.started, 2),
            }


@dataclass
class Scheduler:
    """Chooses and runs a tier for each frame so every frame meets `arrival + budget`.

    `tiers` go from best to cheapest; their `cost` starts at a measured warm-up value and
    follows an exponential moving average of the measured run times.

    A tier's estimate only moves when it runs, so one busy spell on the machine could push
    the model's above the budget for good, even after the load has gone. A better tier not
    run for `probe_after` seconds is therefore *probed*: chosen as if it cost its `best`
    measured time, and its estimate restarts from what that run takes. At worst (the load is
    still there) one frame per `probe_after` seconds is late by the difference.
    """

    tiers: list[Tier]
    budget: float = 0.25
    clock: Clock = field(default_factory=MonotonicClock)
    allow_drop: bool = True
    alpha: float = 0.3
    margin: float = 1.2  # costs are padded by this factor: run times jitter on a busy CPU
    stats: Stats | None = None
    probe_after: float = 2.0

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("at least one tier is needed")
        if self.stats is None:
            self.stats = Stats(self.clock)
        self._started = self.clock.now()

    def _stale(self, tier: Tier, now: float) -> bool:
        """Not run for `probe_after` seconds (and not the cheapest, which always runs)."""
        last = self._started if tier.measured_at is None else tier.measured_at
        return (
            tier is not self.tiers[-1] and tier.best is not None and now - last > self.probe_after
        )

    def _estimate(self, tier: Tier, now: float) -> float:
        """The cost to plan with: the best measured one for a probe, else the estimate."""
        if tier.best is not None and self._stale(tier, now):
            return tier.best
        return tier.cost

    def choose(self, arrival: float, behind: list[float], now: float) -> int:
        """The best tier for a frame that arrived at `arrival`, with frames that arrived at
        `behind` still queued (each of those is assumed to get the cheapest tier)."""
        cheapest = self.tiers[-1].cost * self.margin
        for index, tier in enumerate(self.tiers):
            finish = now + self._estimate(tier, now) * self.margin
            if finish > arrival + self.budget:
                continue
            for later in behind:
                finish += cheapest
                if finish > later + self.budget:
                    break
            else:
                return index
        if self.allow_drop and now + self.tiers[-1].cost > arrival + self.budget:
            return DROP
        return len(self.tiers) - 1

    def process(self, queued: Queued, behind: list[float]) -> tuple[int, Any, float]:
        """Run the chosen tier on `queued.item`: (tier or DROP, result, added latency s)."""
        now = self.clock.now()
        index = self.choose(queued.arrival, behind, now)
        if index == DROP:
            self.stats.dropped(late=True)
            return DROP, None, now - queued.arrival
        tier = self.tiers[index]
        probe = self._stale(tier, now)
        result = tier.run(queued.item)
        done = self.clock.now()
        self.update_cost(index, done - now, restart=probe)
        latency = done - queued.arrival
        self.stats.done(index, tier.name, latency)
        return index, result, latency

    def update_cost(self, index: int, seconds: float, restart: bool = False) -> None:
        """Fold a measured run time into the tier's estimate (`restart`: replace it)."""
        tier = self.tiers[index]
        if restart or (tier.used == 0 and tier.cost == 0):
            tier.cost = seconds
        else:
            tier.cost = (1 - self.alpha) * tier.cost + self.alpha * seconds
        tier.best = seconds if tier.best is None else min(tier.best, seconds)
        tier.measured_at = self.clock.now()
        tier.used += 1


def serve_one(queue: FrameQueue, scheduler: Scheduler, timeout: float = 0.0):
    """Take the next frame off `queue` and process it: (queued, tier, result, latency), or
    None when no frame is waiting."""
    head, behind = queue.get(timeout)
    if head is None:
        return None
    tier, result, latency = scheduler.process(head, behind)
    return head, tier, result, latency
