"""fila.local.plain_http: the emulator siblings' server speaks the HTTP/1.1 an SDK needs, refuses what it
does not handle with the right status, and survives a failing app."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from fila.local.emulator import free_port
from fila.local.plain_http import Server


def echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Answers with what it was asked; ``/boom`` raises."""
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    body = environ["wsgi.input"].read()
    seen = {key: environ[key] for key in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "REQUEST_URI")}
    seen.update({key: value for key, value in environ.items() if key.startswith("HTTP_")})
    seen["body"] = body.decode()
    start_response("201 Created", [("Content-Type", "application/json"), ("X-Thing", "a")])
    return [json.dumps(seen).encode()]


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    port = free_port()
    threading.Thread(target=Server(echo, "127.0.0.1", port, max_body=1000).run, daemon=True).start()
    yield "127.0.0.1", port


def raw(address: tuple[str, int], data: bytes) -> bytes:
    """Send ``data``, read until the server closes the connection."""
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_requests_on_one_kept_alive_connection(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=5)
    for n in range(3):
        conn.request("POST", f"/q/a%20b?x={n}", body=f"body {n}", headers={"X-Amz-Target": "S.Op", "X-Dup": "1"})
        response = conn.getresponse()
        seen = json.loads(response.read())
        assert response.status == 201 and response.getheader("X-Thing") == "a"
        assert response.getheader("Date") and response.getheader("Connection") is None
        assert seen == {"REQUEST_METHOD": "POST", "PATH_INFO": "/q/a b", "QUERY_STRING": f"x={n}",
                        "REQUEST_URI": f"/q/a%20b?x={n}", "HTTP_X_AMZ_TARGET": "S.Op", "HTTP_X_DUP": "1",
                        "HTTP_HOST": f"{server[0]}:{server[1]}", "HTTP_ACCEPT_ENCODING": "identity",
                        "body": f"body {n}"}
    conn.close()


def test_connection_close_and_http_1_0_end_the_connection(server: tuple[str, int]) -> None:
    for request in (b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"GET /a HTTP/1.0\r\n\r\n"):
        answer = raw(server, request)  # returns only because the server closed it
        assert answer.startswith(b"HTTP/1.1 201 Created\r\n") and b"Connection: close\r\n" in answer


def test_repeated_headers_are_joined_and_head_has_no_body(server: tuple[str, int]) -> None:
    answer = raw(server, b"GET /h HTTP/1.1\r\nX-A: 1\r\nX-A: 2\r\nConnection: close\r\n\r\n")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["HTTP_X_A"] == "1,2"
    head = raw(server, b"HEAD /h HTTP/1.1\r\nConnection: close\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert length > 0 and head.endswith(b"\r\n\r\n")


def test_expect_100_continue_is_answered_before_the_body(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=5) as conn:
        conn.sendall(b"PUT /e HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert conn.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(b"data")
        assert b'"body": "data"' in conn.recv(65536)


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n0\r\n\r\n", b"411 Length Required"),
    (b"POST /big HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", b"413 Content Too Large"),
    (b"POST /n HTTP/1.1\r\nContent-Length: ten\r\n\r\n", b"400 Bad Request"),
    (b"POST /n HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", b"400 Bad Request"),  # a digit int() refuses
    (b"NONSENSE\r\n\r\n", b"400 Bad Request"),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400 Bad Request"),
    (b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 201 + b"\r\n", b"431 Request Header Fields Too Large"),
])
def test_what_it_does_not_serve_is_refused_and_closed(server: tuple[str, int], request_bytes: bytes,
                                                      status: bytes) -> None:
    answer = raw(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status + b"\r\n") and b"Connection: close" in answer


def test_a_failing_app_answers_500_and_the_server_goes_on(server: tuple[str, int],
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    assert raw(server, b"GET /boom HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert "RuntimeError: boom" in capfd.readouterr().err
    assert raw(server, b"GET /fine HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 201 Created\r\n")


def test_connections_beyond_the_limit_wait_for_a_free_one() -> None:
    port = free_port()
    threading.Thread(target=Server(echo, "127.0.0.1", port, connection_limit=1).run, daemon=True).start()
    first = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    first.request("GET", "/1")
    assert first.getresponse().read()
    second = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    second.sendall(b"GET /2 HTTP/1.0\r\n\r\n")
    with pytest.raises(TimeoutError):
        second.recv(100)  # accepted by the kernel, not served while the first is open
    first.close()
    second.settimeout(5)
    assert second.recv(100).startswith(b"HTTP/1.1 201 Created")
    second.close()
