"""`app.throttle.Throttle`: a chore is due at the first call, then at most once a period."""

from __future__ import annotations

import threading

import pytest

from app import throttle
from app.throttle import Throttle


def test_due_at_first_then_once_a_period(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(throttle.time, "monotonic", lambda: clock[0])
    chore = Throttle(60.0)
    assert chore.due() and not chore.due()
    clock[0] += 59.9
    assert not chore.due()
    clock[0] += 0.1
    assert chore.due() and not chore.due()  # the period counts from when it was last due, not from the last ask


def test_of_calls_that_come_together_one_is_told_to_do_the_chore() -> None:
    chore, answers = Throttle(60.0), []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        answers.append(chore.due())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False] * 7 + [True]
