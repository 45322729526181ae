"""Claims, identities and verdicts (SPEC §7.1) from hand-made intervals."""
import pytest

from mechanism.stats.bootstrap import Interval
from mechanism.stats.evidence import (MIN_SEEDS, Claim, Evidence, Identity, Status, Verdict,
                                      verdict_of)


def claim(low, high, direction="<", threshold=0.0, seeds=3, training=False, name="c", est=None):
    est = (low + high) / 2 if est is None and low is not None else est
    return Claim(name, "Δ", est, low, high, direction, threshold, seeds, 40, training)


@pytest.mark.parametrize("low, high, direction, status", [
    (-0.3, -0.1, "<", Status.HOLDS),
    (0.1, 0.3, "<", Status.FAILS),
    (-0.1, 0.2, "<", Status.NOT_RESOLVED),
    (-0.2, 0.0, "<", Status.NOT_RESOLVED),    # touches 0: "< 0" does not hold everywhere
    (0.0, 0.2, "<", Status.FAILS),            # [0, 0.2] is entirely ≥ 0
    (-0.2, 0.0, "≤", Status.HOLDS),           # touching counts for ≤
    (0.0, 0.2, "≤", Status.NOT_RESOLVED),
    (1.2, 1.5, "≥", Status.HOLDS),
    (1.0, 1.1, "≥", Status.NOT_RESOLVED),     # threshold 1.1 touched from below
    (1.0, 1.09, "≥", Status.FAILS),
    (1.1, 1.3, ">", Status.NOT_RESOLVED),
])
def test_status_from_interval(low, high, direction, status):
    threshold = 1.1 if direction in "≥>" else 0.0
    assert claim(low, high, direction, threshold).status is status


def test_training_claim_needs_three_seeds_whatever_its_interval():
    c = claim(-0.3, -0.1, seeds=MIN_SEEDS - 1, training=True)
    assert c.status is Status.NOT_RESOLVED and "S = 2 < 3" in c.reason
    assert claim(-0.3, -0.1, seeds=MIN_SEEDS, training=True).status is Status.HOLDS
    assert claim(-0.3, -0.1, seeds=1, training=False).status is Status.HOLDS


def test_missing_estimate_or_interval_is_not_resolved():
    undefined = Claim("c", "ratio", None, None, None, "≥", 1.1, 3, 40, False, "zero denominator")
    assert undefined.status is Status.NOT_RESOLVED and "zero denominator" in undefined.reason
    no_boot = Claim.of("c", "Δ", Interval(-1.0, None, None, 0.95, 0, 0, "no bootstrap requested"),
                       "<", 0.0, 1, 40)
    assert no_boot.status is Status.NOT_RESOLVED and "no bootstrap" in no_boot.reason


def test_a_claim_with_a_test_holds_only_when_the_test_rejects():
    def with_p(low, high, p):
        return Claim("c", "d", (low + high) / 2, low, high, "<", 4.0, 1, 40, False, "", p)
    assert with_p(3.0, 3.5, 1e-9).status is Status.HOLDS
    held_back = with_p(3.0, 3.5, 0.05)
    assert held_back.status is Status.NOT_RESOLVED and "does not reject" in held_back.reason
    assert with_p(4.0, 4.5, 1e-9).status is Status.FAILS      # a rejecting test cannot save it
    with pytest.raises(ValueError):
        Claim("c", "q", 0.0, 0.0, 0.0, "=", 0.0, 1, 1, False)


def test_each_verdict_level():
    hold, fail, open_ = claim(-2, -1, name="a"), claim(1, 2, name="b"), claim(-1, 1, name="u")
    assert verdict_of([hold, claim(-3, -1, name="a2")])[0] is Verdict.SUPPORTED
    assert verdict_of([fail, claim(3, 4, name="b2")])[0] is Verdict.NOT_SUPPORTED
    assert verdict_of([hold, fail])[0] is Verdict.PARTIAL
    verdict, reason = verdict_of([hold, fail, open_])
    assert verdict is Verdict.INCONCLUSIVE and "u needs a narrower interval" in reason
    verdict, reason = verdict_of([hold, claim(-2, -1, seeds=1, training=True, name="t")])
    assert verdict is Verdict.INCONCLUSIVE and "t needs ≥ 3 training seeds" in reason
    assert verdict_of([])[0] is Verdict.INCONCLUSIVE


def test_identities_never_enter_the_verdict():
    wrong = Identity("N/k", "N/k", 49.0, 12.0)
    ev = Evidence((claim(-2, -1),), (wrong, Identity("N/k", "N/k", 49.0, 49.0 * (1 + 1e-9))))
    assert ev.verdict is Verdict.SUPPORTED
    assert wrong.agrees is False and ev.identities[1].agrees is True
    assert Identity("x", "x", 1.0, None).agrees is None


def test_evidence_round_trips_through_plain_data():
    from mechanism.io.serialize import from_plain, to_plain
    ev = Evidence((claim(-2, -1), claim(1, 2, name="b")),
                  (Identity("N/k", "N/k", 49.0, 49.0),))
    again = from_plain(Evidence, to_plain(ev))
    assert again == ev and again.verdict is Verdict.PARTIAL
