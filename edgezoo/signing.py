"""Signed bundles: Ed25519 keys, an in-toto Statement with a SLSA provenance predicate whose
subjects are the bundle's files, signed as a DSSE envelope (``provenance.intoto.json``).

These are the supply-chain conventions, not an ad-hoc format, so standard verifiers read the
envelope: the DSSE envelope and the key ids are securesystemslib's (the in-toto/TUF library),
the keys are PEM files that OpenSSL reads. Signing works offline (no transparency log).

What the signature covers: every file of the bundle by sha256, manifest.json (which records
the key id) and SHA256SUMS included. ``verify --pubkey`` fails on a changed byte, a missing
file, an added file, or a key other than the signer's.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgezoo.errors import MissingDependencyError, OutputExistsError, UsageError, VerificationError
from edgezoo.hashing import sha256_file

ENVELOPE = "provenance.intoto.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/edgezoo/edgezoo/blob/main/docs/buildtypes/export/v1"
BUILDER_ID = "https://github.com/edgezoo/edgezoo/cli"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        from securesystemslib import dsse
        from securesystemslib.signer import CryptoSigner, SSlibKey
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "securesystemslib", "sign", "signing and verifying bundles") from None
    return serialization, ed25519, dsse, CryptoSigner, SSlibKey


# -- keys ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    keyid: str


def keygen(out_dir: Path, name: str = "edgezoo", *, force: bool = False) -> KeyPair:
    """A new Ed25519 key pair: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (PEM)."""
    serialization, ed25519, _, _, SSlibKey = _crypto()
    priv_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for p in (priv_path, pub_path):
        if p.exists() and not force:
            raise OutputExistsError(f"{p} exists; a key is not overwritten", hint="choose another --out or --name, or pass --force")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    key = ed25519.Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(priv)
    os.chmod(priv_path, 0o600)
    pub_path.write_bytes(pub)
    return KeyPair(priv_path, pub_path, SSlibKey.from_crypto(key.public_key()).keyid)


def _load_private(path: Path):
    serialization, ed25519, _, CryptoSigner, _ = _crypto()
    data = _read_key_file(path, "private")
    password = os.environ.get("EDGEZOO_KEY_PASSWORD")
    try:
        key = serialization.load_pem_private_key(data, password=password.encode() if password else None)
    except TypeError:
        raise UsageError(f"{path} is encrypted", hint="set EDGEZOO_KEY_PASSWORD to its passphrase") from None
    except ValueError:
        raise UsageError(f"{path} is not a readable PEM private key (or the passphrase is wrong)",
                         hint="make one with `edgezoo keygen --out keys/`") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise UsageError(f"{path} is a {type(key).__name__.lstrip('_')}, not an Ed25519 key", hint="make one with `edgezoo keygen`")
    return CryptoSigner(key)


def load_public(path: Path):
    serialization, ed25519, _, _, SSlibKey = _crypto()
    data = _read_key_file(path, "public")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        hint = "pass the .pub file, not the private key" if b"PRIVATE KEY" in data else "pass the .pub file `edgezoo keygen` wrote"
        raise UsageError(f"{path} is not a readable PEM public key", hint=hint) from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key", hint="pass the .pub file `edgezoo keygen` wrote")
    return SSlibKey.from_crypto(key)


def _read_key_file(path: Path, kind: str) -> bytes:
    if not path.is_file():
        raise UsageError(f"no {kind} key file at {path}", hint="make a key pair with `edgezoo keygen --out keys/`")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


# -- statement -----------------------------------------------------------------------------

def _bundle_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() != ENVELOPE}


def statement(folder: Path, manifest: dict) -> dict:
    """The in-toto Statement v1 for a bundle folder: every file a subject, SLSA provenance v1."""
    m = manifest
    deps = []
    if m["model"].get("weights_sha256"):
        deps.append({"name": "weights", "uri": m["model"].get("weights_source", ""), "digest": {"sha256": m["model"]["weights_sha256"]}})
    if (m.get("calibration") or {}).get("sha256"):
        deps.append({"name": "calibration-data", "uri": f"edgezoo:data/{m['calibration'].get('dataset', '')}",
                     "digest": {"sha256": m["calibration"]["sha256"]}})
    deps.append({"name": "target-profile", "uri": f"edgezoo:targets/{m['target']['id']}", "digest": {"sha256": m["target"]["profile_sha256"]}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in _bundle_files(folder).items()],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"model": f"{m['model']['id']}@{m['model']['version']}", "target": m["target"]["id"],
                                       "format": m["runtime"]["format"], "precision": m["precision"], "weights": m["model"]["weights"]},
                "internalParameters": {"runtime": f"{m['runtime']['name']} {m['runtime']['version']}", "bundle": m["bundle"]},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"edgezoo": m["edgezoo_version"]}},
                "metadata": {"invocationId": m["bundle"]},
                "byproducts": [{"name": "lineage", "mediaType": "application/json",
                                "content": base64.b64encode(json.dumps(m.get("lineage", []), sort_keys=True).encode()).decode()}],
            },
        },
    }


# -- sign ----------------------------------------------------------------------------------

def sign(bundle: Path, key_path: Path) -> str:
    """Sign a bundle folder (or .tar.gz) in place; returns the key id. The bundle must verify
    first; the manifest records the key id; a sibling .tar.gz is rebuilt to match."""
    from edgezoo.bundle.archive import extract_tar_gz, write_tar_gz
    from edgezoo.bundle.verify import verify

    signer = _load_private(key_path)
    checked = verify(bundle)
    if not checked.ok:
        raise VerificationError(f"{bundle} does not verify ({checked.problems[0]}); a broken bundle is not signed",
                                hint="rebuild it with `edgezoo export`")
    if bundle.is_dir():
        folder, archive = bundle, bundle.parent / f"{bundle.name}.tar.gz"
        with tempfile.TemporaryDirectory(prefix=".edgezoo-sign-", dir=bundle.parent) as tmp:
            staged = Path(tmp) / bundle.name
            shutil.copytree(bundle, staged)
            keyid = _sign_folder(staged, signer)
            new_archive = Path(tmp) / archive.name
            if archive.exists():
                write_tar_gz(staged, new_archive)
            old = Path(tmp) / "old"
            os.replace(folder, old)  # swap: the signed copy takes the folder's place whole
            os.replace(staged, folder)
            if archive.exists():
                os.replace(new_archive, archive)
        return keyid
    with tempfile.TemporaryDirectory(prefix=".edgezoo-sign-", dir=bundle.parent) as tmp:
        staged = extract_tar_gz(bundle, Path(tmp) / "x")
        keyid = _sign_folder(staged, signer)
        new_archive = Path(tmp) / bundle.name
        write_tar_gz(staged, new_archive)
        os.replace(new_archive, bundle)
    return keyid


def _sign_folder(folder: Path, signer) -> str:
    from edgezoo.bundle.verify import SUMS

    _, _, dsse, _, _ = _crypto()
    mpath = folder / "manifest.json"
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    keyid = signer.public_key.keyid
    manifest["signature"] = {"keyid": keyid, "scheme": "ed25519", "envelope": ENVELOPE, "payload_type": PAYLOAD_TYPE,
                             "predicate_type": PREDICATE_TYPE}
    mpath.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / ENVELOPE).unlink(missing_ok=True)
    sums = "".join(f"{d}  {n}\n" for n, d in _bundle_files(folder).items() if n != SUMS)
    (folder / SUMS).write_text(sums, encoding="utf-8")
    payload = json.dumps(statement(folder, manifest), sort_keys=True, separators=(",", ":")).encode()
    envelope = dsse.Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(signer)
    (folder / ENVELOPE).write_text(json.dumps(envelope.to_dict(), indent=2) + "\n", encoding="utf-8")
    return keyid


# -- verify --------------------------------------------------------------------------------

@dataclass
class SignatureCheck:
    signed: bool
    keyid: str = ""
    problems: list[str] = field(default_factory=list)


def check_signature(folder: Path, pubkey_path: Path | None) -> SignatureCheck:
    """The envelope's signature by the given public key, and its subjects against the files
    actually in the folder. Without a key, only says whether and by whom the bundle is signed."""
    env_path = folder / ENVELOPE
    mpath = folder / "manifest.json"
    try:
        recorded = json.loads(mpath.read_text(encoding="utf-8")).get("signature", {}) if mpath.is_file() else {}
    except ValueError:
        recorded = {}
    if not env_path.is_file():
        res = SignatureCheck(signed=False)
        if pubkey_path is not None:
            res.problems.append(f"the bundle is not signed (no {ENVELOPE})" + (" although manifest.json says it is" if recorded else ""))
        return res
    res = SignatureCheck(signed=True, keyid=str(recorded.get("keyid", "")))
    if pubkey_path is None:
        return res
    _, _, dsse, _, _ = _crypto()
    key = load_public(pubkey_path)
    try:
        envelope = dsse.Envelope.from_dict(json.loads(env_path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        res.problems.append(f"{ENVELOPE} is not a DSSE envelope: {exc}")
        return res
    if envelope.payload_type != PAYLOAD_TYPE:
        res.problems.append(f"{ENVELOPE} carries {envelope.payload_type!r}, not an in-toto statement")
        return res
    if res.keyid and res.keyid != key.keyid:
        res.problems.append(f"signed by key {res.keyid[:16]}..., not by the given key {key.keyid[:16]}...")
    try:
        envelope.verify([key], 1)
    except Exception:  # securesystemslib's VerificationError (and nothing else expected)
        res.problems.append(f"the signature in {ENVELOPE} does not verify with {pubkey_path.name}")
        return res
    try:
        stmt = json.loads(envelope.payload)
        subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    except (ValueError, KeyError, TypeError) as exc:
        res.problems.append(f"the signed statement is malformed: {exc}")
        return res
    if stmt.get("_type") != STATEMENT_TYPE or stmt.get("predicateType") != PREDICATE_TYPE:
        res.problems.append("the signed statement is not an in-toto v1 Statement with SLSA provenance")
    present = _bundle_files(folder)
    for name in sorted(set(subjects) - set(present)):
        res.problems.append(f"{name}: signed but missing")
    for name in sorted(set(present) - set(subjects)):
        res.problems.append(f"{name}: present but not signed")
    for name in sorted(set(present) & set(subjects)):
        if present[name] != subjects[name]:
            res.problems.append(f"{name}: changed since signing")
    return res
