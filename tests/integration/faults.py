"""Fault injection in front of a real server: a TCP proxy on loopback that forwards to it, resets every new
connection (storage down), accepts and never answers (storage stalled), or answers 503 to the HTTP requests
whose request line contains a given text (one kind of object failing). It counts connections, so a test can
tell whether a client asked at all."""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from typing import Literal

Mode = Literal["forward", "reset", "stall"]


class TcpProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.mode: Mode = "forward"
        self.connections = 0
        # In "forward" mode, requests whose request line contains one of these get a 503 instead.
        self.fail_requests: tuple[bytes, ...] = ()
        self.failed_requests = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: Mode) -> None:
        """Switch mode; connections already open are cut, so clients must connect again and meet the new mode."""
        with self._lock:
            self.mode = mode
            open_now, self._open = self._open, []
        for sock in open_now:
            _close(sock)

    def stop(self) -> None:
        self._stopped.set()
        _close(self._server)
        self.set("reset")

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                mode = self.mode
                if mode != "reset":
                    self._open.append(client)
            if mode == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                _close(client)
            elif mode == "forward":
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                with self._lock:
                    self._open.append(upstream)
                threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
                threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
            # "stall": the connection stays open and unanswered until the mode changes or the proxy stops.

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server, answering 503 itself to the requests it is told to fail (GETs: no body follows)."""
        try:
            while data := client.recv(65536):
                first_line = data.split(b"\r\n", 1)[0]
                if any(text in first_line for text in self.fail_requests):
                    self.failed_requests += 1
                    client.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\n\r\n{}"
                    )
                else:
                    upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


@contextmanager
def storage_through(proxy: TcpProxy, project: str):
    """A storage client that reaches fake-gcs-server only through `proxy`."""
    from google.cloud import storage

    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
    try:
        client = storage.Client(project=project)
    finally:
        if saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved
    yield client
