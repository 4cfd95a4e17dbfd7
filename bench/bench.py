"""Benchmark lode against DVC 3 on exactly the same generated data.

Run through `bench/run`, which builds lode in release mode and provides DVC 3 in `.venv`.
Each operation runs N times on both tools; the table gives the median wall time, the peak RSS
of the measured process and the lode/DVC ratio, next to physical references measured in the
same run (md5sum, cat, cp -r, curl).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name: (number of files, folders, min size, max size); sizes in bytes.
WORKLOADS = {
    "big": (1, 1, 1 << 30, 1 << 30),
    "many": (10_000, 100, 1 << 10, 64 << 10),
    "tiny": (100_000, 1_000, 100, 100),
    # The many workload's files, as the outputs of a DVC pipeline (see PIPELINE_STAGES).
    "pipeline": (10_000, 100, 1 << 10, 64 << 10),
}
SMALL_WORKLOADS = {
    "big": (1, 1, 64 << 20, 64 << 20),
    "many": (500, 10, 1 << 10, 64 << 10),
    "tiny": (2_000, 20, 100, 100),
    "pipeline": (500, 10, 1 << 10, 64 << 10),
}
# The pipeline workload: this many stages in one dvc.yaml, each copying its share of the files
# (a directory dependency under src/) to a directory output under data/.
PIPELINE_STAGES = 200
SMALL_PIPELINE_STAGES = 20
OPERATIONS = [
    "add",
    "status",
    "checkout",
    "push-local",
    "pull-local",
    "push-http",
    "status-cloud",
    "pull-http",
    # Reading the pushed data as another team does: the repository published as a bare Git
    # repository, its data on lode-server (after push-http).
    "get-http",
    "import-http",
    "list-http",
]
REGISTRY_OPS = {"get-http", "import-http", "list-http"}
TOOLS = ["lode", "dvc"]
# How long a freed inode stays unusable on ext4 without a journal while its inode-table block is
# cached: RECENTCY_MIN (60 s), or 360 s once new files make that block dirty again; plus margin.
SETTLE_SECONDS = 365
GNU_TIME = "/usr/bin/time"


@dataclass
class Measure:
    seconds: list[float] = field(default_factory=list)
    rss_kib: int = 0
    error: str | None = None

    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


class BenchError(Exception):
    pass


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Runs cmd and returns (wall seconds, peak RSS in KiB of that process).

    The RSS comes from GNU time: a child forked from this Python process would count the
    interpreter's own pages in its peak, since Linux keeps the high-water mark across exec.
    """
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss_file:
        start = time.perf_counter()
        proc = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", rss_file.name, *cmd],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise BenchError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
        rss_lines = rss_file.read().split()
    return elapsed, int(rss_lines[-1]) if rss_lines else 0


def sh(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-2000:]}")
    return res.stdout


