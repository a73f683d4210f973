"""Errors of the accounts domain. Sign-in failures are deliberately vague: they never say whether
the e-mail exists."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, DomainError, NotFound


class InvalidCredentials(DomainError):
    status = 401
    type_slug = "invalid-credentials"
    title = "Invalid e-mail or password"
    keeps_changes = True  # the failed attempt is recorded in the audit log

    def __init__(self) -> None:
        super().__init__("The e-mail or the password is wrong.")


class EmailTaken(Conflict):
    """Only for operators (the CLI): the public API never says whether an e-mail is taken."""

    type_slug = "email-taken"
    title = "E-mail already registered"

    def __init__(self, email: str) -> None:
        super().__init__(f"{email} already has an account.")


class EmailNotVerified(DomainError):
    status = 403
    type_slug = "email-not-verified"
    title = "E-mail not verified"

    def __init__(self) -> None:
        super().__init__("Confirm your e-mail address with the link we sent, then sign in.")


class NotAuthenticated(DomainError):
    status = 401
    type_slug = "not-authenticated"
    title = "Not signed in"

    def __init__(self, detail: str = "Sign in to continue.") -> None:
        super().__init__(detail)


class CsrfRejected(DomainError):
    status = 403
    type_slug = "csrf-rejected"
    title = "Cross-site request refused"


class InvalidToken(DomainError):
    status = 400
    type_slug = "invalid-token"
    title = "Invalid or expired token"

    def __init__(self) -> None:
        super().__init__("This link is invalid, expired or already used; request a new one.")


class ApiKeyNotFound(NotFound):
    type_slug = "api-key-not-found"
    title = "API key not found"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"You have no API key {key_id}.", key=key_id)


class InsufficientScope(DomainError):
    status = 403
    type_slug = "insufficient-scope"
    title = "Insufficient scope"


class SessionNotFound(NotFound):
    type_slug = "session-not-found"
    title = "Session not found"

    def __init__(self, session_id: int) -> None:
        super().__init__(f"You have no session {session_id}.", session=session_id)


class RefreshTokenReused(NotAuthenticated):
    """A spent refresh token came back: its family is revoked, and that must be committed."""

    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("The refresh token was already used; sign in again.")


class TooManyAttempts(DomainError):
    status = 429
    type_slug = "too-many-attempts"
    title = "Too many sign-in attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-ins; try again in {retry_after} seconds.",
            retry_after=retry_after,
        )
        self.headers = {"Retry-After": str(retry_after)}


class MfaAlreadyEnabled(Conflict):
    type_slug = "mfa-already-enabled"
    title = "Two-factor authentication already on"

    def __init__(self) -> None:
        super().__init__("Two-factor authentication is already on; disable it first.")


class MfaNotPending(Conflict):
    type_slug = "mfa-not-pending"
    title = "No enrolment to confirm"

    def __init__(self) -> None:
        super().__init__("Start enrolment (POST /v1/me/mfa/totp) before confirming a code.")


class InvalidMfaCode(DomainError):
    status = 401
    type_slug = "invalid-mfa-code"
    title = "Invalid code"
    keeps_changes = True  # a spent challenge and a counted failure must stay recorded

    def __init__(self) -> None:
        super().__init__("The code is wrong or expired; sign in again.")


class SecondFactorRequired(DomainError):
    """Re-authentication for an irreversible change (deleting the account) with MFA on."""

    status = 401
    type_slug = "second-factor-required"
    title = "A current second-factor code is required"

    def __init__(self) -> None:
        super().__init__(
            "Two-factor authentication is on: send a current code from your authenticator."
        )


class MfaChallengeMismatch(DomainError):
    status = 400
    type_slug = "mfa-challenge-mismatch"
    title = "Wrong second step"

    def __init__(self) -> None:
        super().__init__(
            "Answer a challenge where its sign-in began: /v1/auth/login/mfa after "
            "/v1/auth/login, /v1/auth/token/mfa after /v1/auth/token."
        )


class NotPlatformAdmin(DomainError):
    status = 403
    type_slug = "not-platform-admin"
    title = "Platform administrators only"

    def __init__(self) -> None:
        super().__init__("Only the operator's administrators may do this.")


class UserNotFound(NotFound):
    type_slug = "user-not-found"
    title = "User not found"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"There is no user {user_id}.", user=user_id)


class LastAdministrator(Conflict):
    type_slug = "last-administrator"
    title = "The last administrator stays"

    def __init__(self) -> None:
        super().__init__(
            "This is the only platform administrator; make someone else one first, "
            "or nobody could administer the platform."
        )


class OidcProviderNotFound(NotFound):
    type_slug = "oidc-provider-not-found"
    title = "Unknown sign-in provider"

    def __init__(self, name: str) -> None:
        super().__init__(f"No sign-in provider is called {name!r}.", provider=name)


class OidcLoginFailed(DomainError):
    status = 400
    type_slug = "oidc-login-failed"
    title = "Sign-in with the provider failed"


class OidcProviderUnavailable(DomainError):
    status = 502
    type_slug = "oidc-provider-unavailable"
    title = "Sign-in provider unavailable"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The sign-in provider {name!r} did not answer as expected; try again later.",
            provider=name,
        )


class OidcEmailNotVerified(DomainError):
    status = 403
    type_slug = "oidc-email-not-verified"
    title = "E-mail not verified by the provider"

    def __init__(self) -> None:
        super().__init__(
            "The provider does not vouch for your e-mail address, so it cannot be linked to "
            "an account. Verify the address with the provider, or sign in with a password."
        )


class ScopeBeyondRights(DomainError):
    """A key may do only what its holder may: an `admin` key needs an administrator."""

    status = 403
    type_slug = "scope-beyond-rights"
    title = "Scope beyond your rights"


class RecentSignInRequired(DomainError):
    """Deleting the account without the password needs a sign-in of the last few minutes
    (decision 0059): how an account that signs in only through a provider re-authenticates."""

    status = 401
    type_slug = "recent-sign-in-required"
    title = "Send the password, or sign in again first"

    def __init__(self, minutes: int) -> None:
        super().__init__(
            "Send your current password, or sign in again (a password or a provider's sign-in)"
            f" and retry within {minutes} minutes."
        )
