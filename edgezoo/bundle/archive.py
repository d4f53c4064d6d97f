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


MAX_EXPANSION = 100  # a bundle's archive expands this many times at most (models barely compress)
MIN_BUDGET = 64 << 20


def extract_tar_gz(archive: Path, dest: Path) -> Path:
    """Extract only regular files and folders inside ``dest``; returns the bundle folder.

    The archive is read as a stream, member by member, and the sizes its headers declare are
    counted before anything is written: an archive that would expand beyond
    ``MAX_EXPANSION`` times its own size (64 MB at least) is refused at the first header
    past the budget (a decompression bomb never reaches the disk). Links, devices and
    setuid/setgid or world-writable modes are refused."""
    budget = max(MIN_BUDGET, MAX_EXPANSION * archive.stat().st_size)
    total, tops = 0, set()
    root = dest.resolve()
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for m in tar:
                target = (dest / m.name).resolve()
                if not (m.isfile() or m.isdir()) or not str(target).startswith(str(root) + os.sep):
                    raise VerificationError(f"{archive}: member {m.name!r} is not a plain file inside the bundle", hint="do not trust this archive")
                if m.mode & 0o7002:
                    raise VerificationError(f"{archive}: member {m.name!r} has mode {m.mode:o} (setuid, setgid, sticky or world-writable)",
                                            hint="do not trust this archive")
                total += m.size
                if total > budget:
                    raise VerificationError(f"{archive} expands to more than {budget >> 20} MB ({MAX_EXPANSION}x its size): "
                                            "refused before extracting it", hint="do not trust this archive")
                tops.add(Path(m.name).parts[0])
                tar.extract(m, dest, filter="data")
    except VerificationError:
        raise
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise VerificationError(f"{archive} is not a readable .tar.gz bundle: {exc}") from None
    if len(tops) != 1:
        raise VerificationError(f"{archive} must hold exactly one bundle folder, found {len(tops)}")
    return dest / tops.pop()
