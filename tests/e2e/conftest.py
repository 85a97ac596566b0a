"""Run `cdbot` as a real subprocess, the way the media officer does.

Every run gets an environment copied from ours without any ``CDBOT_*`` variable (so no
``CDBOT_SANDBOX_URL``), plus ``CDBOT_DATABASE_URL`` pointing at ``db.sqlite3`` in the
working folder, and runs in that folder, so no ``.env`` is read.

Starting `cdbot` costs about a second of CPU, so the example directory is imported once
per session (with `cdbot cluster import`) and each test starts from a copy of that file.
Commands that must be refused are registered by their module and run in background
threads from the start of the session, while the other tests run; each test then checks
its own case.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "content" / "data" / "example"
EXAMPLE_DIRECTORY = tuple(EXAMPLE / name for name in ("clusters.csv", "unions.csv", "admins.csv"))
CDBOT = Path(sys.executable).with_name("cdbot")
DB_NAME = "db.sqlite3"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
TIMEOUT = 120.0

# The example directory: 5 clusters, each with a Zalo group, and 7 admins in all.
# A post to every channel and every cluster fans out to 1 + 1 + 5 + 7 deliveries.
CLUSTER_CODES = ("DNNGOAI", "DNNN", "GD", "HCSN", "XATT")
ALL_DELIVERIES = 14


def future(days: int, hour: int = 7, minute: int = 30) -> datetime:
    """A whole-minute time `days` from now, in Vietnam."""
    moment = datetime.now(VN) + timedelta(days=days)
    return moment.replace(hour=hour, minute=minute, second=0, microsecond=0)


def typed(moment: datetime) -> str:
    """A time as the officer types it: ``2027-01-28 07:30``."""
    return moment.strftime("%Y-%m-%d %H:%M")


# ---- running the command --------------------------------------------------------------------


def cdbot_env(folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without CDBOT_*, with the database in `folder`, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDBOT_")}
    env["CDBOT_DATABASE_URL"] = f"sqlite:///{folder / DB_NAME}"
    env["COLUMNS"] = "200"  # tables wide enough that a title is not wrapped
    env.update(extra or {})
    return env


def run_cdbot(
    folder: Path,
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """`cdbot ARGS…` in `folder`, output captured as UTF-8 text."""
    return subprocess.run(
        [str(CDBOT), *map(str, args)],
        cwd=folder,
        env=cdbot_env(folder, env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """The result, after checking it succeeded (with its output in the failure message)."""
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result


@dataclass(frozen=True)
class Cdbot:
    """`cdbot` bound to one working folder (and the database in it)."""

    folder: Path

    def __call__(
        self, *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return run_cdbot(self.folder, *args, env=env, timeout=timeout)

    def json(self, *args: str | Path) -> Any:
        """The parsed stdout of a command that must succeed."""
        return json.loads(ok(self(*args)).stdout)

    def posts_text(self) -> str:
        """`post list --json` exactly as printed."""
        return ok(self("post", "list", "--json")).stdout

    def clusters_text(self) -> str:
        """`cluster list --json` exactly as printed."""
        return ok(self("cluster", "list", "--json")).stdout


def copy_database(source: Path, target: Path) -> None:
    """Copy the SQLite file of folder `source` (and any WAL beside it) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob(DB_NAME + "*"):
        shutil.copy2(path, target / path.name)


def database_digest(folder: Path) -> str:
    """A hash of every byte of the database files, to prove nothing was written."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob(DB_NAME + "*")):
        if path.name.endswith("-shm"):
            continue  # shared-memory index, rebuilt by every reader
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Template:
    """A database prepared once per session, with what `cdbot` lists from it."""

    folder: Path
    posts: str
    clusters: str
    digest: str


@pytest.fixture(scope="session")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose database holds the example clusters, unions and admins."""
    folder = tmp_path_factory.mktemp("directory")
    ok(run_cdbot(folder, "cluster", "import", *EXAMPLE_DIRECTORY))
    return folder


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory, directory: Path) -> Template:
    """The example directory plus one approved post, so "unchanged" compares real data."""
    bot = Cdbot(tmp_path_factory.mktemp("seeded"))
    copy_database(directory, bot.folder)
    when = typed(future(days=90, hour=8, minute=0))
    post = ("post", "add", "--kind", "story", "--title", "Bài có sẵn", "--body", "Nội dung có sẵn.")
    ok(bot(*post, "--at", when, "--approve"))
    return Template(bot.folder, bot.posts_text(), bot.clusters_text(), database_digest(bot.folder))


@pytest.fixture
def cdbot(tmp_path: Path) -> Cdbot:
    """`cdbot(*args)` on an empty database in this test's tmp_path."""
    return Cdbot(tmp_path)


@pytest.fixture
def cdbot_clusters(tmp_path: Path, directory: Path) -> Cdbot:
    """`cdbot(*args)` on a database where the example clusters are already imported."""
    copy_database(directory, tmp_path)
    return Cdbot(tmp_path)


