"""The rules of identity and browser sessions: no HTTP types, no SQL.

Every secret handed to a user (session id, e-mail token) is 256 bits from `secrets` and stored
only as its SHA-256 digest. Every failure that could reveal whether an e-mail is registered looks
the same to the caller — same error, same timing, same response.

The rules live in one module per flow; this module is the domain's one entry point to them:

    context         what every flow shares (AccountsContext, SignedIn, the outcomes)
    registration    new accounts and e-mail verification
    signin          password, OpenID provider and second factor; sessions and token pairs
    authentication  who is calling (cookie, access token or API key), opening sessions and
                    token families; principal_cache keeps the answer between requests
    credentials     password resets and changes, second factor enrolment, e-mail tokens
    sign_out        one session, every session, the list of sessions
    closing         re-authenticating for, and removing, the account itself
"""

from __future__ import annotations

from skilltree.accounts.authentication import (
    authenticate,
    authenticate_api_key,
    authenticate_token,
    credential_in_force,
    credential_reference,
    kept_api_key,
    kept_session,
    kept_token,
    open_session,
    open_token_family,
    token_pair,
)
from skilltree.accounts.closing import confirm_deletion, delete_account
from skilltree.accounts.context import (
    MFA_CHALLENGE_MINUTES,
    MFA_SESSION,
    MFA_TOKENS,
    RESET_PASSWORD,
    SECRET_BYTES,
    SLIDE_INTERVAL,
    VERIFY_EMAIL,
    Account,
    AccountsContext,
    MfaChallenge,
    SignedIn,
    TokenPair,
    normalize_email,
)
from skilltree.accounts.credentials import (
    change_password,
    enable_mfa,
    issue_email_token,
    request_password_reset,
    reset_password,
    set_password,
    spend_email_token,
)
from skilltree.accounts.registration import (
    add_user,
    create_user,
    register,
    verify_email,
)
from skilltree.accounts.sign_out import (
    end_every_sign_in,
    end_session,
    keep_only_this_sign_in,
    list_sessions,
    logout,
    logout_everywhere,
)
from skilltree.accounts.signin import (
    challenge,
    check_credentials,
    complete_mfa,
    issue_tokens,
    login,
    refresh_tokens,
    sign_in_with_provider,
)

__all__ = [
    "MFA_CHALLENGE_MINUTES",
    "MFA_SESSION",
    "MFA_TOKENS",
    "RESET_PASSWORD",
    "SECRET_BYTES",
    "SLIDE_INTERVAL",
    "VERIFY_EMAIL",
    "Account",
    "AccountsContext",
    "MfaChallenge",
    "SignedIn",
    "TokenPair",
    "add_user",
    "authenticate",
    "authenticate_api_key",
    "authenticate_token",
    "challenge",
    "change_password",
    "check_credentials",
    "complete_mfa",
    "confirm_deletion",
    "create_user",
    "credential_in_force",
    "credential_reference",
    "delete_account",
    "enable_mfa",
    "end_every_sign_in",
    "end_session",
    "issue_email_token",
    "issue_tokens",
    "keep_only_this_sign_in",
    "kept_api_key",
    "kept_session",
    "kept_token",
    "list_sessions",
    "login",
    "logout",
    "logout_everywhere",
    "normalize_email",
    "open_session",
    "open_token_family",
    "refresh_tokens",
    "register",
    "request_password_reset",
    "reset_password",
    "set_password",
    "sign_in_with_provider",
    "spend_email_token",
    "token_pair",
    "verify_email",
]
