"""The tally of callers a queue could not offer a callback: waiting now, over the last day,
by reason; plain data and time as values."""

from __future__ import annotations

import pytest

from callcenter.core.callback_offers import (
    NoOfferReason,
    NotOffered,
    NotOfferedTally,
    ReasonCount,
)

NOT_ALLOWED = NoOfferReason.NUMBER_NOT_ALLOWED
NO_NUMBER = NoOfferReason.NO_NUMBER
DAY = 86400.0


def test_a_caller_is_counted_once_while_waiting_and_stays_in_the_days_count_after() -> None:
    tally = NotOfferedTally()
    assert tally.not_offered("c1", "support", NOT_ALLOWED, 100.0) is True
    assert tally.not_offered("c1", "support", NOT_ALLOWED, 130.0) is False  # said once
    assert tally.not_offered("c2", "support", NO_NUMBER, 140.0) is True
    assert tally.figures("support", 150.0) == NotOffered(
        waiting=2, recent=2, window_seconds=DAY,
        reasons=(ReasonCount(NO_NUMBER, 1, 1), ReasonCount(NOT_ALLOWED, 1, 1)))
    assert tally.left("c1") == "support"
    assert tally.left("c1") is None
    assert tally.left("never-counted") is None
    assert tally.figures("support", 160.0) == NotOffered(
        waiting=1, recent=2, window_seconds=DAY,
        reasons=(ReasonCount(NO_NUMBER, 1, 1), ReasonCount(NOT_ALLOWED, 0, 1)))
    assert tally.figures("sales", 160.0) == NotOffered(0, 0, DAY, ())


def test_a_caller_who_overflows_moves_and_counts_in_both_queues_days() -> None:
    tally = NotOfferedTally()
    tally.not_offered("c1", "support", NOT_ALLOWED, 100.0)
    assert tally.counted_in("c1") == "support"
    assert tally.not_offered("c1", "operator", NOT_ALLOWED, 700.0) is False  # no new log line
    assert tally.counted_in("c1") == "operator"
    assert tally.figures("support", 800.0).waiting == 0
    assert tally.figures("support", 800.0).recent == 1
    assert (tally.figures("operator", 800.0).waiting,
            tally.figures("operator", 800.0).recent) == (1, 1)


def test_the_days_count_forgets_callers_older_than_the_window() -> None:
    tally = NotOfferedTally(window_seconds=60.0)
    tally.not_offered("c1", "support", NOT_ALLOWED, 0.0)
    tally.left("c1")
    tally.not_offered("c2", "support", NOT_ALLOWED, 30.0)
    assert tally.figures("support", 59.0).recent == 2
    assert tally.figures("support", 60.0).recent == 1  # c1's moment is a window ago
    assert tally.figures("support", 200.0).recent == 0
    assert tally.figures("support", 200.0).waiting == 1  # c2 still waits: counted now


def test_every_reason_says_what_it_means() -> None:
    assert NOT_ALLOWED.text == "number not allowed by the outbound rules"
    assert NO_NUMBER.text.startswith("no number (anonymous")
    assert NoOfferReason.CALLBACKS_DISABLED.text.startswith("callbacks disabled")


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        NotOfferedTally(window_seconds=0)
