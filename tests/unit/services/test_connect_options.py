"""`TemporalEndpoint`: the options of the one `Client.connect` (TLS, API key) and their errors.

`Client.connect` is replaced by a recorder here: these tests are about what staging asks
for, not about gRPC (tests/integration/test_temporal_scope.py connects for real).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from staging.errors import ConfigError
from staging.redact import Redactor
from staging.services.base import TemporalEndpoint as ReExported
from staging.services.connect import ServiceLost, temporal_client
from staging.services.temporal_endpoint import (
    TemporalConnectionConfigError,
    TemporalEndpoint,
    TemporalTLS,
)

KEY = "tck-4f9a8e7d6c5b4a39281706f5e4d3c2b1"  # an API key as Temporal Cloud issues them
CERT = b"-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
PRIVATE = b"-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n"
CA = b"-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"


def endpoint(**kwargs: Any) -> TemporalEndpoint:
    return TemporalEndpoint("temporal.example", 7233, "team-staging", **kwargs)


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, Path]:
    files = {"client_cert": CERT, "client_key": PRIVATE, "server_ca": CA}
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(data)
    return paths


class Recorder:
    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.error = error

    async def __call__(self, target: str, **options: Any) -> Any:
        self.calls.append((target, options))
        if self.error is not None:
            raise self.error
        return "client"


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(Client, "connect", rec)
    return rec


def test_base_re_exports_the_one_endpoint_class() -> None:
    assert ReExported is TemporalEndpoint


def test_a_plain_endpoint_asks_for_the_namespace_only() -> None:
    assert endpoint().client_options() == {"namespace": "team-staging"}
    assert endpoint().is_plain and not endpoint().uses_tls


def test_an_api_key_implies_tls_unless_tls_is_false() -> None:
    options = endpoint(api_key=KEY).client_options()
    assert options == {"namespace": "team-staging", "tls": True, "api_key": KEY}
    off = endpoint(api_key=KEY, tls=False).client_options()
    assert off["tls"] is False and off["api_key"] == KEY
    assert not endpoint(api_key=KEY, tls=False).uses_tls
    assert not endpoint(api_key=KEY, tls=False).is_plain


def test_tls_files_are_read_when_connecting(pems: dict[str, Path]) -> None:
    tls = TemporalTLS(
        client_cert=pems["client_cert"],
        client_key=str(pems["client_key"]),  # a str is a path too
        server_ca=pems["server_ca"],
        server_name="frontend.internal",
    )
    ep = endpoint(tls=tls)
    rotated = CERT.replace(b"cert", b"rotated")
    pems["client_cert"].write_bytes(rotated)  # after the endpoint was made: read at connect
    config = ep.client_options()["tls"]
    assert isinstance(config, TLSConfig)
    assert config.client_cert == rotated
    assert config.client_private_key == PRIVATE
    assert config.server_root_ca_cert == CA
    assert config.domain == "frontend.internal"


def test_pem_bytes_are_used_as_they_are() -> None:
    config = TemporalTLS(client_cert=CERT, client_key=PRIVATE).config()
    assert (config.client_cert, config.client_private_key) == (CERT, PRIVATE)
    assert config.server_root_ca_cert is None and config.domain is None


def test_connect_hands_every_option_to_client_connect(
    recorder: Recorder, pems: dict[str, Path]
) -> None:
    ep = endpoint(
        tls=TemporalTLS(server_ca=pems["server_ca"]),
        api_key=KEY,
        rpc_metadata=(("x-tenant", "blue"),),
    )
    client: object = asyncio.run(ep.connect(connect_timeout=2.5))
    assert client == "client"  # what the recorder returned, handed back untouched
    [(target, options)] = recorder.calls
    assert target == "temporal.example:7233"
    assert options["namespace"] == "team-staging"
    assert options["api_key"] == KEY
    assert options["tls"].server_root_ca_cert == CA
    assert options["rpc_metadata"] == {"x-tenant": "blue"}
    assert options["connect_timeout"].total_seconds() == 2.5


@pytest.mark.parametrize(
    ("make", "observed"),
    [
        (lambda d: d / "missing.pem", "no such file"),
        (lambda d: d, "a directory, not a file"),
        (lambda d: d / "not-a-dir.pem" / "ca.pem", "unreadable"),
    ],
    ids=["missing", "directory", "unreadable"],
)
def test_an_unusable_tls_file_is_a_clear_config_error(
    tmp_path: Path, make: Any, observed: str, recorder: Recorder
) -> None:
    (tmp_path / "not-a-dir.pem").write_bytes(CA)
    path = make(tmp_path)
    ep = endpoint(tls=TemporalTLS(server_ca=path))
    with pytest.raises(TemporalConnectionConfigError) as info:
        asyncio.run(ep.connect())
    err = info.value
    assert isinstance(err, ConfigError)  # config.invalid: not a service that is down
    assert err.expected == f"server_ca: a readable PEM file at {path}"
    assert err.observed is not None and observed in err.observed and str(path) in err.observed
    assert err.hint is not None and "server_ca" in err.hint
    assert recorder.calls == []  # refused before any network traffic


def test_a_file_that_is_not_pem_is_refused_before_connecting(tmp_path: Path) -> None:
    der = tmp_path / "client.der"
    der.write_bytes(b"\x30\x82\x01\x0a binary DER")
    with pytest.raises(TemporalConnectionConfigError) as info:
        endpoint(tls=TemporalTLS(client_cert=der, client_key=PRIVATE)).client_options()
    assert info.value.observed == f"{der}: 15 bytes without a '-----BEGIN' line"


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(TemporalConnectionConfigError) as info:
        TemporalTLS(client_cert=CERT)
    assert info.value.observed == "client_cert is set, client_key is not"
    assert info.value.hint is not None and "set client_key" in info.value.hint


def test_the_api_key_and_headers_are_never_in_repr(pems: dict[str, Path]) -> None:
    ep = endpoint(
        tls=TemporalTLS(client_cert=CERT, client_key=PRIVATE),
        api_key=KEY,
        rpc_metadata=(("authorization", "Bearer hdr-secret-9f8e7d"),),
    )
    shown = repr(ep) + str(ep) + repr(ep.tls)
    for secret in (KEY, "hdr-secret", "MIIBkey"):
        assert secret not in shown
    assert "temporal.example" in shown  # repr still says where


def test_secrets_feed_the_redactor() -> None:
    ep = endpoint(
        api_key=KEY,
        rpc_metadata=(("x-token", "hdr-secret-9f8e7d"),),
        tls=TemporalTLS(client_cert=CERT, client_key=PRIVATE),
    )
    redactor = Redactor()
    for secret in ep.secrets():
        redactor.add(secret)
    line = f"auth {KEY} header hdr-secret-9f8e7d key {PRIVATE.decode()}"
    masked = redactor.text(line)
    assert KEY not in masked and "hdr-secret" not in masked and "MIIBkey" not in masked
    assert endpoint().secrets() == ()


def test_a_refused_connection_is_service_lost_without_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Client, "connect", Recorder(RuntimeError("Connection refused")))
    with pytest.raises(ServiceLost) as info:
        asyncio.run(temporal_client(endpoint(api_key=KEY)))
    assert "temporal.example:7233" in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value.__dict__)


def test_a_refused_credential_is_config_not_a_lost_service(monkeypatch: pytest.MonkeyPatch) -> None:
    denied = RPCError("Request unauthorized.", RPCStatusCode.UNAUTHENTICATED, b"")
    monkeypatch.setattr(Client, "connect", Recorder(denied))
    with pytest.raises(ConfigError) as info:
        asyncio.run(temporal_client(endpoint(api_key=KEY)))
    assert not isinstance(info.value, ServiceLost)
    assert info.value.observed == "gRPC UNAUTHENTICATED: Request unauthorized."
    assert info.value.hint is not None and "API key" in info.value.hint
    assert KEY not in str(info.value)


def test_unusable_tls_files_stay_config_errors_through_temporal_client(tmp_path: Path) -> None:
    ep = endpoint(tls=TemporalTLS(server_ca=tmp_path / "gone.pem"))
    with pytest.raises(TemporalConnectionConfigError):
        asyncio.run(temporal_client(ep))


def test_the_attach_document_round_trips_through_json(pems: dict[str, Path]) -> None:
    ep = endpoint(
        ui_url="http://ui",
        tls=TemporalTLS(
            client_cert=pems["client_cert"], client_key=PRIVATE, server_name="frontend.internal"
        ),
        api_key=KEY,
        rpc_metadata=(("x-tenant", "blue"),),
        namespace_shared=True,
    )
    again = TemporalEndpoint.from_dict(json.loads(json.dumps(ep.to_dict())))
    assert again == ep
    plain = endpoint(tls=True)
    assert TemporalEndpoint.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain


def test_of_takes_an_endpoint_or_an_address() -> None:
    ep = endpoint()
    assert TemporalEndpoint.of(ep) is ep
    assert TemporalEndpoint.of("127.0.0.1:7233", "ns") == TemporalEndpoint("127.0.0.1", 7233, "ns")
    with pytest.raises(ValueError, match="host:port"):
        TemporalEndpoint.of("localhost")


def test_the_up_file_never_holds_the_api_key() -> None:
    from types import SimpleNamespace

    from staging.services.base import PostgresEndpoint
    from staging.up_file import endpoints_document

    env = SimpleNamespace(
        postgres=PostgresEndpoint("127.0.0.1", 5432, "app", "pw", "app"),
        temporal=endpoint(api_key=KEY, rpc_metadata=(("x-token", "hdr-secret-9f8e7d"),)),
        spec=SimpleNamespace(run_id="r1"),
        backend_name="attach",
        backend_reason="configured",
        generic={},
    )
    text = json.dumps(endpoints_document(env))  # type: ignore[arg-type]
    assert KEY not in text and "hdr-secret" not in text


def test_readiness_stops_at_once_on_unusable_tls_files(tmp_path: Path) -> None:
    """Waiting cannot make a missing CA file appear: no polling until the timeout."""
    import socket

    from staging.services.readiness import wait_temporal

    with socket.socket() as listener:  # something answers: the check gets past the port
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        ep = TemporalEndpoint(
            "127.0.0.1", port, "default", tls=TemporalTLS(server_ca=tmp_path / "ca.pem")
        )
        with pytest.raises(TemporalConnectionConfigError) as info:
            wait_temporal(ep, 5, lambda: "")
    assert info.value.observed == f"{tmp_path / 'ca.pem'}: no such file"
