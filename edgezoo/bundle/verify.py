"""Verify a bundle folder or .tar.gz: every file's sha256, no missing or extra files, and the
manifest's schema. Any changed byte in any file fails."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgezoo.hashing import sha256_file
from edgezoo.errors import SchemaError, UsageError, VerificationError
from edgezoo.schemas import _strict
from edgezoo.schemas.manifest import Manifest

SUMS = "SHA256SUMS"


@dataclass
class VerifyResult:
    bundle: str
    files: int
    manifest: Manifest | None = None
    problems: list[str] = field(default_factory=list)
    signed: bool = False
    keyid: str = ""
    signature_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dir(folder: Path, pubkey: Path | None = None) -> VerifyResult:
    from edgezoo.signing import ENVELOPE

    result = VerifyResult(bundle=folder.name, files=0)
    sums_path = folder / SUMS
    if not sums_path.is_file():
        result.problems.append(f"{SUMS} is missing")
        return result
    listed: dict[str, str] = {}
    for n, line in enumerate(sums_path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split("  ", 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            result.problems.append(f"{SUMS} line {n} is malformed")
            continue
        listed[parts[1]] = parts[0]
    import stat

    for p in sorted(folder.rglob("*")):  # what checksums cannot see: links out of the bundle, unsafe modes
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            result.problems.append(f"{rel}: is a symbolic link (to {os.readlink(p)}); a bundle holds plain files only")
        elif p.is_file() and p.stat().st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH):
            result.problems.append(f"{rel}: mode {stat.S_IMODE(p.stat().st_mode):o} (setuid, setgid or world-writable)")
    # the signature envelope is written after SHA256SUMS: its own signature protects it
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()} - {SUMS, ENVELOPE}
    for name in sorted(set(listed) - present):
        result.problems.append(f"{name}: listed in {SUMS} but missing")
    for name in sorted(present - set(listed)):
        result.problems.append(f"{name}: present but not listed in {SUMS}")
    for name in sorted(present & set(listed)):
        if sha256_file(folder / name) != listed[name]:
            result.problems.append(f"{name}: sha256 mismatch")
    result.files = len(present)
    mpath = folder / "manifest.json"
    if mpath.is_file():
        try:
            data = json.loads(mpath.read_text(encoding="utf-8"))
            result.manifest = _strict.load(Manifest, data, source="manifest.json")
        except (ValueError, SchemaError) as exc:  # JSONDecodeError is a ValueError
            result.problems.append(f"manifest.json does not validate: {exc}")
        else:
            for name, digest in result.manifest.files.items():
                if not (folder / name).is_file():
                    result.problems.append(f"{name}: named in manifest.json but missing")
                elif sha256_file(folder / name) != digest:
                    result.problems.append(f"{name}: sha256 differs from manifest.json")
    else:
        result.problems.append("manifest.json is missing")
    if (folder / ENVELOPE).is_file() or pubkey is not None:
        from edgezoo.signing import check_signature

        sig = check_signature(folder, pubkey)
        result.signed, result.keyid, result.signature_checked = sig.signed, sig.keyid, pubkey is not None and not sig.problems
        result.problems.extend(sig.problems)
    return result


def verify(path: Path, pubkey: Path | None = None) -> VerifyResult:
    if not path.exists():
        raise UsageError(f"no bundle at {path}", hint="pass a bundle folder or its .tar.gz")
    if path.is_dir():
        return verify_dir(path, pubkey)
    if not path.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"{path} is neither a bundle folder nor a .tar.gz", hint="pass a bundle folder or its .tar.gz")
    from edgezoo.bundle.archive import extract_tar_gz

    with tempfile.TemporaryDirectory(prefix="edgezoo-verify-") as tmp:
        try:
            folder = extract_tar_gz(path, Path(tmp))
        except VerificationError as exc:
            return VerifyResult(bundle=path.name, files=0, problems=[str(exc)])
        result = verify_dir(folder, pubkey)
        result.bundle = path.name
        return result
