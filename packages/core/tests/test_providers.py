"""The provider kit: key lookup, retry delays, refused requests, URL schemes, and PCM-16 streams."""

from __future__ import annotations

import email.utils
import pickle
import subprocess
import sys
import time

import pytest
from parley.audio import PCM16Stream
from parley.errors import ProviderError
from parley.providers import (
    MissingAPIKey,
    find_api_key,
    http_error,
    json_body,
    response_text,
    retry_delay,
    with_scheme,
)


class AcmeError(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(
            message, provider="Acme", status=status, retryable=retryable, retry_after=retry_after
        )


def test_the_argument_wins_then_the_first_variable_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_KEY", "from-env")
    monkeypatch.setenv("ACME_OTHER_KEY", "other")
    assert find_api_key("given", "ACME_KEY", part="Acme") == "given"
    assert find_api_key(None, "ACME_KEY", "ACME_OTHER_KEY", part="Acme") == "from-env"
    monkeypatch.setenv("ACME_KEY", "")  # set but empty counts as missing
    assert find_api_key("", "ACME_KEY", "ACME_OTHER_KEY", part="Acme") == "other"


def test_a_missing_key_names_the_variables_and_where_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACME_KEY", raising=False)
    monkeypatch.delenv("ACME_OTHER_KEY", raising=False)
    with pytest.raises(MissingAPIKey) as info:
        find_api_key(
            None,
            "ACME_KEY",
            "ACME_OTHER_KEY",
            part="acme.TTS",
            signup="https://acme.test/keys",
            hint="or pass base_url=... for a server that needs none",
        )
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        "acme.TTS needs an API key: set ACME_KEY (or ACME_OTHER_KEY) in the environment or pass "
        "api_key=...; or pass base_url=... for a server that needs none "
        "(get one at https://acme.test/keys)"
    )


def test_retry_after_seconds_or_date_wins_over_backoff() -> None:
    assert retry_delay(1, "3") == 3.0
    assert retry_delay(5, "0") == 0.0
    assert retry_delay(1, "120") == 20.0  # capped
    assert retry_delay(1, "-4") == 0.0
    date = email.utils.formatdate(time.time() + 8, usegmt=True)
    assert 5.0 < retry_delay(1, date) <= 8.0
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_delay(1, past) == 0.0


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    for attempt, middle in ((1, 0.25), (2, 0.5), (3, 1.0)):
        delays = [retry_delay(attempt) for _ in range(200)]
        assert all(0.75 * middle <= d <= 1.25 * middle for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert 0.375 <= retry_delay(1, "not a date", base=0.5) <= 0.625
    assert retry_delay(30, cap=4.0) <= 4.0 * 1.25


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_http_error_is_retryable_for_timeouts_limits_and_server_errors(
    status: int, retryable: bool
) -> None:
    error = http_error(AcmeError, "Acme", status, "nope", hint=" (check it)", retry_after="2")
    assert isinstance(error, AcmeError)
    assert str(error) == f"Acme answered HTTP {status}: nope (check it)"
    assert (error.provider, error.status, error.retryable, error.retry_after) == (
        "Acme",
        status,
        retryable,
        "2",
    )
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_http_error_without_detail_says_so() -> None:
    assert str(http_error(AcmeError, "Acme", 502, "")) == "Acme answered HTTP 502: no details"


def test_response_bodies_read_as_text_and_json_objects() -> None:
    assert response_text(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert response_text("as is") == "as is"
    assert json_body('{"error": {"message": "m"}}') == {"error": {"message": "m"}}
    assert json_body("[1, 2]") is None
    assert json_body("<html>") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.acme.test/", "wss://api.acme.test"),
        ("http://127.0.0.1:81", "ws://127.0.0.1:81"),
        ("wss://already.test/v1/", "wss://already.test/v1"),
        ("ws://plain.test", "ws://plain.test"),
        ("acme.test", "acme.test"),
    ],
)
def test_with_scheme_maps_secure_and_plain(url: str, expected: str) -> None:
    assert with_scheme(url, "wss://", "ws://") == expected
    back = with_scheme(expected, "https://", "http://")
    assert back == url.rstrip("/").replace("wss://", "https://").replace("ws://", "http://")


def test_the_kit_is_light_to_import() -> None:
    code = (
        "import sys, parley.providers, parley.plugins.lazy; "
        "print(sorted(m for m in ('numpy', 'httpx', 'email.utils', 'websockets') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- PCM16Stream ------------------------------------------------------------------------------


def test_pcm16_stream_carries_a_split_sample_to_the_next_chunk() -> None:
    samples = list(range(-5, 5))
    pcm = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)
    stream = PCM16Stream(16000)
    frames = [stream.push(pcm[i : i + 3]) for i in range(0, len(pcm), 3)]
    out = [f for f in frames if f is not None]
    assert frames[0] is not None and frames[0].samples == 1  # 3 bytes: one sample, one carried
    assert [int(v) for f in out for v in f.data[:, 0]] == samples
    assert [f.timestamp for f in out] == pytest.approx(
        [sum(g.duration for g in out[:i]) for i in range(len(out))]
    )
    assert stream.push(b"") is None
    assert stream.push(b"\x01") is None  # half a sample waits
    last = stream.push(b"\x00")
    assert last is not None and int(last.data[0, 0]) == 1


def test_pcm16_stream_keeps_whole_multichannel_frames() -> None:
    stream = PCM16Stream(48000, channels=2)
    assert stream.push(b"\x01\x00\x02") is None  # not yet one stereo sample (4 bytes)
    frame = stream.push(b"\x00\x03\x00\x04\x00\x05")
    assert frame is not None and frame.channels == 2
    assert frame.data.tolist() == [[1, 2], [3, 4]]
    tail = stream.push(b"\x00")
    assert tail is None
