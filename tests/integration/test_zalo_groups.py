"""The OA's GMF groups as the connector reads them: listing, status, asset expiry."""

from __future__ import annotations

from datetime import date

import httpx

from connectors.sandbox import SANDBOX_ZALO_ACCESS_TOKEN, SandboxState, create_app
from connectors.zalo import ZaloOAConnector


async def token() -> str:
    return SANDBOX_ZALO_ACCESS_TOKEN


def connector(state: SandboxState) -> ZaloOAConnector:
    return ZaloOAConnector(
        openapi_url="http://sandbox",
        access_token=token,
        article_cover_url="https://example.org/cover.jpg",
        sandbox=True,
        transport=httpx.ASGITransport(app=create_app(state)),
    )


async def test_groups_are_listed_across_pages_with_status_and_asset() -> None:
    state = SandboxState(auto_register=False)
    for n in range(57):  # more than one page of 50
        state.add_group(f"{n:020x}", f"Cụm {n}", enabled=n != 3)
    state.zalo_groups[f"{5:020x}"].asset_valid_through = "02/12/2026"
    zalo = connector(state)
    try:
        groups = await zalo.groups()
        assert len(groups) == 57
        assert {g.status for g in groups} == {"enabled", "disabled"}
        disabled = await zalo.group(f"{3:020x}")
        assert disabled.status == "disabled"
        expiring = await zalo.group(f"{5:020x}")
        assert expiring.asset_valid_through == date(2026, 12, 2)
        assert expiring.name == "Cụm 5"
    finally:
        await zalo.aclose()
