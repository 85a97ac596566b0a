"""The sandbox's network faults: connections cut with or without acting, short throttles."""

from __future__ import annotations

import json

import httpx
import pytest

from connectors.sandbox import (
    SANDBOX_PAGE_ID,
    SANDBOX_PAGE_TOKEN,
    SANDBOX_ZALO_ACCESS_TOKEN,
    Fault,
    SandboxState,
)
from connectors.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import fb_error

FEED = f"/v26.0/{SANDBOX_PAGE_ID}/feed"
AUTH = {"access_token": SANDBOX_PAGE_TOKEN}
GROUP = "/v3.0/oa/group/message"
ZALO = {"access_token": SANDBOX_ZALO_ACCESS_TOKEN}


def group_body(text: str) -> dict[str, object]:
    return {"recipient": {"group_id": "g1"}, "message": {"text": text}}


def test_cut_connections_answer_nothing_with_or_without_acting() -> None:
    state = SandboxState()
    state.push_fault("fb.feed", Fault("drop"))
    state.push_fault("fb.feed", Fault("commit_then_reset"))
    state.push_fault("zalo.group_message", Fault("drop"))
    state.push_fault("zalo.group_message", Fault("commit_then_reset"))
    # Closed, or reset when part of the request was still arriving as the socket closed:
    # either way no answer, and the connectors take both alike (`httpx.TransportError`).
    cut_short = (httpx.RemoteProtocolError, httpx.ReadError)
    with SandboxServer(state) as server, httpx.Client(base_url=str(server.url)) as http:
        for text in ("bỏ rơi", "đăng rồi cắt"):
            with pytest.raises(cut_short):
                http.post(FEED, data={"message": text, **AUTH})
            with pytest.raises(cut_short):
                http.post(GROUP, json=group_body(text), headers=ZALO)
        assert http.post(FEED, data={"message": "bình thường", **AUTH}).status_code == 200
    landed = [(m["channel"], m["text"]) for m in state.messages()]
    assert landed == [
        ("facebook_page", "đăng rồi cắt"),
        ("zalo_group", "đăng rồi cắt"),
        ("facebook_page", "bình thường"),
    ]
    cut = [r for r in state.requests if r["outcome"] in ("fault:drop", "fault:commit_then_reset")]
    assert len(cut) == 4 and {r["status"] for r in cut} == {None}


async def test_in_process_cut_raises_what_httpx_raises(
    state: SandboxState, client: httpx.AsyncClient
) -> None:
    state.push_fault("fb.feed", Fault("drop"))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(FEED, data={"message": "x", **AUTH})
    assert state.fb_posts == []


async def test_throttle_regain_can_be_seconds_and_is_logged(
    state: SandboxState, client: httpx.AsyncClient
) -> None:
    state.set_random_faults(
        "fb.feed", {"throttle": 1.0}, seed=1, fields={"throttle": {"minutes": 0.05}}
    )
    response = await client.post(FEED, data={"message": "chậm lại", **AUTH})
    assert fb_error(response)["code"] == 80001
    usage = json.loads(response.headers["x-business-use-case-usage"])[SANDBOX_PAGE_ID][0]
    assert usage["estimated_time_to_regain_access"] == 0.05
    [entry] = state.requests
    assert entry["outcome"] == "fault:throttle"
    assert entry["regain_seconds"] == pytest.approx(3.0)
    assert entry["answered"] >= entry["monotonic"]


def test_random_fault_fields_are_checked_up_front(state: SandboxState) -> None:
    with pytest.raises(ValueError, match="unknown fault fields"):
        state.set_random_faults("fb.feed", {"throttle": 0.1}, fields={"throttle": {"hours": 1}})
    with pytest.raises(ValueError, match="bad random fault rates"):
        state.set_random_faults("fb.feed", {"drop": 0.1}, fields={"throttle": {"minutes": 1}})
