"""Words the officer reads for the bot's own states, in one place."""

from __future__ import annotations

from content.kinds import CHANNELS

POST_STATUS = {
    "draft": "Nháp",
    "approved": "Đã duyệt",
    "done": "Đã đăng xong",
    "cancelled": "Đã huỷ",
}
DELIVERY_STATUS = {
    "pending": "Chờ đến giờ",
    "claimed": "Đang nhận",
    "sending": "Đang gửi",
    "sent": "Đã gửi",
    "retry_wait": "Chờ gửi lại",
    "failed": "Thất bại",
    "in_doubt": "Chờ đối soát",
    "needs_human": "Cần người kiểm tra",
    "cancelled": "Đã huỷ",
}
ACCOUNT = {"facebook": "Trang Facebook", "zalo": "Zalo OA"}
# The channels an officer picks, plus the mention the bot adds when Zalo's window is shut.
CHANNEL = {**CHANNELS, "zalo_mention": "Zalo: nhắc tên trong nhóm cụm"}
