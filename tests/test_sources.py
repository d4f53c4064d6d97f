"""Weight downloads against a real HTTP server on 127.0.0.1: good file, wrong checksum, server gone."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from edgezoo.errors import FetchError, UsageError, VerificationError
from edgezoo.schemas.card import WeightsSource
from edgezoo.zoo import catalog, sources

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.hits.append(self.path)
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files = {"/good.bin": PAYLOAD, "/tampered.bin": PAYLOAD[:-1] + b"X"}
    _Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _src(url: str) -> WeightsSource:
    return WeightsSource(kind="url", url=url, sha256=hashlib.sha256(PAYLOAD).hexdigest(), bytes=len(PAYLOAD), format="torch-state-dict")


def test_download_verifies_and_caches(server, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path))
    src = _src(f"{server}/good.bin")
    path = sources.resolve_weights(src)
    assert path.read_bytes() == PAYLOAD
    assert path.is_relative_to(tmp_path)
    # second call is served from the cache, no request
    sources.resolve_weights(src)
    assert _Handler.hits == ["/good.bin"]


def test_wrong_checksum_is_refused_and_nothing_cached(server, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path))
    src = _src(f"{server}/tampered.bin")
    with pytest.raises(VerificationError, match="sha256"):
        sources.resolve_weights(src)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_server_gone_says_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path))
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(FetchError, match="--weights PATH") as info:
        sources.resolve_weights(_src(f"http://127.0.0.1:{port}/good.bin"))
    assert info.value.exit_code == 6
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_not_found_is_fetch_error(server, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path))
    with pytest.raises(FetchError, match="404"):
        sources.resolve_weights(_src(f"{server}/missing.bin"))


def test_damaged_cache_entry_is_refetched(server, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path))
    src = _src(f"{server}/good.bin")
    path = sources.resolve_weights(src)
    path.write_bytes(b"garbage")
    assert sources.resolve_weights(src).read_bytes() == PAYLOAD
    assert _Handler.hits == ["/good.bin", "/good.bin"]


def test_local_copy_is_checked(tmp_path):
    src = _src("http://127.0.0.1:9/never")
    good = tmp_path / "w.bin"
    good.write_bytes(PAYLOAD)
    assert sources.resolve_weights(src, local=good) == good
    bad = tmp_path / "bad.bin"
    bad.write_bytes(PAYLOAD[:-1] + b"\0")
    with pytest.raises(VerificationError):
        sources.resolve_weights(src, local=bad)
    with pytest.raises(UsageError):
        sources.resolve_weights(src, local=tmp_path / "absent.bin")


def test_packaged_digits_weights_match_card():
    card = catalog.get_card("digits-cnn")
    path = sources.resolve_weights(card.version().weights)
    assert sources.sha256_file(path) == card.version().weights.sha256


def test_torchvision_cards_point_at_official_urls():
    for mid in ("mobilenet_v2", "mobilenet_v3_small", "resnet18", "resnet50"):
        w = catalog.get_card(mid).version().weights
        assert w.url.startswith("https://download.pytorch.org/models/")
        # torchvision names its files with the first 8 hex digits of their sha256
        assert Path(w.url).stem.rsplit("-", 1)[1] == w.sha256[:8]
