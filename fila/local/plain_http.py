"""A plain HTTP/1.1 WSGI server, one thread per connection: the emulator's SQS and DynamoDB processes.

Their clients are SDKs on loopback holding keep-alive connections, each sending one request at a time.
waitress (and cheroot) hand every request from a poller thread to a worker and the answer back, two
thread switches and a pipe per call; here the connection's own thread reads, calls the app and writes.
The emulator spent 1.5 to 1.9 ms of CPU per UpdateItem behind them, 1.0 to 1.3 behind this (werkzeug's
threaded server: 2.2 to 2.5). What it takes: requests with a Content-Length (an SDK's; chunked bodies get
411), ``Expect: 100-continue``, HEAD, keep-alive as HTTP/1.1 and 1.0 define it. The main emulator process
and the API, which any client may reach, stay on waitress.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LINE_LIMIT = 64 * 1024
HEADERS_LIMIT = 200
CLOSE = [("Content-Length", "0"), ("Connection", "close")]  # an answer with no body, then no more
IDLE_SECONDS = 120.0  # as waitress's channel_timeout: a silent keep-alive connection is closed


class BadRequest(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class Server:
    def __init__(self, app: App, host: str, port: int, connection_limit: int = 1000,
                 max_body: int = 64 * 1024 * 1024) -> None:
        self.app, self.host, self.port, self.max_body = app, host, port, max_body
        self.sock = socket.create_server((host, port), backlog=1024)
        self.slots = threading.BoundedSemaphore(connection_limit)

    def run(self) -> None:
        """Accept until the process exits (the connections' threads are daemons)."""
        while True:
            self.slots.acquire()
            try:
                conn, peer = self.sock.accept()
            except OSError:
                self.slots.release()
                return
            threading.Thread(target=self._connection, args=(conn, peer[0]), daemon=True).start()

    def _connection(self, conn: socket.socket, peer: str) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(IDLE_SECONDS)
        reader = io.BufferedReader(socket.SocketIO(conn, "rb"), 64 * 1024)
        try:
            while self._one_request(conn, reader, peer):
                pass
        except (OSError, ValueError):  # the client went away, or stayed silent too long
            pass
        finally:
            self.slots.release()
            reader.close()
            conn.close()

    def _one_request(self, conn: socket.socket, reader: io.BufferedReader[socket.SocketIO],
                     peer: str) -> bool:
        """Serve one request; whether the connection stays open for the next."""
        line = reader.readline(LINE_LIMIT + 1)
        if not line:
            return False
        try:
            environ, keep_alive = self._environ(line, reader, peer)
        except BadRequest as bad:
            conn.sendall(_head(bad.status, CLOSE))
            return False
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(_read_exactly(reader, length))
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = status, headers

        try:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:  # as waitress does: log it, answer 500, close the connection
            traceback.print_exc(file=sys.stderr)
            conn.sendall(_head("500 Internal Server Error", CLOSE))
            return False
        headers = list(answer["headers"])
        names = {name.lower() for name, _ in headers}
        if "content-length" not in names:
            headers.append(("Content-Length", str(len(body))))
        if "date" not in names:
            headers.append(("Date", _http_date()))
        if not keep_alive:
            headers.append(("Connection", "close"))
        if environ["REQUEST_METHOD"] == "HEAD":
            body = b""
        conn.sendall(_head(answer["status"], headers) + body)
        return keep_alive

    def _environ(self, line: bytes, reader: io.BufferedReader[socket.SocketIO],
                 peer: str) -> tuple[dict[str, Any], bool]:
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or len(line) > LINE_LIMIT:
            raise BadRequest("400 Bad Request")
        method, target, version = parts
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query, "REQUEST_URI": target, "SERVER_NAME": self.host,
            "SERVER_PORT": str(self.port), "SERVER_PROTOCOL": version, "REMOTE_ADDR": peer,
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
        for _ in range(HEADERS_LIMIT):
            header = reader.readline(LINE_LIMIT + 1)
            if header in (b"\r\n", b"\n"):
                break
            name, colon, value = header.decode("latin-1").partition(":")
            if not colon or len(header) > LINE_LIMIT:
                raise BadRequest("431 Request Header Fields Too Large" if colon else "400 Bad Request")
            key = name.strip().upper().replace("-", "_")
            key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
            value = value.strip()
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        else:
            raise BadRequest("431 Request Header Fields Too Large")
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise BadRequest("411 Length Required")
        length = environ.get("CONTENT_LENGTH", "0") or "0"
        if not length.isdecimal():
            raise BadRequest("400 Bad Request")
        if int(length) > self.max_body:
            raise BadRequest("413 Content Too Large")
        connection = environ.get("HTTP_CONNECTION", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        return environ, keep_alive


def _read_exactly(reader: io.BufferedReader[socket.SocketIO], length: int) -> bytes:
    data = reader.read(length) if length else b""
    if len(data) < length:
        raise ConnectionError("the client closed the connection mid-body")
    return data


def _head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True))
    return _date[1]
