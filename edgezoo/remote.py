"""Benchmarks on the device itself, over SSH.

A remote device wraps the bundle's own runtime: the bundle is streamed to the device in one
SSH connection, its ``run.py --benchmark --json`` runs there with the device's runtime (the
same Session code the bundle ships), the JSON result comes back with the device's identity
(uname, CPU, Python, runtime version), and the temporary folder is removed.

This uses the system OpenSSH client (``ssh``), so the user's ``~/.ssh/config``, agent, jump
hosts and known_hosts apply as they do at their shell. ``BatchMode`` is always on: a run
never hangs on a password prompt.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from edgezoo.errors import EdgezooError, FetchError, PipelineError, UsageError


class DeviceUnreachable(FetchError):
    """The device did not answer (exit 6, like any other network resource)."""


@dataclass(frozen=True)
class SshAddress:
    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user + '@' if self.user else ''}{host}" + (f":{self.port}" if self.port else "")


def parse_device(url: str) -> SshAddress:
    """``ssh://[user@]host[:port]`` (or ``user@host``, or a Host alias from ~/.ssh/config)."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != "ssh":
            raise UsageError(f"device {url!r}: only ssh:// devices are supported", hint="e.g. --device ssh://pi@raspberrypi.local")
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"device {url!r} has an invalid port", hint="e.g. ssh://pi@raspberrypi.local:2222") from None
        if not parts.hostname or parts.path not in ("", "/") or not re.fullmatch(r"[A-Za-z0-9._:%-]+", parts.hostname) \
                or (parts.username and not re.fullmatch(r"[A-Za-z0-9._-]+", parts.username)):
            raise UsageError(f"device {url!r} is not ssh://[user@]host[:port]", hint="e.g. --device ssh://pi@raspberrypi.local")
        return SshAddress(parts.hostname, parts.username, port)
    if not re.fullmatch(r"([A-Za-z0-9._-]+@)?[A-Za-z0-9._:-]+", text):
        raise UsageError(f"device {url!r} is not ssh://[user@]host[:port]", hint="e.g. --device ssh://pi@raspberrypi.local")
    user, _, host = text.rpartition("@")
    return SshAddress(host, user or None)


