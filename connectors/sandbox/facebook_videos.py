"""Page videos: the non-resumable `POST /{page}/videos` upload and the processing status.

A new video answers "processing" to the first `SandboxState.video_processing_polls` reads
of its status, then "ready" (or "error" when `video_fails` was on at upload). A published
video becomes a Page post at the moment it turns ready, and only then.

The refusal texts below are ours, modelled on Facebook's; the real wording may differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from starlette.responses import JSONResponse, Response

from connectors.sandbox.facebook_posts import (
    GraphError,
    PagePosts,
    Reply,
    fb_time,
    parse_fields,
    truthy,
)
from connectors.sandbox.records import FbVideo
from connectors.sandbox.state import SandboxState
from content.media import MOV_BRAND, VIDEO_BRANDS  # the same brands Facebook takes

VIDEO_FIELDS = frozenset(
    {
        "id",
        "status",
        "permalink_url",
        "description",
        "title",
        "created_time",
        "updated_time",
        "published",
        "post_id",
    }
)
# Enough of the file to find the `ftyp` box; the rest of an upload is never read.
VIDEO_HEAD_BYTES = 64
FORMAT_USER_MSG = "The video file you selected is in a format that we don't support."
TOO_LARGE_USER_MSG = (
    "The video file you tried to upload is too large. Please try again with a smaller file."
)
URL_USER_MSG = (
    "We couldn't download the video from the link you provided. Make sure the link is public"
    " and points to a video file, then try again."
)
STATUS_LABELS = {"processing": "đang xử lý", "ready": "sẵn sàng", "error": "xử lý lỗi"}


@dataclass(frozen=True)
class VideoSource:
    """The multipart `source` of an upload: its first bytes and its total size."""

    head: bytes
    size: int


def sniff_container(head: bytes) -> str | None:
    """ "mov" or "mp4" from the ISO-BMFF `ftyp` box at offset 4, or None for anything else."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[:4], "big")
    end = min(len(head), box_size) if box_size >= 16 else 16
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    if head[8:12] == MOV_BRAND:
        return "mov"
    return "mp4" if any(brand in VIDEO_BRANDS for brand in brands) else None


def status_label(status: str) -> str:
    """The Vietnamese word the viewer shows for a processing status."""
    return STATUS_LABELS.get(status, status)


class PageVideos:
    """Graph operations on the Page's videos, raising `GraphError` on bad input."""

    def __init__(self, state: SandboxState, posts: PagePosts) -> None:
        self.state = state
        self.posts = posts

    def find(self, video_id: str) -> FbVideo | None:
        """The video with this id, if the Page has it."""
        with self.state.lock:
            return self.state.fb_videos.get(video_id)

    def upload(self, params: dict[str, Any], source: VideoSource | None) -> Reply:
        """`POST /{page}/videos` with multipart `source` or `file_url`: `{"id": video_id}`."""
        file_url = str(params.get("file_url") or "") or None
        container: str | None = None
        if source is not None:
            container = self._check_source(source)
        elif file_url is None:
            raise GraphError(324, "(#324) Requires upload file")
        elif not self._downloadable(file_url):
            raise GraphError(
                100,
                "(#100) Unable to fetch video file from URL",
                user_title="Video Upload Failed",
                user_msg=URL_USER_MSG,
            )
        with self.state.lock:
            video = FbVideo(
                id=str(124000000000000000 + self.state.next_seq()),
                created_time=self.state.now(),
                description=str(params.get("description") or ""),
                title=str(params.get("title") or ""),
                published=truthy(params.get("published"), True),
                size=source.size if source is not None else 0,
                container=container,
                file_url=None if source is not None else file_url,
                polls_left=max(0, self.state.video_processing_polls),
                fails=self.state.video_fails,
            )
            self.state.fb_videos[video.id] = video
        return JSONResponse({"id": video.id}), True

    def _check_source(self, source: VideoSource) -> str:
        container = sniff_container(source.head)
        if container is None:
            raise GraphError(
                100,
                "(#100) The video file format is not supported",
                user_title="Unsupported Video Format",
                user_msg=FORMAT_USER_MSG,
            )
        if source.size > self.state.video_max_bytes:
            raise GraphError(
                100,
                "(#100) The video file is too large",
                user_title="Video Too Large",
                user_msg=TOO_LARGE_USER_MSG,
            )
        return container

    def _downloadable(self, url: str) -> bool:
        allowed = self.state.downloadable_urls
        if allowed:
            return url in allowed
        parsed = urlparse(url)
        return parsed.scheme == "https" and bool(parsed.netloc)

    def read(self, video: FbVideo, params: dict[str, Any]) -> Response:
        """`GET /{video}` (the id always comes back); reading `status` is one poll."""
        fields = parse_fields(params, VIDEO_FIELDS, ["updated_time"], "Video")
        fields += [] if "id" in fields else ["id"]
        if "status" in fields:
            self._poll(video)
        with self.state.lock:
            values: dict[str, Any] = {
                "id": video.id,
                "status": {
                    "video_status": video.status,
                    "processing_progress": self._progress(video),
                },
                "permalink_url": (
                    f"https://www.facebook.com/{self.state.fb_page_id}/videos/{video.id}/"
                ),
                "description": video.description or None,
                "title": video.title or None,
                "created_time": fb_time(video.created_time),
                "updated_time": fb_time(video.created_time),
                "published": video.published,
                "post_id": video.post_id,
            }
        return JSONResponse({f: values[f] for f in fields if values[f] is not None})

    def _poll(self, video: FbVideo) -> None:
        with self.state.lock:
            if video.status != "processing":
                return
            video.status_reads += 1
            if video.polls_left > 0:
                video.polls_left -= 1
                return
            self.settle(video)

    def settle(self, video: FbVideo) -> None:
        """End processing: "error" for a failing video, else "ready" and its post, once."""
        with self.state.lock:
            if video.status != "processing":
                return
            video.polls_left = 0
            if video.fails:
                video.status = "error"
                return
            video.status = "ready"
            if video.published and video.post_id is None:
                post = self.posts.new_post(
                    video.description, None, [], True, self.state.now(), video_id=video.id
                )
                video.post_id = post.id

    @staticmethod
    def _progress(video: FbVideo) -> int:
        if video.status == "ready":
            return 100
        if video.status == "error":
            return 0
        done = video.status_reads
        return min(99, done * 100 // (done + video.polls_left + 1))

    def delete(self, video: FbVideo) -> Reply:
        """`DELETE /{video}`: the video and the post that shows it."""
        with self.state.lock:
            self.state.fb_videos.pop(video.id, None)
            if video.post_id is not None:
                self.state.fb_posts[:] = [p for p in self.state.fb_posts if p.id != video.post_id]
                self.state.forget_message(video.post_id)
        return JSONResponse({"success": True}), True


def finish_processing(state: SandboxState) -> list[str]:
    """End the processing of every video still processing; return their ids.

    Facebook processes videos whether or not anyone polls. Tests of a lost upload answer
    (nobody knows the video id, so nobody polls) call this to let that happen.
    """
    videos = PageVideos(state, PagePosts(state))
    with state.lock:
        pending = [v for v in state.fb_videos.values() if v.status == "processing"]
        for video in pending:
            videos.settle(video)
    return [v.id for v in pending]
