"""Checks shared by the sandbox's own tests."""

from __future__ import annotations

from typing import Any

import httpx


def fb_error(response: httpx.Response) -> dict[str, Any]:
    """The Graph API error object of a response, checked for its required keys."""
    error: dict[str, Any] = response.json()["error"]
    assert {"message", "type", "code", "is_transient", "fbtrace_id"} <= error.keys()
    return error
