"""ICE host addresses: let aioice offer 127.0.0.1 on hosts (or CI sandboxes) with only loopback.

aioice skips 127.0.0.1 when it lists host addresses, so on a machine whose only interface is
`lo` the agent offers no candidate at all and no browser can connect. The browser side needs
Chromium's ``--allow-loopback-in-peer-connection`` for the same reason.
"""

from __future__ import annotations

from typing import Literal

import aioice.ice

LoopbackMode = bool | Literal["auto"]

_original = aioice.ice.get_host_addresses


def _with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses = _original(use_ipv4, use_ipv6)
    if use_ipv4 and "127.0.0.1" not in addresses:
        addresses.append("127.0.0.1")
    return addresses


def include_loopback(mode: LoopbackMode = "auto") -> bool:
    """Make aioice offer 127.0.0.1 as a host candidate (process-wide, idempotent).

    ``"auto"`` does so only when the host has no other IPv4 address. Returns whether loopback
    candidates are now offered.
    """
    if aioice.ice.get_host_addresses is _with_loopback:
        return True
    if mode is False or (mode == "auto" and _original(True, False)):
        return False
    aioice.ice.get_host_addresses = _with_loopback
    return True