# ---- what an officer's mistake must look like -----------------------------------------------

VIETNAMESE = re.compile(
    "[àáảãạăắằẳẵặâấầẩẫậèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵđ]", re.IGNORECASE
)
ENGLISH = re.compile(
    r"\b(?:Error|Exception|Traceback|Usage|Invalid|Missing|No such|not found|Try|Aborted|should)\b"
)


def assert_officer_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit code 2, one Vietnamese sentence on stderr, nothing on stdout, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().split("\n")
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert VIETNAMESE.search(message), message
    assert not ENGLISH.search(message), message
    assert message.endswith("."), message
    return message


def defect(reason: str) -> pytest.MarkDecorator:
    """A known defect: the test must fail on an assertion (not on a crash) until it is fixed."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


# ---- a batch of commands that must be refused -------------------------------------------------

Args = Callable[[Path], Sequence[str | Path]]


@dataclass(frozen=True)
class Refusal:
    """A command that must be refused; `expect`/`forbid` are fragments of its message."""

    id: str
    args: Args
    expect: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    defect: str | None = None  # set while the command is not refused as it should be

    def param(self) -> Any:
        marks = [defect(self.defect)] if self.defect else []
        return pytest.param(self, id=self.id, marks=marks)


@dataclass
class Outcome:
    """What one refused command did: its result, whether it wrote, the lists afterwards."""

    result: subprocess.CompletedProcess[str]
    wrote: bool
    after: dict[str, str] = field(default_factory=dict)


def run_chain(
    cases: Sequence[Refusal], template: Template, folder: Path, inputs: Path
) -> dict[str, Outcome]:
    """Run `cases` one after the other on a copy of `template` in `folder`.

    After each case the database bytes must be untouched (a case that wrote is undone
    with a fresh copy); the chain ends with `post list --json` and `cluster list --json`,
    which each of its cases later compares with the template's.
    """
    copy_database(template.folder, folder)
    outcomes: dict[str, Outcome] = {}
    for case in cases:
        result = run_cdbot(folder, *case.args(inputs))
        wrote = database_digest(folder) != template.digest
        if wrote:
            shutil.rmtree(folder)
            copy_database(template.folder, folder)
        outcomes[case.id] = Outcome(result, wrote)
    bot = Cdbot(folder)
    after = {"posts": bot.posts_text(), "clusters": bot.clusters_text()}
    for outcome in outcomes.values():
        outcome.after = after
    return outcomes


@dataclass(frozen=True)
class Batch:
    """The refusal cases of one test module and the input files they point at."""

    module: str
    cases: Sequence[Refusal]
    make_inputs: Callable[[Path], object]


_BATCHES: dict[str, Batch] = {}
CHAINS_PER_BATCH = 2


class Runs:
    """Refusal batches running in the background while the other tests run."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=CHAINS_PER_BATCH)
        self._chains: dict[str, list[Future[dict[str, Outcome]]]] = {}

    def start(self, batch: Batch, template: Template, root: Path) -> None:
        inputs = root / "inputs"
        inputs.mkdir()
        batch.make_inputs(inputs)
        self._chains[batch.module] = [
            self._pool.submit(
                run_chain, batch.cases[i::CHAINS_PER_BATCH], template, root / f"chain{i}", inputs
            )
            for i in range(CHAINS_PER_BATCH)
        ]

    def result(self, module: str) -> dict[str, Outcome]:
        return {
            key: value for chain in self._chains[module] for key, value in chain.result().items()
        }

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def refusal_batch(
    module: str, cases: Sequence[Refusal], make_inputs: Callable[[Path], object]
) -> Any:
    """Register a module's refusals (started at session start); its `outcomes` fixture."""
    _BATCHES[module] = Batch(module, cases, make_inputs)

    @pytest.fixture(scope="module")
    def outcomes(refusal_runs: Runs) -> dict[str, Outcome]:
        return refusal_runs.result(module)

    return outcomes


@pytest.fixture(scope="session", autouse=True)
def refusal_runs(
    request: pytest.FixtureRequest, seeded: Template, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    """Start the refusal batches of the selected modules, in background threads."""
    modules = (getattr(item, "module", None) for item in request.session.items)
    selected = {module.__name__ for module in modules if module is not None}
    runs = Runs()
    try:
        for batch in _BATCHES.values():
            if batch.module in selected:
                runs.start(batch, seeded, tmp_path_factory.mktemp("refusals"))
        yield runs
    finally:
        runs.close()


def assert_refused(case: Refusal, outcome: Outcome, template: Template) -> None:
    """One Vietnamese sentence, exit 2, and nothing written or listed differently."""
    message = assert_officer_error(outcome.result)
    for fragment in case.expect:
        assert fragment in message, (fragment, message)
    for fragment in case.forbid:
        assert fragment not in message, (fragment, message)
    assert not outcome.wrote
    assert outcome.after == {"posts": template.posts, "clusters": template.clusters}
