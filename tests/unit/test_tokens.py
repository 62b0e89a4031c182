"""TokenCodec remembers the tokens it verified: the same answers as the full check, faster."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.tokens import CLOCK_SKEW_S, Claims, InvalidToken, TokenCodec

SECRET = "unit-test-secret-0123456789-0123456789-0123"
ISSUER = "merch-store"

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


class Clock:
    """A clock ahead of the real one by `offset` seconds (PyJWT reads the real one)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _outcome(verify: Any, token: str) -> Claims | str:
    try:
        result: Claims = verify(token)
    except InvalidToken:
        return "refused"
    return result


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens PyJWT decodes from now on, in order."""
    seen: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    return seen


def test_a_token_verified_once_is_not_decoded_again(decodes: list[str]) -> None:
    codec = TokenCodec(SECRET, ISSUER, ttl_s=600)
    token = codec.issue(sid="12113053", role="customer", version=3)

    first = codec.verify(token)
    again = [codec.verify(token) for _ in range(5)]

    assert decodes == [token]
    assert first == Claims(sid="12113053", role="customer", version=3, expires_at=first.expires_at)
    assert all(claims == first for claims in again)


def test_a_remembered_token_is_refused_once_it_expires(decodes: list[str]) -> None:
    clock = Clock()
    codec = TokenCodec(SECRET, ISSUER, ttl_s=60, clock=clock)
    token = codec.issue(sid="12113053", role="customer", version=1)
    assert codec.verify(token).sid == "12113053"

    clock.offset = 30.0
    assert codec.verify(token).sid == "12113053"
    assert decodes == [token]  # the second answer came from memory
    clock.offset = 60.0  # now >= exp: expired, as PyJWT says

    with pytest.raises(InvalidToken):
        codec.verify(token)
    with pytest.raises(InvalidToken):
        codec.verify(token)
    assert decodes == [token] * 3  # both refusals were full checks: nothing expired is kept


def test_a_token_that_fails_is_never_remembered(decodes: list[str]) -> None:
    codec = TokenCodec(SECRET, ISSUER, ttl_s=600)
    token = codec.issue(sid="12113053", role="customer", version=1)
    assert codec.verify(token).role == "customer"  # the genuine token is remembered first
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = f"{header}.{_b64({**claims, 'role': 'admin'})}.{signature}"  # its signature reused

    for _ in range(2):
        with pytest.raises(InvalidToken):
            codec.verify(forged)

    assert decodes == [token, forged, forged]


def test_a_fractional_exp_ends_the_token_at_its_whole_second() -> None:
    """PyJWT reads `exp` as int(exp): a token with exp T+30.5 has expired at T+30.2."""
    base = int(time.time())
    claims = {"sub": "12113053", "role": "customer", "ver": 1, "iss": ISSUER}
    token = jwt.encode({**claims, "iat": base, "exp": base + 30.5}, SECRET, algorithm="HS256")
    now = [base + 29.9]
    codec = TokenCodec(SECRET, ISSUER, ttl_s=600, clock=lambda: now[0])

    assert codec.verify(token).expires_at == base + 30  # remembered, ending at T+30
    now[0] = base + 30.2
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_memory_is_bounded_and_forgets_the_oldest_first(decodes: list[str]) -> None:
    codec = TokenCodec(SECRET, ISSUER, ttl_s=600, verified_max=3)
    issued = [codec.issue(sid=f"{i:08d}", role="customer", version=1) for i in range(5)]
    for token in issued:
        codec.verify(token)
    decodes.clear()

    for token in issued[2:]:  # the newest three are remembered
        codec.verify(token)
    assert decodes == []
    codec.verify(issued[0])  # the oldest was forgotten
    assert decodes == [issued[0]]


def test_a_codec_must_remember_at_least_one_token() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TokenCodec(SECRET, ISSUER, ttl_s=600, verified_max=0)


def test_the_secret_is_not_in_the_codec_repr() -> None:
    assert SECRET not in repr(TokenCodec(SECRET, ISSUER, ttl_s=600))


# Offsets in seconds from the time each example runs. None are within a second or two of it, so
# PyJWT's own clock, read a moment later by the reference, cannot decide differently.
_claim_sets = st.fixed_dictionaries(
    {},
    optional={
        "sub": st.one_of(st.sampled_from(["12113053", "NOSUCHUSER", ""]), st.integers(0, 9)),
        "role": st.one_of(st.sampled_from(["customer", "admin"]), st.integers(0, 1)),
        "ver": st.one_of(st.integers(0, 3), st.just("1"), st.just(1.0)),
        "iat": st.sampled_from([-600, -1, 600]),
        "exp": st.sampled_from([-600, -31, -1, 3, 29, 30.5, 31, 299, 600]),
        "iss": st.sampled_from([ISSUER, "someone-else"]),
    },
)
_HOW = st.sampled_from(["HS256", "HS512", "other secret", "none", "tampered"])


def _token(claims: dict[str, Any], how: str) -> str:
    if how == "none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    secret = "another-secret-0123456789-0123456789-012" if how == "other secret" else SECRET
    token = jwt.encode(claims, secret, algorithm="HS512" if how == "HS512" else "HS256")
    if how == "tampered":
        header, _, signature = token.split(".")
        token = f"{header}.{_b64({**claims, 'role': 'admin'})}.{signature}"
    return token


@settings(max_examples=300, deadline=None)
@given(
    offsets=_claim_sets,
    how=_HOW,
    later=st.sampled_from([0, 1, 29, 31, 299, 601, 1201]),
)
def test_remembered_answers_match_the_full_check(
    offsets: dict[str, Any], how: str, later: int
) -> None:
    """Differential: a codec that remembers answers what a fresh, full check answers, now and
    after the clock moves on."""
    base = int(time.time())
    claims = {k: base + v if k in ("iat", "exp") else v for k, v in offsets.items()}
    token = _token(claims, how)
    now = [base + 0.5]  # the codecs' clock, frozen between PyJWT's whole seconds
    codec = TokenCodec(SECRET, ISSUER, ttl_s=600, clock=lambda: now[0])

    def reference(candidate: str) -> Claims:  # a codec that has seen nothing yet
        return TokenCodec(SECRET, ISSUER, ttl_s=600, clock=lambda: now[0]).verify(candidate)

    assert _outcome(codec.verify, token) == _outcome(reference, token)
    assert _outcome(codec.verify, token) == _outcome(reference, token)
    now[0] = base + 0.5 + later
    assert _outcome(codec.verify, token) == _outcome(reference, token)


@pytest.mark.parametrize(("iat_ahead_s", "accepted"), [(3, True), (CLOCK_SKEW_S + 2, False)])
def test_a_token_from_a_host_whose_clock_is_a_little_ahead_is_accepted(
    iat_ahead_s: int, accepted: bool
) -> None:
    # given a token issued by a db_service replica whose clock runs ahead of this host's
    base = int(time.time())
    claims = {"sub": "12113053", "role": "customer", "ver": 1, "iss": ISSUER}
    issued = base + iat_ahead_s
    token = jwt.encode({**claims, "iat": issued, "exp": issued + 600}, SECRET, algorithm="HS256")

    # when it is used at once on this host, then its expiry is still to the second
    codec = TokenCodec(SECRET, ISSUER, ttl_s=600)
    outcome = _outcome(codec.verify, token)

    # then a skew within CLOCK_SKEW_S is no reason to refuse it (a 401 right after login)
    assert isinstance(outcome, Claims) is accepted, outcome
