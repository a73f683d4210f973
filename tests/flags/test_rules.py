"""How a flag is decided: the order of rules, and a rollout that is stable and fair."""

from __future__ import annotations

import itertools

from skilltree.flags.service import FlagRules, bucket, decide

ROLLOUT = FlagRules("new-thing", enabled=False, rollout_percentage=100)


def test_a_user_override_beats_every_other_rule() -> None:
    rules = FlagRules(
        "f", enabled=True, rollout_percentage=100, users={7: False}, organisations={3: True}
    )

    decision = decide(rules, 7, [3])

    assert (decision.value, decision.reason, decision.rule) == (False, "TARGETING_MATCH", "user")


def test_an_organisation_override_beats_the_rollout_and_the_default() -> None:
    rules = FlagRules("f", enabled=False, rollout_percentage=0, organisations={3: True})

    decision = decide(rules, 7, [3])
    outsider = decide(rules, 7, [4])

    assert (decision.value, decision.reason, decision.rule) == (
        True,
        "TARGETING_MATCH",
        "organisation",
    )
    assert (outsider.value, outsider.rule) == (False, "default")


def test_when_the_callers_organisations_disagree_off_wins() -> None:
    rules = FlagRules("f", enabled=True, organisations={3: True, 4: False})

    assert decide(rules, 7, [3, 4]).value is False
    assert decide(rules, 7, [3]).value is True


def test_the_rollout_comes_before_the_default_and_only_for_signed_in_users() -> None:
    everyone = decide(ROLLOUT, 7, [])
    anonymous = decide(ROLLOUT, None, [])

    assert (everyone.value, everyone.reason, everyone.rule) == (True, "SPLIT", "percentage")
    assert (anonymous.value, anonymous.reason, anonymous.rule) == (False, "DEFAULT", "default")


def test_a_user_outside_the_rollout_gets_the_default() -> None:
    rules = FlagRules("f", enabled=False, rollout_percentage=0)

    decision = decide(rules, 7, [])

    assert (decision.value, decision.reason, decision.variant) == (False, "DEFAULT", "off")


def test_a_users_bucket_is_stable_and_differs_between_flags() -> None:
    assert bucket("a", 42) == bucket("a", 42)
    assert 0 <= bucket("a", 42) < 10_000
    users = range(1, 2_001)
    # Independent splits: the users in one flag's first 10 % are not those of another's.
    first = {u for u in users if bucket("a", u) < 1_000}
    second = {u for u in users if bucket("b", u) < 1_000}
    assert len(first & second) < len(first) / 3


def test_raising_the_percentage_keeps_everyone_already_in() -> None:
    users = range(1, 5_001)
    included = {
        percentage: {u for u in users if decide(FlagRules("f", False, percentage), u, []).value}
        for percentage in (0, 5, 10, 25, 50, 90, 100)
    }

    ordered = [included[p] for p in sorted(included)]
    for smaller, larger in itertools.pairwise(ordered):
        assert smaller <= larger
    assert included[0] == set()
    assert included[100] == set(users)


def test_the_share_of_users_in_the_rollout_is_close_to_the_percentage() -> None:
    users = range(1, 20_001)
    for percentage in (1, 10, 33, 50, 75):
        share = sum(decide(FlagRules("f", False, percentage), u, []).value for u in users) / len(
            users
        )
        # 20,000 users: a binomial standard deviation is at most 0.36 points.
        assert abs(share - percentage / 100) < 0.015, (percentage, share)
