"""Where the Twilio edge and its routes find the account, the auth token and the public URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_API_BASE = "https://api.twilio.com"
SIGNUP = "https://console.twilio.com (Account Info: Account SID and Auth Token)"


class TwilioNotConfigured(RuntimeError):
    """A setting the request needs is missing; the message names the variable to set."""


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """``account_sid`` / ``auth_token``: the account (``TWILIO_ACCOUNT_SID``,
    ``TWILIO_AUTH_TOKEN``); the token signs every request Twilio sends and authenticates
    ours (hang-up, outbound calls). ``public_url``: the ``https://host`` Twilio reaches this
    server at (``TWILIO_PUBLIC_URL``), needed to check signatures behind a proxy or tunnel
    and to tell Twilio where the media stream is; without it the request's own URL (and any
    ``X-Forwarded-Proto/Host``) is used. ``phone_number``: the caller id of outbound calls
    (``TWILIO_PHONE_NUMBER``). ``api_base``: Twilio's REST API (tests point it elsewhere).
    """

    account_sid: str | None = None
    auth_token: str | None = None
    public_url: str | None = None
    phone_number: str | None = None
    api_base: str = DEFAULT_API_BASE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> TwilioSettings:
        env = os.environ if environ is None else environ
        settings = cls(
            account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            public_url=env.get("TWILIO_PUBLIC_URL") or None,
            phone_number=env.get("TWILIO_PHONE_NUMBER") or None,
            api_base=env.get("TWILIO_API_BASE") or DEFAULT_API_BASE,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings

    def require_token(self) -> str:
        if not self.auth_token:
            raise TwilioNotConfigured(
                "no Twilio auth token: set TWILIO_AUTH_TOKEN (or pass auth_token=) to the "
                f"account's Auth Token, from {SIGNUP}; it checks that requests come from Twilio"
            )
        return self.auth_token

    def require_account(self) -> tuple[str, str]:
        token = self.require_token()
        if not self.account_sid:
            raise TwilioNotConfigured(
                f"no Twilio account: set TWILIO_ACCOUNT_SID (or pass account_sid=), from {SIGNUP}"
            )
        return self.account_sid, token
