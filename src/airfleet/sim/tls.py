"""TLS in front of the simulator, terminated the way real servers terminate it.

asyncio's own TLS server drops the alert a failed server-side handshake
produces (``sslproto`` closes the transport before it flushes the alert), so
a client whose certificate is missing or refused sees a bare reset, where
nginx, Envoy or any OpenSSL server sends "certificate required" or
"handshake failure". The client's messages depend on that alert, so the
simulator terminates TLS with blocking ``ssl`` sockets, one thread per
connection, which send every alert, and relays the plain bytes to its
aiohttp app on a loopback port of its own.

For tests and rehearsals: a thread per connection is plenty for the few
hundred connections a test opens, and the app behind it is the same.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading

__all__ = ["TlsFront"]

_CHUNK = 65_536
_HANDSHAKE_TIMEOUT_S = 10.0
_LINGER_S = 1.0


class TlsFront:
    """Accepts TLS on ``host:port`` (0: a free port) and relays to ``upstream_port``."""

    def __init__(
        self, context: ssl.SSLContext, *, host: str, port: int, upstream_port: int
    ) -> None:
        self._context = context
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server((host, port), backlog=1024, reuse_port=False)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="sim-tls-accept", daemon=True)

    def start(self) -> None:
        self._acceptor.start()

    def close(self) -> None:
        """Stop accepting and cut every open connection; wait for the threads."""
        with self._lock:
            self._closed = True
            sockets = list(self._open)
            threads = list(self._threads)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
        self._acceptor.join(5)
        for thread in threads:
            thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            thread = threading.Thread(
                target=self._serve, args=(client,), name="sim-tls-conn", daemon=True
            )
            with self._lock:
                if self._closed:
                    client.close()
                    return
                self._open.add(client)
                self._threads.add(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        tls: ssl.SSLSocket | None = None
        try:
            client.settimeout(_HANDSHAKE_TIMEOUT_S)
            tls = self._context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
            try:
                # Blocking: a failed handshake sends its alert before raising.
                tls.do_handshake()
            except (OSError, ValueError):
                _linger(tls)
                return
            tls.settimeout(None)
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                # wrap_socket took over the file descriptor from `client`.
                self._open.discard(client)
                self._open.update((tls, upstream))
                closed = self._closed
            if not closed:
                _relay(tls, upstream)
        except (OSError, ValueError):
            pass  # a refused handshake, a client gone: what a server shrugs off
        finally:
            for sock in (tls, upstream, client):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            with self._lock:
                self._open.difference_update(s for s in (tls, upstream, client) if s is not None)
                self._threads.discard(threading.current_thread())


def _linger(tls: ssl.SSLSocket) -> None:
    """Close after a refused handshake so that the client reads the alert.

    A TLS 1.3 client sends its request right after its side of the
    handshake; closing with those bytes unread makes the kernel send a
    reset, which can overtake the alert. So: stop writing, read what the
    client still sends until it closes (or a second passes), then close.
    """
    with contextlib.suppress(OSError):
        tls.shutdown(socket.SHUT_WR)  # drops the SSL layer: plain reads below
        tls.settimeout(_LINGER_S)
        while tls.recv(_CHUNK):
            pass


def _relay(tls: ssl.SSLSocket, plain: socket.socket) -> None:
    """Bytes both ways until either side closes. One thread: an SSL object must
    not be read and written from two threads at once."""
    while True:
        # Bytes OpenSSL already decrypted are not visible to select().
        ready = [tls] if tls.pending() else select.select([tls, plain], [], [])[0]
        for sock in ready:
            data = sock.recv(_CHUNK)
            if not data:
                return
            (plain if sock is tls else tls).sendall(data)
