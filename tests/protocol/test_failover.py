"""The failover policy, without Home Assistant: ranking, cool-off, back-off."""

from __future__ import annotations

from hypothesis import given, strategies as st

from custom_components.dc_mesh.dcmesh import Candidate, FailoverPolicy, FailoverTiming

TIMING = FailoverTiming(
    cool_off=60.0, fresh=30.0, backoff_initial=1.0, backoff_max=60.0, stable_after=60.0
)


def _c(address: str, rssi: int = -70, seen: float = 100.0, ready: bool | None = None):
    return Candidate(address, rssi, seen, ready)


def _order(policy: FailoverPolicy, candidates: list[Candidate], now: float = 100.0):
    return [c.address for c in policy.rank(candidates, now)]


def test_strongest_signal_first_among_equals() -> None:
    assert _order(FailoverPolicy(TIMING), [_c("a", -80), _c("b", -60)]) == ["b", "a"]


def test_failed_node_cools_off_for_a_fixed_time_whatever_it_advertises() -> None:
    """HA refreshes an advert's time at every advert: that must not end the cool-off."""
    policy = FailoverPolicy(TIMING)
    policy.failed("b", now=100.0)
    fresh_advert = [_c("a", -80, seen=110.0), _c("b", -40, seen=110.0)]
    assert _order(policy, fresh_advert, now=110.0) == ["a", "b"]
    assert _order(policy, fresh_advert, now=159.0) == ["a", "b"]
    assert _order(policy, fresh_advert, now=161.0) == ["b", "a"]


def test_mesh_not_ready_comes_after_ready_and_unknown() -> None:
    policy = FailoverPolicy(TIMING)
    candidates = [
        _c("booting", -40, ready=False),
        _c("v07", -90),
        _c("up", -80, ready=True),
    ]
    assert _order(policy, candidates) == ["up", "v07", "booting"]


def test_stale_advertiser_after_fresh_ones() -> None:
    policy = FailoverPolicy(TIMING)
    assert _order(policy, [_c("gone", -40, seen=10.0), _c("here", -90)]) == [
        "here",
        "gone",
    ]


def test_last_good_gateway_beats_a_louder_stranger() -> None:
    policy = FailoverPolicy(TIMING)
    policy.connected("good", now=0.0)
    policy.lost("good", now=100.0)  # its link held: then it died
    # after its cool-off it comes back, and a never verified loud device appears
    order = _order(policy, [_c("stranger", -30), _c("good", -85)], now=200.0)
    assert order == ["good", "stranger"]


def test_preferred_node_first_among_verified() -> None:
    policy = FailoverPolicy(TIMING, preferred="pref")
    assert _order(policy, [_c("other", -40), _c("pref", -90)]) == ["pref", "other"]


def test_backoff_doubles_and_holds_until_a_link_is_stable() -> None:
    policy = FailoverPolicy(TIMING)
    assert [policy.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    # A link that flaps (up 5 s) does not reset the back-off ...
    policy.connected("a", now=0.0)
    policy.lost("a", now=5.0)
    assert policy.next_delay() == 60
    # ... one that held for a minute does.
    policy.connected("a", now=100.0)
    policy.lost("a", now=200.0)
    assert policy.next_delay() == 1


def test_wake_only_for_usable_nodes() -> None:
    policy = FailoverPolicy(TIMING)
    policy.failed("flappy", now=100.0)
    assert not policy.worth_waking(_c("flappy"), now=101.0)
    assert not policy.worth_waking(_c("booting", ready=False), now=101.0)
    assert policy.worth_waking(_c("fine", ready=True), now=101.0)


@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcdef"),
            st.integers(-100, -30),
            st.floats(0, 200),
            st.sampled_from([None, True, False]),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda t: t[0],
    ),
    st.sets(st.sampled_from("abcdef")),
)
def test_ranking_is_a_permutation_and_never_puts_a_cooling_node_first_needlessly(
    raw: list[tuple[str, int, float, bool | None]], failed: set[str]
) -> None:
    policy = FailoverPolicy(TIMING)
    for address in failed:
        policy.failed(address, now=190.0)
    candidates = [Candidate(a, r, s, m) for a, r, s, m in raw]
    ranked = policy.rank(candidates, now=200.0)
    assert sorted(c.address for c in ranked) == sorted(c.address for c in candidates)
    if any(c.address not in failed for c in candidates):
        assert ranked[0].address not in failed


def test_node_not_heard_for_a_few_intervals_comes_after_present_ones() -> None:
    """It may have died with the gateway (one power circuit), its advert still cached."""
    policy = FailoverPolicy(TIMING)
    candidates = [_c("silent", -40, seen=96.0), _c("present", -90, seen=99.5)]
    assert _order(policy, candidates) == ["present", "silent"]
    # ... but before a stranger or a node in its cool-off
    policy.failed("present", now=99.0)
    assert _order(policy, candidates) == ["silent", "present"]


def test_a_node_back_on_air_after_a_silence_ends_its_cool_off() -> None:
    policy = FailoverPolicy(TIMING)
    policy.failed("a", now=100.0)
    assert not policy.heard("a", silence=0.1)  # advertising on: still cooling off
    assert policy.cooling_off("a", now=101.0)
    assert policy.heard("a", silence=TIMING.recent)  # it was off: a fresh start
    assert not policy.cooling_off("a", now=101.0)
    assert policy.worth_waking(_c("a", seen=101.0), now=101.0)


@given(st.floats(0.0, 1000.0), st.floats(0.0, 1000.0))
def test_heard_only_forgives_after_the_silence_threshold(
    failed_at: float, silence: float
) -> None:
    policy = FailoverPolicy(TIMING)
    policy.failed("a", now=failed_at)
    came_back = policy.heard("a", silence=silence)
    assert came_back == (silence >= TIMING.recent)
    assert policy.cooling_off("a", now=failed_at) == (not came_back)