def generate(workload: str, spec: tuple[int, int, int, int], seed: int, dest: Path) -> None:
    """Writes the workload's files under dest deterministically from the seed (once)."""
    marker = dest / ".complete"
    stamp = f"{workload} {spec} {seed}\n"
    if marker.exists() and marker.read_text() == stamp:
        return
    if dest.exists():
        shutil.rmtree(dest)
    files, folders, lo, hi = spec
    rng = random.Random(f"{seed}:{workload}")
    data = dest / "data"
    data.mkdir(parents=True)
    per_folder = max(1, files // folders)
    for i in range(files):
        folder = data if folders == 1 else data / f"d{i // per_folder:04d}"
        folder.mkdir(exist_ok=True)
        size = rng.randint(lo, hi)
        path = folder / (f"f{i:06d}.bin" if files > 1 else "big.bin")
        with open(path, "wb") as f:
            remaining = size
            while remaining:
                n = min(remaining, 8 << 20)
                f.write(rng.randbytes(n))
                remaining -= n
    marker.write_text(stamp)


def tree_size(path: Path) -> tuple[int, int]:
    count = total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            count += 1
            total += os.stat(os.path.join(dirpath, n)).st_size
    return count, total


def has_few_files(path: Path, limit: int = 100) -> bool:
    """Whether path is a file, or a folder holding at most limit entries in all."""
    if not path.is_dir():
        return True
    seen = 0
    for _, dirs, names in os.walk(path):
        seen += len(dirs) + len(names)
        if seen > limit:
            return False
    return True


def remove(path: Path) -> None:
    """Deletes a file or a whole folder, read-only cache objects and folders included."""
    if not path.is_dir():
        path.unlink()
        return
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
    shutil.rmtree(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real lode-server on a free loopback port, with one project per tool and workload."""

    def __init__(self, binary: Path, data_dir: Path, env: dict[str, str]):
        self.binary = binary
        self.data_dir = data_dir
        self.env = env
        data_dir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir.parent / "server.log", "wb")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"lode-server did not become healthy; see {data_dir.parent / 'server.log'}")
            time.sleep(0.05)

    def project(self, name: str) -> str:
        """Creates a project and returns a write token for it."""
        admin = [str(self.binary), "admin", "--data-dir", str(self.data_dir)]
        sh(admin + ["project", "create", name], self.data_dir, self.env)
        out = sh(admin + ["token", "create", "--project", name, "--role", "write"], self.data_dir, self.env)
        return out.strip().splitlines()[-1]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = Path(args.workdir).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.lode = str(Path(args.lode).resolve())
        self.lode_server = Path(args.lode_server).resolve()
        self.dvc = str(Path(args.dvc).resolve()) if os.sep in args.dvc else args.dvc
        self.env = dict(os.environ)
        self.env.update({"DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1", "GIT_TERMINAL_PROMPT": "0"})
        self.env.pop("LODE_TOKEN", None)
        self.results: dict[tuple[str, str, str], Measure] = {}
        self.failed_chains: dict[tuple[str, str], str] = {}
        self.references: list[tuple[str, str, float]] = []
        self.server: Server | None = None
        self.tokens: dict[str, str] = {}
        self.trash = self.work / "trash"
        self.trash_emptied = self.work / "trash-emptied-at"
        self.empty_trash()
        if not args.small:
            self.settle()

    def runs(self, workload: str) -> int:
        return self.args.runs_for.get(workload, self.args.runs)

    def runs_summary(self) -> str:
        text = f"{self.args.runs} run(s)"
        special = [f"{w}: {n}" for w, n in self.args.runs_for.items() if w in self.args.workloads]
        return text + (f" ({', '.join(special)})" if special else "")

    def tool_cmd(self, tool: str) -> str:
        return self.lode if tool == "lode" else self.dvc

    # -- repository set-up -------------------------------------------------

    def repo_dir(self, tool: str, workload: str) -> Path:
        return self.work / "repos" / f"{tool}-{workload}"

    def fresh_repo(self, tool: str, workload: str, source: Path) -> Path:
        repo = self.repo_dir(tool, workload)
        self.discard(repo)
        repo.mkdir(parents=True)
        sh(["git", "init", "-q"], repo, self.env)
        sh(["git", "config", "user.email", "bench@example.com"], repo, self.env)
        sh(["git", "config", "user.name", "bench"], repo, self.env)
        sh([self.tool_cmd(tool), "init", "-q"], repo, self.env)
        # DVC keeps its hash and link databases in a site cache; keep it inside the repo's
        # folder so that "cold" really starts cold and runs do not share state.
        sh([self.dvc, "config", "--local", "core.site_cache_dir", str(repo / ".site-cache")], repo, self.env)
        if workload == "pipeline":
            self.pipeline_repo(repo, source)
        else:
            sh(["cp", "-r", str(source / "data"), str(repo / "data")], repo, self.env)
        return repo

    def pipeline_repo(self, repo: Path, source: Path) -> None:
        """Lays the files out as PIPELINE_STAGES inputs under src/, writes a dvc.yaml whose
        stages copy each to a directory output under data/, and has DVC reproduce it (which
        fills data/, dvc.lock and the cache). The outputs are exactly the generated files."""
        stages = SMALL_PIPELINE_STAGES if self.args.small else PIPELINE_STAGES
        files = sorted(p for p in (source / "data").rglob("*") if p.is_file())
        src = repo / "src"
        for k in range(stages):
            part = src / f"s{k:03d}"
            part.mkdir(parents=True)
            for f in files[k * len(files) // stages : (k + 1) * len(files) // stages]:
                shutil.copyfile(f, part / f.name)
        lines = ["stages:"]
        for k in range(stages):
            name = f"s{k:03d}"
            lines += [
                f"  copy-{name}:",
                f"    cmd: mkdir -p data && cp -r src/{name} data/{name}",
                "    deps:",
                f"    - src/{name}",
                "    outs:",
                f"    - data/{name}",
            ]
        (repo / "dvc.yaml").write_text("\n".join(lines) + "\n")
        sh([self.dvc, "repro", "-q"], repo, self.env)

    def discard(self, path: Path) -> None:
        """Moves a folder the next measurement must not find into the trash, emptied at the end.

        Deleting 100,000 files right before a measured command that creates as many makes ext4
        slow to allocate the new inodes (it skips recently freed ones), a cost of the harness's
        set-up rather than of either tool, and one a user pulling into a fresh clone never pays.
        What holds only a few files (the big workload's gigabytes) is deleted at once instead:
        freeing a handful of inodes slows nothing, and kept until the end, the copies of a full
        run would fill the disk.
        """
        if not path.exists():
            return
        if has_few_files(path):
            remove(path)
            return
        self.trash.mkdir(parents=True, exist_ok=True)
        os.rename(path, self.trash / f"{len(os.listdir(self.trash)):06d}-{path.name}")

    def empty_trash(self) -> None:
        """Deletes what earlier steps and runs set aside, noting when (see settle)."""
        if not self.trash.exists():
            return
        remove(self.trash)
        os.sync()
        self.trash_emptied.write_text(f"{time.time()}\n")

    def settle(self) -> None:
        """Lets the inodes just freed become reusable before anything is measured.

        Without a journal, ext4 skips an inode freed in the last minutes while its inode-table
        block is cached, so creating files right after a mass delete crawls through the inode
        bitmaps. Dropping the kernel's caches would avoid that too, but it also changes how fast
        the next pages are allocated, so the freed inodes are left to age out instead.
        """
        try:
            since = time.time() - float(self.trash_emptied.read_text())
        except (OSError, ValueError):
            return
        wait = SETTLE_SECONDS - since
        if wait > 0:
            print(f"waiting {wait:.0f} s for the files deleted {since:.0f} s ago to settle", flush=True)
            time.sleep(wait)

    def reset_tracking(self, repo: Path) -> None:
        for p in [repo / ".dvc" / "cache", repo / ".dvc" / "tmp", repo / ".site-cache"]:
            self.discard(p)
        for p in [repo / "data.dvc", repo / ".gitignore"]:
            p.unlink(missing_ok=True)

    def remove_workspace_data(self, repo: Path) -> None:
        self.discard(repo / "data")

    def remove_cache(self, repo: Path) -> None:
        self.discard(repo / ".dvc" / "cache")

    def configure_local_remote(self, tool: str, repo: Path, workload: str, run: int) -> None:
        remote = self.work / "remotes" / f"{tool}-{workload}"
        if run == 0:
            self.discard(remote)
        remote.mkdir(parents=True, exist_ok=True)
        sh([self.dvc, "remote", "add", "-f", "-d", "local", str(remote)], repo, self.env)

    def configure_http_remote(self, tool: str, repo: Path, workload: str, run: int) -> None:
        assert self.server is not None
        project = f"{tool}-{workload}-{run}"
        token = self.server.project(project)
        self.tokens[f"{tool}-{workload}"] = token
        sh([self.dvc, "remote", "add", "-f", "-d", "http", f"{self.server.url}/{project}"], repo, self.env)
        sh([self.dvc, "remote", "modify", "http", "auth", "custom"], repo, self.env)
        sh([self.dvc, "remote", "modify", "http", "custom_auth_header", "Authorization"], repo, self.env)
        sh([self.dvc, "remote", "modify", "--local", "http", "password", f"Bearer {token}"], repo, self.env)

    # -- measurement -------------------------------------------------------

    def measure(
        self,
        key: tuple[str, str, str],
        cmd: list[str],
        cwd: Path,
        restores: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """Times cmd; with restores, the workspace data must then match that source tree.

        Commands run without -q, since DVC's -q also silences its error messages; their
        output is discarded. A failed step fails the rest of the tool's chain on that workload
        (a push that failed leaves nothing to pull), so no cell times a command with no work.
        """
        m = self.results.setdefault(key, Measure())
        if m.error:
            return
        chain = (key[0], key[2])
        if chain in self.failed_chains:
            m.error = f"skipped: {self.failed_chains[chain]} failed before it"
            return
        # Flush what the set-up wrote (copied workspaces, deleted caches) before the clock
        # starts: a tool that makes its cache durable (fsync/syncfs) would otherwise also pay
        # for writing back the harness's own copies, while one that never syncs would not.
        os.sync()
        try:
            secs, rss = run_timed(cmd, cwd, env or self.env)
        except BenchError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            said = next((ln for ln in lines[1:] if "ERROR" in ln or "error" in ln), "")
            m.error = f"{lines[0]} {said}".strip()[:300]
            self.failed_chains[chain] = key[1]
            print(f"  {key}: FAILED {e}", file=sys.stderr)
            return
        if restores is not None:
            got, want = tree_size(cwd / "data"), tree_size(restores / "data")
            if got != want:
                m.error = f"restored {got[0]} files, {got[1]} bytes; expected {want[0]}, {want[1]}"
                self.failed_chains[chain] = key[1]
                print(f"  {key}: FAILED {m.error}", file=sys.stderr)
                return
        m.seconds.append(secs)
        m.rss_kib = max(m.rss_kib, rss)
        print(f"  {key[2]:5} {key[1]:13} {secs:8.3f} s  {rss / 1024:7.1f} MiB", flush=True)

    def run_workload(self, workload: str, spec: tuple[int, int, int, int]) -> None:
        # The pipeline's outputs are the many workload's files.
        data_name = "many" if workload == "pipeline" else workload
        source = self.work / "data" / data_name
        print(f"== {workload}: generating {spec[0]} files (seed {self.args.seed})", flush=True)
        generate(data_name, spec, self.args.seed, source)
        ops = self.args.ops
        runs = self.runs(workload)
        tools = self.args.tools
        repos = {tool: self.fresh_repo(tool, workload, source) for tool in tools}
        # The local operations alternate between the tools run by run, so that both meet the
        # same machine load (other builds, writeback) instead of one tool's runs all coming first.
        md5_times: list[float] = []
        # A pipeline's data is tracked by `dvc repro` when the repository is made.
        if "add" in ops and workload != "pipeline":
            for _ in range(runs):
                for tool in tools:
                    self.reset_tracking(repos[tool])
                    self.measure((workload, "add", tool), [self.tool_cmd(tool), "add", "data"], repos[tool])
                if workload == "big":
                    # The target for adding a large file is relative to md5sum: time it between
                    # the adds, on the same (page-cached) file.
                    big = source / "data" / "big.bin"
                    os.sync()
                    md5_times.append(run_timed(["md5sum", str(big)], source, self.env)[0])
        if md5_times:
            med = statistics.median(md5_times)
            self.references.append((workload, "md5sum big.bin (page cache, between the adds)", med))
            print(f"  ref   {'md5sum big.bin between the adds':40} {med:8.3f} s", flush=True)
        for tool in tools:
            if workload != "pipeline" and not (repos[tool] / "data.dvc").exists():
                sh([self.tool_cmd(tool), "add", "-q", "data"], repos[tool], self.env)
        if "status" in ops:
            for tool in tools:
                sh([self.tool_cmd(tool), "status"], repos[tool], self.env)  # warm
            for _ in range(runs):
                for tool in tools:
                    self.measure((workload, "status", tool), [self.tool_cmd(tool), "status"], repos[tool])
        if "checkout" in ops:
            for _ in range(runs):
                for tool in tools:
                    self.remove_workspace_data(repos[tool])
                    self.measure(
                        (workload, "checkout", tool), [self.tool_cmd(tool), "checkout"], repos[tool], source
                    )
        for tool in tools:
            cmd = self.tool_cmd(tool)
            repo = repos[tool]
            if "push-local" in ops or "pull-local" in ops:
                for run in range(runs):
                    self.configure_local_remote(tool, repo, workload, 0)
                    remote = self.work / "remotes" / f"{tool}-{workload}"
                    self.discard(remote)
                    remote.mkdir(parents=True)
                    self.measure((workload, "push-local", tool), [cmd, "push"], repo)
                    if "pull-local" in ops:
                        self.remove_cache(repo)
                        self.remove_workspace_data(repo)
                        self.measure((workload, "pull-local", tool), [cmd, "pull"], repo, source)
            if self.server and ({"push-http", "pull-http", "status-cloud"} & set(ops)):
                for run in range(runs):
                    self.configure_http_remote(tool, repo, workload, run)
                    self.measure((workload, "push-http", tool), [cmd, "push"], repo)
                    if "status-cloud" in ops:
                        self.measure((workload, "status-cloud", tool), [cmd, "status", "-c"], repo)
                    if "pull-http" in ops:
                        self.remove_cache(repo)
                        self.remove_workspace_data(repo)
                        self.measure((workload, "pull-http", tool), [cmd, "pull"], repo, source)
                if REGISTRY_OPS & set(ops) and workload != "pipeline":
                    self.registry_ops(tool, repo, workload, source)
        self.physical_references(workload, source)

    def registry_ops(self, tool: str, repo: Path, workload: str, source: Path) -> None:
        """get, import and list -R of the pushed repository, published as a bare Git
        repository; the reader's token is in a global config both tools read, the clone
        cache and DVC's site cache are the bench's own."""
        assert self.server is not None
        ops = self.args.ops
        cmd = self.tool_cmd(tool)
        base = self.work / "registry" / f"{tool}-{workload}"
        self.discard(base)
        (base / "config").mkdir(parents=True)
        (base / "cache").mkdir()
        published = [".dvc/config", ".dvc/.gitignore", ".dvcignore", "data.dvc", ".gitignore"]
        sh(["git", "add", "-f", *[p for p in published if (repo / p).exists()]], repo, self.env)
        sh(["git", "commit", "-q", "--allow-empty", "-m", "data"], repo, self.env)
        url = str(base / "registry.git")
        sh(["git", "clone", "-q", "--bare", str(repo), url], base, self.env)
        remotes = sh([self.dvc, "remote", "list"], repo, self.env).splitlines()
        remote_url = next(ln.split()[1] for ln in remotes if ln.split()[:1] == ["http"])
        token = self.tokens[f"{tool}-{workload}"]
        (base / "config" / "config").write_text(
            f"['remote \"http\"']\n    url = {remote_url}\n    password = Bearer {token}\n"
        )
        env = dict(self.env)
        env.update(
            {
                "DVC_GLOBAL_CONFIG_DIR": str(base / "config"),
                "DVC_SITE_CACHE_DIR": str(base / "site"),
                "XDG_CACHE_HOME": str(base / "cache"),
            }
        )
        for run in range(self.runs(workload)):
            if "get-http" in ops:
                out = base / f"get-{run}"
                out.mkdir()
                self.measure((workload, "get-http", tool), [cmd, "get", url, "data"], out, source, env)
            if "import-http" in ops:
                consumer = base / f"import-{run}"
                consumer.mkdir()
                sh(["git", "init", "-q"], consumer, self.env)
                sh([cmd, "init", "-q"], consumer, self.env)
                self.measure(
                    (workload, "import-http", tool), [cmd, "import", url, "data"], consumer, source, env
                )
        if "list-http" in ops:
            # With a warm clone cache (and, for lode, its manifests cache), as a user who
            # browses a registry repeatedly.
            sh([cmd, "list", "-R", url], base, env)
            for _ in range(self.runs(workload)):
                self.measure((workload, "list-http", tool), [cmd, "list", "-R", url], base, None, env)

    def reference(
        self, workload: str, name: str, cmd: list[str], cwd: Path, clear: Path | None = None
    ) -> None:
        """Times cmd N times; clear, when given, is moved aside before each run."""
        times = []
        for _ in range(self.runs(workload)):
            if clear is not None:
                self.discard(clear)
            os.sync()
            secs, _ = run_timed(cmd, cwd, self.env)
            times.append(secs)
        med = statistics.median(times)
        self.references.append((workload, name, med))
        print(f"  ref   {name:40} {med:8.3f} s", flush=True)

    def physical_references(self, workload: str, source: Path) -> None:
        data = source / "data"
        if workload == "big":
            big = data / "big.bin"
            sh(["sh", "-c", f"cat '{big}' > /dev/null"], source, self.env)  # into page cache
            self.reference(workload, "md5sum big.bin (page cache)", ["md5sum", str(big)], source)
            self.reference(workload, "cat big.bin > /dev/null (page cache)", ["sh", "-c", f"cat '{big}' > /dev/null"], source)
            token = self.tokens.get("lode-big")
            if self.server and token:
                auth = ["-H", f"Authorization: Bearer {token}"]
                key = self.big_object_key(source)
                url = f"{self.server.url}/lode-big-{self.runs('big') - 1}/{key}"
                self.reference(
                    workload,
                    "curl GET big.bin from lode-server",
                    ["curl", "-sSf", "-o", "/dev/null", *auth, url],
                    source,
                )
                dest = self.work / "curl-big.bin"
                self.reference(
                    workload,
                    "curl GET big.bin from lode-server into a file",
                    ["curl", "-sSf", "-o", str(dest), *auth, url],
                    source,
                    clear=dest,
                )
                # The server checks every upload against its name, also of an object it holds.
                put_token = self.server.project("curl-big")
                self.reference(
                    workload,
                    "curl PUT big.bin to lode-server",
                    [
                        "curl", "-sSf", "-o", "/dev/null", "-T", str(big),
                        "-H", f"Authorization: Bearer {put_token}",
                        f"{self.server.url}/curl-big/{key}",
                    ],
                    source,
                )
        if workload == "many":
            dest = self.work / "cp-many"
            self.reference(workload, "cp -r many folder", ["cp", "-r", str(data), str(dest)], source, clear=dest)

    def big_object_key(self, source: Path) -> str:
        """The big file's object path within a project on the server."""
        out = sh(["md5sum", str(source / "data" / "big.bin")], source, self.env)
        md5 = out.split()[0]
        return f"files/md5/{md5[:2]}/{md5[2:]}"

    # -- report ------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        def first_line(cmd: list[str]) -> str:
            try:
                return sh(cmd, self.work, self.env).strip().splitlines()[0]
            except (BenchError, IndexError, OSError):
                return "unknown"

        return {
            "lode": first_line([self.lode, "--version"]),
            "lode-server": first_line([str(self.lode_server), "--version"]),
            "dvc": "dvc " + first_line([self.dvc, "--version"]),
            "git": first_line(["git", "--version"]),
        }

    def machine(self) -> str:
        cpu = "unknown CPU"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
        return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM"

    def report(self, command: str) -> str:
        v = self.versions()
        lines = [
            "# Benchmark results: lode vs DVC",
            "",
            f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Machine: {self.machine()}",
            f"- Versions: {v['lode']}; {v['lode-server']}; {v['dvc']}; {v['git']}",
            f"- Command: `{command}`",
            f"- Median of {self.runs_summary()} per cell; RSS is the peak resident set of the measured process.",
            "",
            "| workload | operation | lode (s) | lode RSS (MiB) | DVC (s) | DVC RSS (MiB) | lode/DVC time | DVC is slower by |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        workloads = [w for w in self.args.workloads]
        for w in workloads:
            for op in OPERATIONS:
                lm = self.results.get((w, op, "lode"))
                dm = self.results.get((w, op, "dvc"))
                if lm is None and dm is None:
                    continue
                lcell, lrss = cell(lm)
                dcell, drss = cell(dm)
                lmed = lm.median() if lm and not lm.error else None
                dmed = dm.median() if dm and not dm.error else None
                ratio = f"{lmed / dmed:.3f}" if lmed and dmed else "-"
                speedup = f"{dmed / lmed:.1f}x" if lmed and dmed else "-"
                lines.append(f"| {w} | {op} | {lcell} | {lrss} | {dcell} | {drss} | {ratio} | {speedup} |")
        if self.references:
            lines += ["", "Physical references (same run):", "", "| workload | reference | seconds |", "|---|---|---:|"]
            for w, name, secs in self.references:
                lines.append(f"| {w} | {name} | {secs:.3f} |")
        errors = [(k, m.error) for k, m in self.results.items() if m.error]
        if errors:
            lines += ["", "Failures:", ""]
            for (w, op, tool), err in errors:
                lines.append(f"- {tool} {op} on {w}: {err}")
        return "\n".join(lines) + "\n"


def cell(m: Measure | None) -> tuple[str, str]:
    if m is None:
        return "-", "-"
    if m.error:
        return "failed", "-"
    med = m.median()
    return (f"{med:.3f}" if med is not None else "-"), f"{m.rss_kib / 1024:.1f}"


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--small", action="store_true", help="small variants that finish in about a minute")
    p.add_argument(
        "--workloads", default="big,many,tiny", help="comma list of big, many, tiny, pipeline"
    )
    p.add_argument("--ops", default=",".join(OPERATIONS), help="comma list of " + ", ".join(OPERATIONS))
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (median is reported)")
    p.add_argument(
        "--runs-for",
        default="",
        help="per-workload runs overriding --runs, e.g. tiny=1 (DVC takes minutes per tiny step)",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", default=str(ROOT / "bench" / "work"))
    p.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    p.add_argument("--lode", default=str(ROOT / "target" / "release" / "lode"))
    p.add_argument("--lode-server", default=str(ROOT / "target" / "release" / "lode-server"))
    p.add_argument("--dvc", default=str(ROOT / ".venv" / "bin" / "dvc"))
    p.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma list of lode, dvc (default both)")
    p.add_argument("--strict", action="store_true", help="exit non-zero when any measurement failed")
    args = p.parse_args()
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.ops = [o for o in args.ops.split(",") if o]
    for w in args.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload '{w}'")
    for o in args.ops:
        if o not in OPERATIONS:
            p.error(f"unknown operation '{o}'")
    args.tools = [t for t in args.tools.split(",") if t]
    for t in args.tools:
        if t not in TOOLS:
            p.error(f"unknown tool '{t}'")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    runs_for: dict[str, int] = {}
    for item in filter(None, args.runs_for.split(",")):
        name, _, n = item.partition("=")
        if name not in WORKLOADS or not n.isdigit() or int(n) < 1:
            p.error(f"--runs-for takes WORKLOAD=N with N at least 1, not '{item}'")
        runs_for[name] = int(n)
    args.runs_for = runs_for
    sizes = SMALL_WORKLOADS if args.small else WORKLOADS
    if not os.access(GNU_TIME, os.X_OK):
        p.error(f"{GNU_TIME} (GNU time) is needed to measure peak memory: apt-get install time")

    bench = Bench(args)
    if {"push-http", "pull-http", "status-cloud"} & set(args.ops) or REGISTRY_OPS & set(args.ops):
        bench.discard(bench.work / "server-data")
        bench.server = Server(bench.lode_server, bench.work / "server-data", bench.env)
    try:
        for w in args.workloads:
            bench.run_workload(w, sizes[w])
    finally:
        if bench.server:
            bench.server.stop()
        bench.empty_trash()
    command = "bench/run " + " ".join(sys.argv[1:])
    text = bench.report(command.strip())
    Path(args.out).write_text(text)
    print()
    print(text)
    failed = any(m.error for m in bench.results.values())
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
