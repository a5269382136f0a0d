"""Who has the floor in a room with several callers: the pure policy, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
from livekit import rtc

from voicefleet_agent.floor import ONSET_SECONDS, Floor
from voicefleet_agent.providers._speech import SAMPLE_RATE

FRAME_SECONDS = 0.02
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)


def frame(loud: bool, index: int) -> rtc.AudioFrame:
    """20 ms of voice: a 220 Hz tone at speech level that dips between syllables (so it is
    not steady noise to the gate); or of silence."""
    t = (np.arange(FRAME_SAMPLES) + index * FRAME_SAMPLES) / SAMPLE_RATE
    level = 8000 if index % 10 else 200
    samples = (np.sin(2 * np.pi * 220 * t) * level * loud).astype(np.int16)
    return rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)


def talk(
    floor: Floor, who: str, seconds: float, start: float, loud: bool = True, goes_on: bool = False
) -> float | None:
    """Feed `seconds` of `who`'s microphone from `start`, after a moment of room noise (the
    gate measures speech against it) unless they `go on` talking; when the floor first went to
    them."""
    for i in range(0 if goes_on else -10, 0):
        assert floor.hear(who, frame(False, i), start + i * FRAME_SECONDS) is None
    for i in range(round(seconds / FRAME_SECONDS)):
        now = start + i * FRAME_SECONDS
        if floor.hear(who, frame(loud, i), now) == who:
            return now
    return None


def floor_with(linked: str = "ann") -> Floor:
    floor = Floor(grace=0.5, settle=3.0)
    floor.link(linked)
    return floor


def test_a_waiting_caller_takes_a_free_floor_after_a_short_onset() -> None:
    floor = floor_with()
    took = talk(floor, "bob", 1.0, start=100.0)
    assert took is not None
    # Frames are stamped with their start: the onset's last frame starts one frame earlier.
    assert ONSET_SECONDS - FRAME_SECONDS <= took - 100.0 <= ONSET_SECONDS + 0.1
    # The linked caller's own microphone never asks for what they have.
    assert talk(floor, "ann", 1.0, start=200.0) is None


def test_a_click_or_silence_does_not_take_the_floor() -> None:
    floor = floor_with()
    assert talk(floor, "bob", 0.06, start=100.0) is None
    assert talk(floor, "bob", 1.0, start=100.5, loud=False) is None


def test_never_mid_turn_the_speaker_keeps_the_floor_until_the_turn_is_over() -> None:
    floor = floor_with()
    floor.user_speaking(True, 100.0)
    assert talk(floor, "bob", 1.0, start=100.0) is None, "switched while Ann spoke"
    floor.heard_text()
    floor.user_speaking(False, 101.0)
    # The earliest the turn can end, then what Ann said awaits the end of her turn.
    assert talk(floor, "bob", 1.0, start=101.0, goes_on=True) is None
    floor.turn_committed()
    # Bob, still talking once Ann's turn is committed, takes the floor at once.
    assert talk(floor, "bob", 0.2, start=102.0, goes_on=True) == pytest.approx(102.0)


def test_speech_that_never_became_a_turn_holds_the_floor_no_longer_than_settle() -> None:
    floor = floor_with()
    floor.user_speaking(True, 100.0)
    floor.heard_text()
    floor.user_speaking(False, 100.5)
    assert floor.busy(103.4)
    assert not floor.busy(103.6)
    # Speech that produced no text at all holds it only for the grace.
    floor.link("bob")
    floor.user_speaking(True, 200.0)
    floor.user_speaking(False, 200.2)
    assert floor.busy(200.6)
    assert not floor.busy(200.8)


def test_linking_someone_starts_a_new_turn_state() -> None:
    floor = floor_with()
    floor.user_speaking(True, 100.0)
    floor.heard_text()
    floor.link("bob")
    assert floor.linked == "bob"
    assert not floor.busy(100.1)


def test_the_successor_of_a_caller_who_left_is_the_last_to_talk() -> None:
    floor = floor_with()
    assert floor.successor([]) is None
    assert floor.successor(["bob", "cyd"]) == "bob"
    floor.user_speaking(True, 100.0)  # Ann's turn: both bids wait
    talk(floor, "cyd", 0.5, start=100.0)
    talk(floor, "bob", 0.5, start=101.0)
    assert floor.successor(["bob", "cyd"]) == "bob"
    floor.forget("bob")
    assert floor.successor(["bob", "cyd"]) == "cyd"
