"""keygen / sign / verify --pubkey: every kind of tampering is caught, and the envelope is
a standard DSSE envelope around an in-toto Statement (checked here by the DSSE spec's own
pre-authentication encoding with `cryptography`, independently of edgezoo's signing code)."""

from __future__ import annotations

import base64
import json
import shutil
import stat

import pytest

from tests.conftest import run_cli

pytest.importorskip("securesystemslib")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    out = tmp_path_factory.mktemp("keys")
    run_cli("keygen", "--out", str(out))
    other = tmp_path_factory.mktemp("other")
    run_cli("keygen", "--out", str(other))
    return out / "edgezoo.key", out / "edgezoo.pub", other / "edgezoo.pub"


@pytest.fixture
def signed(digits_tflite_int8, keys, tmp_path):
    bundle, archive, _ = digits_tflite_int8
    dest = tmp_path / bundle.name
    shutil.copytree(bundle, dest)
    shutil.copyfile(archive, tmp_path / archive.name)
    res = run_cli("sign", str(dest), "--key", str(keys[0]))
    assert "signed" in res.output
    return dest


def verify(path, pub):
    return run_cli("verify", str(path), "--pubkey", str(pub), ok=None)


def test_keygen_writes_a_private_key_only_the_owner_reads(keys):
    priv, pub, _ = keys
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in priv.read_bytes() and b"BEGIN PUBLIC KEY" in pub.read_bytes()
    res = run_cli("keygen", "--out", str(priv.parent), ok=None)  # never overwrites a key
    assert res.exit_code == 2 and "exists" in res.output


def test_signed_bundle_verifies_and_records_the_key(signed, keys):
    res = verify(signed, keys[1])
    assert res.exit_code == 0, res.output
    assert "signature by" in res.output and "verified" in res.output
    manifest = json.loads((signed / "manifest.json").read_text())
    assert manifest["signature"]["scheme"] == "ed25519" and len(manifest["signature"]["keyid"]) == 64
    # the sibling archive was rebuilt and carries the same signature
    res = verify(signed.parent / f"{signed.name}.tar.gz", keys[1])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("tamper", ["changed-byte", "missing-file", "added-file", "changed-envelope"])
def test_any_tampering_fails_verification(signed, keys, tamper):
    if tamper == "changed-byte":
        model = signed / "model.tflite"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 1
        model.write_bytes(bytes(data))
    elif tamper == "missing-file":
        (signed / "NOTICE").unlink()
    elif tamper == "added-file":
        (signed / "extra.bin").write_bytes(b"\0")
    else:
        env = json.loads((signed / "provenance.intoto.json").read_text())
        stmt = json.loads(base64.b64decode(env["payload"]))
        stmt["subject"][0]["digest"]["sha256"] = "0" * 64
        env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
        (signed / "provenance.intoto.json").write_text(json.dumps(env))
    res = verify(signed, keys[1])
    assert res.exit_code == 5, res.output
    expected = {"changed-byte": "model.tflite", "missing-file": "NOTICE", "added-file": "extra.bin",
                "changed-envelope": "does not verify"}[tamper]
    assert expected in res.output


def test_wrong_key_and_unsigned_bundle_fail(signed, keys, digits_tflite_int8):
    res = verify(signed, keys[2])
    assert res.exit_code == 5 and "not by the given key" in res.output
    res = verify(digits_tflite_int8[0], keys[1])  # never signed
    assert res.exit_code == 5 and "not signed" in res.output
    res = verify(signed, keys[0])  # the private key passed as the public one
    assert res.exit_code == 2 and "public key" in res.output


def test_envelope_is_standard_dsse_with_an_intoto_slsa_statement(signed, keys):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    env = json.loads((signed / "provenance.intoto.json").read_text())
    payload = base64.b64decode(env["payload"])
    ptype = env["payloadType"].encode()
    # DSSE v1 pre-authentication encoding, written from the spec
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    key = load_pem_public_key(keys[1].read_bytes())
    key.verify(base64.b64decode(env["signatures"][0]["sig"]), pae)  # raises if wrong
    stmt = json.loads(payload)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://slsa.dev/provenance/v1"
    names = {s["name"] for s in stmt["subject"]}
    on_disk = {p.relative_to(signed).as_posix() for p in signed.rglob("*") if p.is_file()} - {"provenance.intoto.json"}
    assert names == on_disk and {"manifest.json", "model.tflite", "SHA256SUMS", "run.py"} <= names
    deps = stmt["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert any(d["name"] == "weights" and len(d["digest"]["sha256"]) == 64 for d in deps)


def test_a_broken_bundle_is_not_signed(digits_tflite_int8, keys, tmp_path):
    dest = tmp_path / "b"
    shutil.copytree(digits_tflite_int8[0], dest)
    (dest / "run.py").write_text("print('evil')\n")
    res = run_cli("sign", str(dest), "--key", str(keys[0]), ok=None)
    assert res.exit_code == 5 and "does not verify" in res.output
    assert not (dest / "provenance.intoto.json").exists()


# -- what checksums alone cannot see (the faults issue): links, unsafe modes, decompression bombs


def test_verify_refuses_links_and_unsafe_modes(digits_tflite_int8, tmp_path):
    import os

    bundle = tmp_path / "b"
    shutil.copytree(digits_tflite_int8[0], bundle)
    outside = tmp_path / "elsewhere.tflite"
    shutil.move(bundle / "model.tflite", outside)
    os.symlink(outside, bundle / "model.tflite")  # same bytes, so every checksum matches
    res = run_cli("verify", str(bundle), ok=None)
    assert res.exit_code == 5 and "symbolic link" in res.output
    os.unlink(bundle / "model.tflite")
    shutil.copyfile(outside, bundle / "model.tflite")
    os.chmod(bundle / "run.py", 0o4777)
    res = run_cli("verify", str(bundle), ok=None)
    assert res.exit_code == 5 and "run.py: mode 4777" in res.output


def _tar_gz(path, members):
    import gzip
    import io
    import tarfile

    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with gzip.open(path, "wb") as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for name, size, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = size, mode
            tar.addfile(info, io.BufferedReader(Zeros(size), 1 << 20))
    return path


def test_verify_refuses_a_decompression_bomb_before_extracting(tmp_path):
    bomb = _tar_gz(tmp_path / "bomb.tar.gz", [("b/SHA256SUMS", 10, 0o644), ("b/model.onnx", 200 << 20, 0o644)])
    assert bomb.stat().st_size < 1 << 20  # 200 MB of zeros in a few hundred KB
    res = run_cli("verify", str(bomb), ok=None)
    assert res.exit_code == 5 and "refused before extracting" in res.output
    setuid = _tar_gz(tmp_path / "suid.tar.gz", [("b/run.py", 10, 0o4755)])
    res = run_cli("verify", str(setuid), ok=None)
    assert res.exit_code == 5 and "mode 4755" in res.output
