from datetime import datetime, timedelta, timezone

from archiver.refresh import RefreshSchedule, interval

T = datetime(2024, 5, 1, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


def test_interval_grows_with_age_between_the_poll_and_an_hour() -> None:
    assert interval(timedelta(0), MIN) == MIN
    assert interval(10 * MIN, MIN) == MIN
    assert interval(5 * H, MIN) == 30 * MIN
    assert interval(40 * H, MIN) == H
    assert interval(40 * H, 2 * H) == 2 * H, "never more often than the poll"


def test_young_records_every_poll_old_ones_rarely() -> None:
    schedule = RefreshSchedule(MIN)
    pending = [("young", T - 2 * MIN), ("old", T - 20 * H)]
    assert schedule.due(pending, T) == ["young", "old"], "never checked: all due"
    schedule.checked(["young", "old"], T)
    polls = [T + n * MIN + timedelta(seconds=n % 3) for n in range(1, 61)]  # a minute apart, give or take
    reread: dict[str, list[int]] = {key: [] for key, _ in pending}
    for n, now in enumerate(polls, 1):
        due = schedule.due(pending, now)
        schedule.checked(due, now)
        for key in due:
            reread[key].append(n)
    assert reread["young"][:8] == list(range(1, 9)), "every poll while under ten minutes old"
    assert 10 < len(reread["young"]) < 60, "then less often"
    assert reread["old"] == [60], "twenty hours old: hourly"


def test_forgets_what_is_no_longer_pending() -> None:
    schedule = RefreshSchedule(MIN)
    schedule.checked(["a", "b"], T)
    schedule.due([("a", T - 20 * H)], T + MIN)
    assert schedule.due([("a", T - 20 * H), ("b", T - 20 * H)], T + 2 * MIN) == ["b"], \
        "b was forgotten when it left the pending list, so it is due again"