class SshDevice:
    def __init__(self, address: SshAddress, *, identity: Path | None = None, options: tuple[str, ...] = (),
                 connect_timeout: int = 10, timeout: float = 600.0, python: str = "python3"):
        if shutil.which("ssh") is None:
            raise UsageError("the OpenSSH client `ssh` is not installed", hint="install it (Debian: apt install openssh-client)")
        if identity is not None and not identity.is_file():
            raise UsageError(f"no SSH key at {identity}", hint="pass the private key file that the device accepts")
        self.address, self.identity, self.options = address, identity, options
        self.connect_timeout, self.timeout, self.python = connect_timeout, timeout, python

    def _command(self, remote: str) -> list[str]:
        cmd = ["ssh"]
        for opt in self.options:  # first: for each option ssh keeps the first value it is given
            cmd += ["-o", opt]
        cmd += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}", "-o", "ServerAliveInterval=15",
                "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"]
        if self.address.port:
            cmd += ["-p", str(self.address.port)]
        if self.identity is not None:
            cmd += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        return cmd + [self.address.destination, remote]

    def run(self, remote: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(self._command(remote), input=stdin or b"", capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DeviceUnreachable(f"{self.address} did not finish within {self.timeout:g} s",
                                    hint="raise --timeout, or check that the device is not overloaded") from None
        if proc.returncode == 255:  # ssh's own failure: connecting, authenticating, the host key
            raise self._ssh_error(proc.stderr.decode(errors="replace"))
        return proc

    def _ssh_error(self, err: str) -> EdgezooError:
        where = str(self.address)
        low = err.lower()
        last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), "no output")
        if "permission denied" in low or "too many authentication failures" in low:
            return UsageError(f"authentication to {where} failed ({last})",
                              hint="pass --ssh-key with a key the device accepts, or load one into ssh-agent")
        if "host key verification failed" in low or "remote host identification has changed" in low:
            return UsageError(f"the host key of {where} is unknown or changed",
                              hint=f"connect once with `ssh {self.address.destination}` to check and accept it, "
                                   "or pass --ssh-option StrictHostKeyChecking=accept-new")
        if "timed out" in low:
            return DeviceUnreachable(f"cannot reach {where}: connection timed out", hint="check the address and that the device is on")
        if any(k in low for k in ("connection refused", "no route to host", "could not resolve", "network is unreachable",
                                  "name or service not known", "connection closed", "connection reset")):
            return DeviceUnreachable(f"cannot reach {where}: {last}", hint="check the address, the port and that sshd runs on the device")
        return DeviceUnreachable(f"ssh to {where} failed: {last}")

    def identity_text(self) -> str:
        return str(self.address)

    def benchmark(self, bundle: Path, *, runs: int = 50, rounds: int = 5, warmup: int = 10, threads: int | None = None,
                  requires: tuple[str, ...] = ()) -> dict:
        """Run the bundle's ``run.py --benchmark --json`` on the device and return its JSON."""
        from edgezoo.bundle.archive import write_tar_gz

        with tempfile.TemporaryDirectory(prefix="edgezoo-remote-") as tmp:
            archive = Path(tmp) / "bundle.tar.gz"
            write_tar_gz(bundle, archive)
            payload = archive.read_bytes()
        args = ["--benchmark", "--json", "--runs", str(runs), "--rounds", str(rounds), "--warmup", str(warmup)]
        if threads:
            args += ["--threads", str(threads)]
        run = f"{shlex.quote(self.python)} run.py {' '.join(shlex.quote(a) for a in args)}"
        script = ('d=$(mktemp -d "${TMPDIR:-/tmp}/edgezoo-XXXXXX") || exit 90; trap \'rm -rf "$d"\' EXIT; '
                  f'tar -xzf - -C "$d" || exit 91; cd "$d"/{shlex.quote(bundle.name)} || exit 91; {run}')
        proc = self.run(f"sh -c {shlex.quote(script)}", stdin=payload)
        err = proc.stderr.decode(errors="replace")
        last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip() and not ln.startswith("INFO:")), "no output")
        need = ", ".join(requires) or "numpy and the bundle's runtime"
        if proc.returncode == 127 or "not found" in last and self.python in last:
            raise PipelineError(f"{self.address} has no Python at {self.python!r}",
                                hint=f"install Python 3 on the device (the runner needs {need}) or pass --python PATH")
        if proc.returncode in (90, 91):
            raise PipelineError(f"could not unpack the bundle on {self.address} ({last})", hint="check free space in /tmp on the device")
        missing = re.search(r"No module named '([^']+)'", err)
        if missing:
            raise PipelineError(f"the Python on {self.address} lacks the module {missing.group(1)!r}",
                                hint=f"install what the runner needs on the device: {need}")
        if "unrecognized arguments: --benchmark" in err:
            raise PipelineError(f"{bundle.name}'s run.py has no benchmark mode (built by an older edgezoo)",
                                hint="export the bundle again with this edgezoo")
        if proc.returncode == 3 and "needs" in last:  # run.py's RuntimeMissing
            raise PipelineError(f"{self.address} lacks the bundle's runtime: {last.removeprefix('error: ')}",
                                hint=f"the runner needs {need} on the device")
        if proc.returncode == 3:
            raise PipelineError(f"the runtime failed on {self.address}: {last.removeprefix('error: ')}")
        if proc.returncode != 0:
            raise PipelineError(f"run.py --benchmark failed on {self.address} (exit {proc.returncode}): {last}")
        try:
            result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise PipelineError(f"run.py on {self.address} printed no JSON result", hint="run it there by hand: python3 run.py --benchmark") from None
        result["measured_on"] = "device"
        result["device_address"] = str(self.address)
        return result
