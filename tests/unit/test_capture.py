"""The capture sinks over real loopback HTTP."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

import pytest

from staging.capture import UNKNOWN, CaptureServer
from staging.errors import ConfigError


@pytest.fixture
def sinks() -> Iterator[CaptureServer]:
    server = CaptureServer.start(["slack", "pagerduty"], max_body=1024, max_requests=50)
    try:
        yield server
    finally:
        server.stop()


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str, str]:
    request = Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urlopen(request, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def test_each_sink_has_its_own_loopback_url(sinks: CaptureServer) -> None:
    slack, pagerduty = sinks.url("slack"), sinks.url("pagerduty")

    assert slack != pagerduty
    assert urlsplit(slack).hostname == "127.0.0.1"
    assert urlsplit(slack).port == sinks.port
    assert sinks.hosts() == {"127.0.0.1", f"127.0.0.1:{sinks.port}"}
    with pytest.raises(KeyError, match="pagerduty, slack"):
        sinks.url("email")


def test_json_post_is_recorded_and_answered_like_slack(sinks: CaptureServer) -> None:
    message = {"text": "Pipeline failed: everflow - password authentication failed"}

    answer = post(sinks.url("slack"), json.dumps(message).encode())

    assert answer == (200, "text/plain", "ok")
    [captured] = sinks.requests("slack")
    assert captured.name == "slack"
    assert captured.method == "POST"
    assert captured.path == "/capture/slack"
    assert captured.body == message
    assert captured.headers["content-type"] == "application/json"
    assert sinks.count("slack") == 1
    assert sinks.count("pagerduty") == 0
    assert sinks.to_json()[0]["body"] == message


def test_slack_form_payload_and_plain_text_bodies(sinks: CaptureServer) -> None:
    form = urlencode({"payload": json.dumps({"text": "hi"})}).encode()
    post(sinks.url("slack"), form, "application/x-www-form-urlencoded")
    post(sinks.url("pagerduty"), b"not json", "text/plain")

    assert [r.body for r in sinks.requests()] == [{"text": "hi"}, "not json"]


def test_authorization_headers_are_not_recorded(sinks: CaptureServer) -> None:
    request = Request(
        sinks.url("slack"),
        data=b"{}",
        headers={"Authorization": "Bearer xoxb-secret", "Content-Type": "application/json"},
    )
    urlopen(request, timeout=10).close()

    [captured] = sinks.requests()
    assert "authorization" not in {k.lower() for k in captured.headers}
    assert "xoxb-secret" not in json.dumps(sinks.to_json())


def test_unknown_paths_count_but_answer_404(sinks: CaptureServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sinks.port, timeout=10)
    try:
        connection.request("POST", "/services/T000/B000", body=b"{}")
        status = connection.getresponse().status
    finally:
        connection.close()

    assert status == 404
    assert sinks.count() == 1
    assert sinks.requests()[0].name == UNKNOWN


def test_oversized_body_is_capped(sinks: CaptureServer) -> None:
    post(sinks.url("slack"), b"x" * 5000, "text/plain")
    post(sinks.url("slack"), b'{"after": true}')  # the connection state survived the flood

    big, after = sinks.requests("slack")
    assert big.truncated and big.body == "x" * 1024
    assert after.body == {"after": True} and not after.truncated


def test_chunked_body_is_decoded(sinks: CaptureServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sinks.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/capture/slack",
            body=iter([b'{"text":', b' "chunked"}']),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        assert connection.getresponse().read() == b"ok"
    finally:
        connection.close()

    assert sinks.requests("slack")[0].body == {"text": "chunked"}


def test_chunked_flood_is_capped(sinks: CaptureServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sinks.port, timeout=10)
    try:
        connection.request(
            "POST", "/capture/slack", body=iter([b"y" * 700] * 10), encode_chunked=True
        )
        assert connection.getresponse().read() == b"ok"
    finally:
        connection.close()

    [captured] = sinks.requests("slack")
    assert captured.truncated and captured.body == "y" * 1024


def test_concurrent_posts_are_all_counted(sinks: CaptureServer) -> None:
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            post(sinks.url("slack"), json.dumps({"n": i}).encode())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(80)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sinks.count("slack") == 80
    # Storage stops at max_requests; the count does not.
    assert len(sinks.requests()) == 50
    assert len({r.body["n"] for r in sinks.requests()}) == 50


def test_names_must_be_url_safe() -> None:
    with pytest.raises(ConfigError, match="cannot be part of a URL path"):
        CaptureServer.start(["slack/../x"])


def test_stop_is_idempotent_and_closes_the_port() -> None:
    server = CaptureServer.start(["slack"])
    url = server.url("slack")
    server.stop()
    server.stop()

    with pytest.raises(OSError):
        post(url, b"{}")
