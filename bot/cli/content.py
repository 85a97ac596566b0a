"""`cdbot feeds check` and `cdbot plan`: the automatic content jobs, run by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from bot.cli.common import opened_app, out, parse_day, plain, print_json, run
from bot.errors import InputError

feeds_app = typer.Typer(help="Nguồn tin văn bản mới cho bản tin pháp luật.", no_args_is_help=True)


@feeds_app.command("check")
def check_feeds(
    as_json: Annotated[bool, typer.Option("--json", help="In kết quả dạng JSON.")] = False,
) -> None:
    """Đọc thử mọi nguồn tin trong cấu hình: còn sống không, có bao nhiêu tin phù hợp.

    Không ghi gì vào cơ sở dữ liệu. Nguồn nào có tin mới nhất cũ hơn 4 ngày bị coi là
    không khoẻ. Thoát với mã 1 nếu có nguồn không khoẻ.
    """
    from content.feeds import Feed, fetch_all, new_feed_client

    with opened_app(migrate=False) as bot:
        feeds = [Feed(name=f.name, url=f.url, adapter=f.adapter) for f in bot.org.automation.feeds]

        async def work() -> Any:
            async with new_feed_client() as client:
                return await fetch_all(client, feeds, now=datetime.now(UTC))

        reports = run(bot, work)
        tz = bot.settings.tz
    rows = [
        {
            "name": r.feed.name,
            "url": r.feed.url,
            "healthy": r.healthy,
            "items": len(r.items),
            "matches": len(r.matches),
            "newest": r.newest.astimezone(tz).isoformat() if r.newest else None,
            "problem": r.problem,
            "best": [
                {"title": item.title, "score": score.value, "keywords": list(score.hits)}
                for item, score in r.matches[:5]
            ],
        }
        for r in reports
    ]
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            mark = "✓" if row["healthy"] else "✗"
            out.print(plain(f"{mark} {row['name']}: {row['items']} tin, {row['matches']} phù hợp"))
            if row["problem"]:
                out.print(plain(f"    {row['problem']}"), style="yellow")
            for best in row["best"]:
                out.print(plain(f"    [{best['score']}] {best['title'][:100]}"))
    if not all(row["healthy"] for row in rows):
        raise typer.Exit(1)


def plan(
    day: Annotated[
        str | None, typer.Option("--date", help="Ngày cần lập (dd/mm/yyyy); mặc định hôm nay.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="In kết quả dạng JSON.")] = False,
) -> None:
    """Lập bài tự động của một ngày: thông báo sự kiện và bản tin pháp luật.

    «cdbot run» tự làm việc này mỗi ngày sau nửa đêm; lệnh này để chạy bù hoặc xem trước.
    Mỗi ngày chỉ được lập một lần, dù chạy bao nhiêu lần, trên bao nhiêu máy.
    """
    from bot.dispatcher import worker_name
    from schedules.content import plan_day

    with opened_app() as bot:
        tz = bot.settings.tz
        today = datetime.now(tz).date()
        when = parse_day(day, "--date") if day else today
        if when < today:  # its posts would all go out at once, now
            raise InputError(f"Ngày {when:%d/%m/%Y} đã qua; chỉ lập được hôm nay hoặc ngày tới.")
        outcome = run(bot, lambda: plan_day(bot, when, worker_name()))
    if outcome is None:
        message = f"Ngày {when:%d/%m/%Y} đã được lập trước đó; không thêm gì."
        if as_json:
            print_json({"date": when.isoformat(), "planned_before": True})
        else:
            out.print(message)
        return
    if as_json:
        data = {"date": when.isoformat(), "queued": outcome.queued, "warnings": outcome.warnings}
        print_json(data)
        return
    out.print(f"Ngày {when:%d/%m/%Y}: {len(outcome.queued)} bài mới.")
    for line in outcome.queued:
        out.print(plain(f"  {line}"))
    for warning in outcome.warnings:
        out.print(plain(f"  ⚠ {warning}"), style="yellow")
