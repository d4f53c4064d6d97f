"""Reproducible .tar.gz archives and safe extraction."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from edgezoo.errors import VerificationError


def write_tar_gz(src_dir: Path, dest: Path) -> None:
    """Same files in, same bytes out: sorted entries, zero mtimes, no owner names, gzip mtime 0."""
    buf = io.BytesIO()
    root = src_dir.name
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in src_dir.rglob("*")):
            rel = path.relative_to(src_dir).as_posix()
            info = tarfile.TarInfo(f"{root}/{rel}")
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size = len(data)
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(buf.getvalue())


def extract_tar_gz(archive: Path, dest: Path) -> Path:
    """Extract only regular files and folders inside ``dest``; returns the bundle folder."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                target = (dest / m.name).resolve()
                if not (m.isfile() or m.isdir()) or not str(target).startswith(str(dest.resolve()) + os.sep):
                    raise VerificationError(f"{archive}: member {m.name!r} is not a plain file inside the bundle", hint="do not trust this archive")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise VerificationError(f"{archive} is not a readable .tar.gz bundle: {exc}") from None
    tops = {Path(m.name).parts[0] for m in members if m.name}
    if len(tops) != 1:
        raise VerificationError(f"{archive} must hold exactly one bundle folder, found {len(tops)}")
    return dest / tops.pop()
