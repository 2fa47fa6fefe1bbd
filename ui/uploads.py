"""Uploaded files on the server: stored once by content, extracted safely, and never allowed to fill the disk.

Every upload is written to UPLOAD_DIR as `<sha256 prefix><suffix>` (a zip of a Hugging Face model as a folder
`<prefix>/`), shared by every session of the server. The folder is capped: before a new upload is stored, what
has not been used for MAX_AGE_S goes, then the least recently used until the new one fits in MAX_TOTAL_BYTES.
A session marks the upload it works with as used on every run (`touch`), and nothing used within IN_USE_S is
evicted, so a file is not taken from under a session that is using it.
No streamlit here: the sidebar calls these with the bytes of its uploaders.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

UPLOAD_DIR = Path(tempfile.gettempdir()) / "timesformer-explorer-uploads"
MAX_TOTAL_BYTES = 4 * 2**30
"""All uploads of the server together."""
MAX_AGE_S = 24 * 3600.0
"""An upload nobody has used for this long is deleted."""
IN_USE_S = 30 * 60.0
"""An upload used within this long is in use: it is never evicted."""
VIDEO_TYPES = ("mp4", "avi", "mov", "webm", "mkv")
VIDEO_MB = 200
CHECKPOINT_TYPES = ("safetensors", "pyth", "pth", "pt", "bin", "zip")
CHECKPOINT_MB = 1024
"""An official ViT-B `.pyth` with its optimiser state is about 1 GB."""
HF_FILES = ("config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin")
"""What is taken from a zipped Hugging Face model folder; nothing else in the archive is written."""


class UploadError(ValueError):
    """An upload that cannot be stored or unpacked, with the reason in words."""


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())
    return path.stat().st_size


def _last_used(path: Path) -> float:
    stat = path.stat()
    return max(stat.st_atime, stat.st_mtime)


def touch(path: str | Path) -> None:
    """Mark an upload as used now (its access time; the modification time that keys caches is kept)."""
    try:
        os.utime(path, (time.time(), Path(path).stat().st_mtime))
    except OSError:  # evicted meanwhile: the reader says so
        pass


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def make_room(incoming: int, folder: Path, now: float | None = None) -> None:
    """Delete uploads unused for MAX_AGE_S, then the least recently used until `incoming` more bytes fit in
    MAX_TOTAL_BYTES; raises UploadError when what is in use leaves no room."""
    if incoming > MAX_TOTAL_BYTES:
        raise UploadError(f"the upload is larger than this server's upload space ({MAX_TOTAL_BYTES / 2**30:g} GB)")
    now = time.time() if now is None else now
    entries = []
    for path in folder.glob("*") if folder.exists() else ():
        try:
            entries.append((_last_used(path), _size(path), path))
        except OSError:  # removed by another session meanwhile
            continue
    total = sum(size for _, size, _ in entries)
    for used, size, path in sorted(entries, key=lambda entry: entry[0]):
        if now - used < IN_USE_S:
            break
        if now - used > MAX_AGE_S or total + incoming > MAX_TOTAL_BYTES:
            _remove(path)
            total -= size
    if total + incoming > MAX_TOTAL_BYTES:
        raise UploadError("the server's upload space is full with files in use; try again later")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


def store(data: bytes, suffix: str, folder: Path | None = None) -> Path:
    """`folder/<digest><suffix>` (UPLOAD_DIR by default), written atomically once per content (room made first);
    marked as used."""
    folder = folder or UPLOAD_DIR
    path = folder / f"{digest(data)}{suffix}"
    if not path.exists():
        make_room(len(data), folder)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as handle:
            handle.write(data)
        os.replace(handle.name, path)
    touch(path)
    return path


def _hf_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The Hugging Face files of the shallowest folder in the archive that has a config.json, by file name."""
    configs = [info for info in archive.infolist() if PurePosixPath(info.filename).name == "config.json"]
    if not configs:
        raise UploadError("the zip holds no config.json: zip the Hugging Face model folder itself")
    folder = min((PurePosixPath(info.filename).parent for info in configs), key=lambda parent: len(parent.parts))
    members = {}
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if path.parent == folder and path.name in HF_FILES and not info.is_dir():
            members[path.name] = info
    return members


def unpack_model_zip(data: bytes, folder: Path | None = None, limit: int = CHECKPOINT_MB * 2**20) -> Path:
    """A zipped Hugging Face model folder unpacked to `folder/<digest>/` (UPLOAD_DIR by default): only the files
    of HF_FILES, written under their own names (no path from the archive is used, so nothing lands outside), at
    most `limit` bytes in all, counted while they are read (a size in the archive's header can lie)."""
    folder = folder or UPLOAD_DIR
    target = folder / digest(data)
    if target.exists():
        touch(target)
        return target
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise UploadError(f"not a readable zip archive ({error})") from None
    with archive:
        members = _hf_members(archive)
        declared = sum(info.file_size for info in members.values())
        if declared > limit:
            raise UploadError(
                f"the model in the zip is {declared / 2**20:.0f} MB unpacked, over the {limit / 2**20:.0f} MB allowed"
            )
        make_room(declared, folder)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, suffix=".part"))
        written = 0
        try:
            for name, info in members.items():
                with archive.open(info) as source, open(staging / name, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        written += len(chunk)
                        if written > limit:
                            raise UploadError(f"the model in the zip unpacks to over {limit / 2**20:.0f} MB")
                        sink.write(chunk)
            os.replace(staging, target)
        except (UploadError, zipfile.BadZipFile, OSError) as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, UploadError):
                raise
            if not target.exists():  # else another session unpacked the same zip first
                raise UploadError(f"the zip could not be unpacked ({error})") from None
    touch(target)
    return target
