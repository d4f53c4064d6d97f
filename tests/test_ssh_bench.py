"""`edgezoo bench BUNDLE --device ssh://...` against a real OpenSSH server started here on
127.0.0.1 with throwaway keys (Debian's openssh-server; `.ci/run` installs it): the bundle's
own run.py measures on the "device" and the result comes back with the device's identity.
Unreachable host, refused key, missing runtime and missing Python each get one line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
pytestmark = pytest.mark.skipif(SSHD is None or shutil.which("ssh") is None,
                                reason="needs OpenSSH (Debian: apt install openssh-server openssh-client; .ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host", "user", "stranger"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copyfile(d / "user.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nStrictModes no\n"
        f"UsePAM no\nPidFile {d / 'sshd.pid'}\nPermitRootLogin prohibit-password\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"sshd did not start: {proc.stdout.read().decode(errors='replace')}")
            time.sleep(0.1)
    user = os.environ.get("USER") or __import__("getpass").getuser()
    yield {"url": f"ssh://{user}@127.0.0.1:{port}", "port": port, "key": d / "user", "stranger": d / "stranger",
           "opts": ["--ssh-option", "StrictHostKeyChecking=accept-new", "--ssh-option", f"UserKnownHostsFile={d / 'known_hosts'}"],
           "dir": d}
    proc.terminate()
    proc.wait(timeout=10)


def test_bench_runs_the_bundle_on_the_device_and_brings_back_the_result(sshd, digits_tflite_int8, tmp_path):
    bundle, _, _ = digits_tflite_int8
    out = tmp_path / "results"
    res = run_cli("bench", str(bundle), "--device", sshd["url"], "--ssh-key", str(sshd["key"]), *sshd["opts"],
                  "--python", sys.executable, "--runs", "20", "--rounds", "3", "--threads", "1", "--out", str(out), "--json")
    data = json.loads(res.stdout)
    assert data["measured_on"] == "device" and data["runs"] == 60 and len(data["round_p50_ms"]) == 3
    assert 0 < data["min_ms"] <= data["p50_ms"] <= data["p90_ms"]
    dev = data["device"]
    assert dev["hostname"] == os.uname().nodename and dev["machine"] == os.uname().machine
    assert dev["runtime"] == "litert" and dev["runtime_version"].startswith(("ai-edge-litert", "tflite-runtime"))
    saved = list(out.glob("device-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["p50_ms"] == data["p50_ms"]
    # nothing left on the device
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("edgezoo-??????/" + bundle.name))


def test_the_report_marks_device_numbers(sshd, digits_tflite_int8, tmp_path):
    bundle, _, _ = digits_tflite_int8
    dist = tmp_path / "dist"
    shutil.copytree(bundle, dist / bundle.name)
    run_cli("bench", str(dist / bundle.name), "--device", sshd["url"], "--ssh-key", str(sshd["key"]), *sshd["opts"],
            "--python", sys.executable, "--runs", "10", "--rounds", "2")
    rows = json.loads(run_cli("report", str(dist), "--json").stdout)["rows"]
    sources = sorted(r["source"].split(" ")[0] for r in rows)
    assert sources == ["device", "host", "host"]


@pytest.mark.parametrize("case", ["refused", "wrong-key", "no-numpy", "no-runtime", "no-python"])
def test_device_failures_are_one_line_with_their_exit_code(sshd, digits_tflite_int8, tmp_path, case):
    bundle, _, _ = digits_tflite_int8
    url, key, python = sshd["url"], sshd["key"], sys.executable
    if case == "refused":
        url = url.replace(f":{sshd['port']}", f":{_free_port()}")
    elif case == "wrong-key":
        key = sshd["stranger"]
    elif case == "no-numpy":  # a bare interpreter: run.py cannot import numpy
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
        python = str(tmp_path / "bare" / "bin" / "python")
    elif case == "no-runtime":  # numpy present, the runtime's modules shadowed by ones that fail to import
        shadow = tmp_path / "shadow"
        for mod in ("ai_edge_litert", "tflite_runtime"):
            (shadow / mod).mkdir(parents=True)
            (shadow / mod / "__init__.py").write_text("raise ImportError('not installed on this device')\n")
        wrapper = tmp_path / "python"
        wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={shadow} exec {sys.executable} \"$@\"\n")
        wrapper.chmod(0o755)
        python = str(wrapper)
    else:
        python = str(tmp_path / "nowhere" / "python3")
    res = run_cli("bench", str(bundle), "--device", url, "--ssh-key", str(key), *sshd["opts"], "--python", python,
                  "--runs", "5", "--rounds", "1", ok=None)
    expected = {"refused": (6, "cannot reach"), "wrong-key": (2, "authentication"), "no-numpy": (3, "lacks the module 'numpy'"),
                "no-runtime": (3, "lacks the bundle's runtime"), "no-python": (3, "has no Python")}[case]
    assert res.exit_code == expected[0], res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and expected[1] in lines[0] and "Traceback" not in res.output


def test_runner_benchmark_mode_runs_locally(digits_tflite_int8):
    bundle, _, _ = digits_tflite_int8
    proc = subprocess.run([sys.executable, str(bundle / "run.py"), "--benchmark", "--json", "--runs", "5", "--rounds", "2"],
                          capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)
    assert data["runs"] == 10 and data["inputs"] == "synthetic" and data["device"]["runtime"] == "litert"


def test_a_device_that_does_not_finish_times_out(sshd, digits_tflite_int8, tmp_path):
    bundle, _, _ = digits_tflite_int8
    slow = tmp_path / "python"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    res = run_cli("bench", str(bundle), "--device", sshd["url"], "--ssh-key", str(sshd["key"]), *sshd["opts"], "--python", str(slow),
                  "--timeout", "2", ok=None)
    assert res.exit_code == 6 and "did not finish within 2 s" in res.output


def test_gate_reads_device_latency(sshd, digits_tflite_int8, tmp_path):
    bundle, _, _ = digits_tflite_int8
    run_cli("bench", str(bundle), "--device", sshd["url"], "--ssh-key", str(sshd["key"]), *sshd["opts"], "--python", sys.executable,
            "--runs", "10", "--rounds", "3", "--threads", "1", "--out", str(tmp_path))
    [result] = tmp_path.glob("device-*.json")
    base = tmp_path / "base.json"
    run_cli("gate", str(bundle), "-b", str(base), "--latency-from", str(result), "--update-baseline")
    data = json.loads(base.read_text())
    assert data["latency_source"] == "device" and data["environment"]["measured_on"] == "device"
    assert data["p50_ms"] == json.loads(result.read_text())["p50_ms"]
    res = run_cli("gate", str(bundle), "-b", str(base), "--latency-from", str(result), "--json")
    assert json.loads(res.stdout)["passed"]
    res = run_cli("gate", str(bundle), "-b", str(base), "--json")  # host figures against a device baseline: said so
    assert any("measured elsewhere" in w for w in json.loads(res.stdout)["warnings"])


@pytest.mark.parametrize("address", ["http://pi@host", "ssh://a b", "ssh://pi@host/path", "ssh://host:notaport"])
def test_malformed_device_addresses_are_usage_errors(digits_tflite_int8, address):
    res = run_cli("bench", str(digits_tflite_int8[0]), "--device", address, ok=None)
    assert res.exit_code == 2 and "ssh://" in res.output and "Traceback" not in res.output
