"""Fixtures for the sandbox's own tests: a fresh sandbox and a client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.sandbox import SandboxState, create_app


@pytest.fixture
def state() -> SandboxState:
    """A fresh sandbox state."""
    return SandboxState()


@pytest.fixture
async def client(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the sandbox app, in process."""
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http
