"""The two calls of Twilio's REST API the edge needs: place a call, and hang one up."""

from __future__ import annotations

from typing import Any

import httpx
from parley.errors import ProviderError
from parley.providers import http_error, json_body, response_text

from parley_twilio.settings import TwilioSettings


class TwilioError(ProviderError):
    provider_name = "Twilio"


class TwilioREST:
    """``POST /2010-04-01/Accounts/{sid}/Calls.json`` and ``…/Calls/{call_sid}.json``.

    Authenticates with the account SID and auth token (HTTP basic). One short-lived httpx
    client per request unless ``client`` is given (hang-ups and dials are rare).
    """

    def __init__(
        self, settings: TwilioSettings, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.settings = settings
        self._client = client

    async def create_call(
        self, to: str, from_: str, twiml: str, *, status_callback: str | None = None
    ) -> dict[str, Any]:
        """Dial ``to`` from ``from_``; the call runs ``twiml`` once answered."""
        form = {"To": to, "From": from_, "Twiml": twiml}
        if status_callback:
            form["StatusCallback"] = status_callback
        return await self._post("Calls.json", form)

    async def hang_up(self, call_sid: str) -> dict[str, Any]:
        """End a call in progress (``Status=completed``)."""
        return await self._post(f"Calls/{call_sid}.json", {"Status": "completed"})

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        account, token = self.settings.require_account()
        url = f"{self.settings.api_base.rstrip('/')}/2010-04-01/Accounts/{account}/{path}"
        client = self._client or httpx.AsyncClient(timeout=10.0)
        try:
            response = await client.post(url, data=form, auth=(account, token))
        except httpx.HTTPError as exc:
            raise TwilioError(f"cannot reach Twilio's API: {exc}", retryable=True) from exc
        finally:
            if self._client is None:
                await client.aclose()
        if response.status_code >= 400:
            text = response_text(response.content)
            body = json_body(text)
            detail = body.get("message") if body is not None else None
            raise http_error(
                TwilioError,
                "Twilio",
                response.status_code,
                str(detail or text),
                retry_after=response.headers.get("retry-after"),
            )
        return json_body(response_text(response.content)) or {}
