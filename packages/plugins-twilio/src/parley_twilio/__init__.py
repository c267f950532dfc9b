"""Parley's telephony edge for Twilio Media Streams (work in progress)."""

from __future__ import annotations

PARLEY_API = 1
