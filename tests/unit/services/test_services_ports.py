"""Who listens on a port, from the kernel's tables: ours, foreign or nobody (no services)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from staging.services import ports
from staging.services.ports import Holder

TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1
   2: 0500000A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1
   3: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 444 1
   4: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1
"""


def test_parse_keeps_loopback_and_wildcard_listeners_of_that_port_only() -> None:
    # 10.0.0.5 does not take 127.0.0.1's connections; an established socket is no listener.
    assert ports.parse_listeners(TABLE, 8080, {"0100007F", "00000000"}) == {111, 222}
    assert ports.parse_listeners(TABLE, 8081, {"0100007F", "00000000"}) == {555}
    assert ports.parse_listeners(TABLE, 9, {"0100007F"}) == set()


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture
def stranger() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_listener_of_ours_is_ours_and_of_anyone_else_foreign(
    listener: int, stranger: int
) -> None:
    assert ports.holder(listener, [os.getpid()]) is Holder.OURS
    # The port is taken, but not by the process we started: a clash, never "ready".
    assert ports.holder(listener, [stranger]) is Holder.FOREIGN
    assert ports.holder(listener, []) is Holder.FOREIGN
    assert f"pid {os.getpid()}" in ports.describe_holder(listener)


def test_a_port_nobody_listens_on_is_free(stranger: int) -> None:
    port = ports.free_port()
    assert ports.holder(port, [stranger]) is Holder.NONE


def test_forced_port_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAGING_TEST_TEMPORAL_PORT", raising=False)
    assert ports.forced_port("temporal") is None
    monkeypatch.setenv("STAGING_TEST_TEMPORAL_PORT", "7233")
    assert ports.forced_port("temporal") == 7233
    assert ports.forced_port("postgres") is None
    monkeypatch.setenv("STAGING_TEST_POSTGRES_PORT", "70000")
    with pytest.raises(ValueError, match="STAGING_TEST_POSTGRES_PORT"):
        ports.forced_port("postgres")


def test_without_the_kernels_tables_the_holder_is_unknown(tmp_path: Path) -> None:
    # A sandbox without /proc/net/tcp: readiness then falls back to liveness alone.
    assert ports.listeners(7233, proc=tmp_path) is None
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TABLE)
    assert ports.listeners(8080, proc=tmp_path) == {111, 222}
