"""Run the sandbox app under uvicorn: in a background thread for tests, or in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.sandbox import create_app
from connectors.sandbox.faults import CUT_EXTENSION
from connectors.sandbox.state import SandboxState

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def with_cut(app: ASGIApp) -> ASGIApp:
    """`app`, able to close a request's connection without answering (`CutConnection`).

    uvicorn hands the app no socket; its `send` is a method of the request cycle, which
    holds the transport. Without one, the extension is left out and the cut raises instead.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and isinstance(transport, asyncio.Transport):

            async def cut() -> None:
                transport.abort()
                with contextlib.suppress(TimeoutError):  # wait for uvicorn to see it gone
                    async with asyncio.timeout(1.0):
                        while (await receive())["type"] != "http.disconnect":
                            pass

            extensions = {**scope.get("extensions", {}), CUT_EXTENSION: cut}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped


def _config(
    state: SandboxState, log_level: str, host: str = "127.0.0.1", port: int = 0
) -> uvicorn.Config:
    return uvicorn.Config(
        with_cut(create_app(state)),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,
    )


class SandboxServer:
    """The sandbox on a real port of 127.0.0.1, served from a daemon thread."""

    def __init__(
        self, state: SandboxState | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = state or SandboxState()
        self.host = host
        self.port = port
        self.url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind (port 0 picks a free one), serve, and return the base URL once serving."""
        if self._server is not None and self.url is not None:
            return self.url
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_config(self.state, "warning"))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sandbox-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    def stop(self) -> None:
        """Stop serving; requests hanging on a fault are answered at once."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.state.interrupt_sleeps()
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        self.state.interrupt_sleeps(False)
        self._server = self._thread = None
        self.url = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(host: str, port: int, state: SandboxState | None = None) -> None:
    """Serve the sandbox in the foreground until interrupted (Ctrl+C)."""
    uvicorn.Server(_config(state or SandboxState(), "info", host, port)).run()
