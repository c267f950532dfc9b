"""X-Twilio-Signature: Twilio's published vectors, the URL forms Twilio signs, proxies."""

from __future__ import annotations

from parley_twilio.signature import compute_signature, public_url, valid_signature

URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_twilios_documented_example() -> None:
    assert compute_signature("12345", URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert valid_signature("12345", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", URL, PARAMS)


def test_repeated_parameters_are_signed_sorted_and_distinct() -> None:
    params = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert compute_signature("12345", URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_anything_changed_fails() -> None:
    good = compute_signature("12345", URL, PARAMS)
    assert not valid_signature("54321", good, URL, PARAMS)
    assert not valid_signature("12345", good, URL + "&x=1", PARAMS)
    assert not valid_signature("12345", good, URL, {**PARAMS, "Digits": "9"})
    assert not valid_signature("12345", None, URL, PARAMS)
    assert not valid_signature("", good, URL, PARAMS)


def test_a_default_port_may_be_signed_or_not() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert valid_signature("12345", compute_signature("12345", with_port, PARAMS), URL, PARAMS)
    assert valid_signature("12345", compute_signature("12345", URL, PARAMS), with_port, PARAMS)


def test_the_url_twilio_requested_behind_a_proxy() -> None:
    seen = "http://127.0.0.1:8000/twilio/voice?call_id=x"
    assert public_url(seen) == seen
    assert public_url(seen, "https://agent.example.com") == (
        "https://agent.example.com/twilio/voice?call_id=x"
    )
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "abc.ngrok.app"}
    assert public_url(seen, None, forwarded) == "https://abc.ngrok.app/twilio/voice?call_id=x"
    socket = "ws://127.0.0.1:8000/twilio/media"
    assert public_url(socket, "https://agent.example.com") == "wss://agent.example.com/twilio/media"
