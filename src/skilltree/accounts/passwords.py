"""Password policy (NIST SP 800-63B §5.1.1.2) and argon2id hashing.

The policy is the one NIST recommends, not the one people are used to: length matters, a
blocklist of known passwords matters, composition rules ("one digit, one symbol") do not — they
push users to predictable patterns. Hashes use argon2id, the winner of the Password Hashing
Competition and OWASP's first choice; its parameters live in the hash itself, so when they are
raised, older hashes are upgraded the next time their owner signs in.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from skilltree.platform.errors import UnprocessableContent

MIN_LENGTH = 12
MAX_LENGTH = 128  # argon2 accepts more; a cap keeps hashing cost bounded per request
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verifying against this hash when the account does not exist makes "no such user" take as
# long as "wrong password", so response times do not reveal which e-mails are registered.
_DECOY_HASH = _hasher.hash("decoy password that no account has")
# Hashes computed at once, at most: one per core. Each takes 64 MiB (argon2id's memory cost)
# and the CPU for the whole of its time, so more at once only adds memory — 40 concurrent
# sign-ins (anyio's thread limit) left a worker at 780 MiB — and makes each one slower.
_hashing_slots = anyio.CapacityLimiter(os.cpu_count() or 1)


class WeakPassword(UnprocessableContent):
    type_slug = "weak-password"
    title = "Password not accepted"


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """30,000 of the most common passwords, from the zxcvbn package's bundled lists."""
    # Imported on the first password chosen (sign-up, change, reset), not at start-up: the
    # module holds every zxcvbn word list, ~8 MB that a worker serving sign-ins never reads.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(password: str, *, context: Iterable[str] = ()) -> None:
    """Raise WeakPassword, saying why, unless the password is acceptable.

    `context` holds words specific to this user and service (the e-mail's local part, the
    display name): NIST asks to reject passwords built from them.
    """
    normalized = unicodedata.normalize("NFKC", password)
    if len(normalized) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.", reason="too_short")
    if len(normalized) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.", reason="too_long")
    folded = normalized.casefold()
    if folded in _common_passwords() or _is_repetition(folded):
        raise WeakPassword("This password is too common; choose another.", reason="common")
    for word in _context_words(("skilltree", *context)):
        if word in folded:
            raise WeakPassword(
                "The password must not contain your e-mail, your name or the service name.",
                reason="context",
            )


def _context_words(context: Iterable[str]) -> set[str]:
    """The words of the context ('Ada Lovelace', 'ada.l') long enough to matter (4+ letters)."""
    words = {word for text in context for word in re.split(r"[\W_]+", text.casefold())}
    return {word for word in words if len(word) >= 4}


def _is_repetition(password: str) -> bool:
    """'aaaaaaaaaaaa' or 'abcabcabcabc': long but trivially guessable."""
    for size in range(1, len(password) // 2 + 1):
        unit = password[:size]
        if len(password) % size == 0 and unit * (len(password) // size) == password:
            return True
    return False


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow (tens of ms) and memory-hard: keep it off the event loop.
    return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=_hashing_slots)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password in constant time; with no hash, spend the same time and fail."""

    def verify() -> bool:
        try:
            return (
                _hasher.verify(password_hash or _DECOY_HASH, password) and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(verify, limiter=_hashing_slots)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)
