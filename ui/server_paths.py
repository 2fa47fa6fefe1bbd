"""Files opened by their path on the server: an opt-in of whoever starts it, limited to the folders they allow.

The app is served to a whole class, so any browser can type a path. Typed paths are off unless allowed:
`TIMESFORMER_ALLOWED_DIRS` (folders separated by os.pathsep; empty: off) names the folders, and without it a
server that listens on this machine only (`server.address` localhost) allows the home and working folders.
Inside those folders a path is resolved (symlinks, `..`) and opened only when it and everything in it is a
regular file or folder there (a FIFO would hang the session). Outside, every path gets the same message,
which says nothing about it: not whether it exists, nor what it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import streamlit as st

ALLOWED_DIRS_VARIABLE = "TIMESFORMER_ALLOWED_DIRS"
LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")
REFUSED = "Only files inside the folders this server was started to allow can be opened by path."


class PathRefused(ValueError):
    """A typed path that will not be opened, with the reason in words."""


def allowed_dirs() -> tuple[Path, ...]:
    """The folders whose files a browser may open by path (resolved); none means path inputs are off."""
    value = os.environ.get(ALLOWED_DIRS_VARIABLE)
    if value is not None:
        return tuple(Path(part).expanduser().resolve() for part in value.split(os.pathsep) if part.strip())
    if str(st.get_option("server.address") or "") in LOCAL_ADDRESSES:
        return Path.home().resolve(), Path.cwd().resolve()
    return ()


def paths_allowed() -> bool:
    return bool(allowed_dirs())


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    return any(path.is_relative_to(folder) for folder in folders)


def _usable(path: Path, folders: tuple[Path, ...]) -> bool:
    """A regular file or folder inside `folders`, after following its symlinks."""
    target = path.resolve()
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return _inside(target, folders) and (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def checked_path(text: str) -> Path:
    """The resolved path typed in `text`, if it may be opened; raises PathRefused otherwise.

    Outside the allowed folders the message is always REFUSED. Inside, it says what is wrong: nothing there,
    or something other than regular files and folders (in the folder itself or anywhere below it).
    """
    folders = allowed_dirs()
    path = Path(text.strip()).expanduser().resolve()
    if not folders or not _inside(path, folders):
        raise PathRefused(REFUSED)
    if not path.exists():
        raise PathRefused(f"There is no file or folder at {path}.")
    if not _usable(path, folders):
        raise PathRefused(f"{path} is not a regular file or folder.")
    if path.is_dir():
        for parent, folders_below, files in os.walk(path):  # symlinked folders are not walked: refused
            for name in (*folders_below, *files):
                entry = Path(parent) / name
                if not _usable(entry, folders) or (name in folders_below and entry.is_symlink()):
                    raise PathRefused(
                        f"{path} holds {name}, which is not a regular file or folder in an allowed "
                        "folder: it is not opened."
                    )
    return path
