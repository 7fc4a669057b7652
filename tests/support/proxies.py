"""Debian's HAProxy and nginx, run from the files in docs/proxies as an operator would
use them, in front of `onramp serve` replicas."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.anvil import free_port

PROXIES = Path(__file__).resolve().parents[2] / "docs" / "proxies"
HAPROXY_CONFIG = PROXIES / "haproxy.cfg"
NGINX_CONFIG = PROXIES / "nginx.conf"
# The placeholders nginx.conf is filled with (its envsubst line names the same).
NGINX_PLACEHOLDERS = ("ONRAMP_PROXY_LISTEN", "ONRAMP_API_1", "ONRAMP_API_2")
PACKAGES = {"haproxy": "haproxy", "nginx": "nginx", "envsubst": "gettext-base"}


def addresses(backends: list[str], listen: str) -> dict[str, str]:
    """The templates' variables: where the proxy listens, and each replica's host:port."""
    named = {f"ONRAMP_API_{n}": backend for n, backend in enumerate(backends, start=1)}
    return {"ONRAMP_PROXY_LISTEN": listen, "ONRAMP_PROXY_BIND": listen, **named}


def installed(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is missing: apt-get install {PACKAGES[program]} (./run test does)")
    return path


def render_nginx(variables: dict[str, str]) -> str:
    """nginx.conf through envsubst, limited to the placeholders as the file says."""
    listed = " ".join(f"${{{name}}}" for name in NGINX_PLACEHOLDERS)
    return subprocess.run(
        [installed("envsubst"), listed],
        input=NGINX_CONFIG.read_text(),
        env={name: variables[name] for name in NGINX_PLACEHOLDERS},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def nginx_main(folder: Path, site: Path) -> str:
    """The rest of a machine's nginx.conf, kept inside `folder`: one process in the
    foreground, its files there, the site included inside `http` as conf.d's are."""
    temp = {kind: folder / f"{kind}_temp" for kind in ("client_body", "proxy", "fastcgi", "uwsgi")}
    temp["scgi"] = folder / "scgi_temp"
    paths = "\n".join(f"    {kind}_temp_path {path};" for kind, path in temp.items())
    return (
        f"daemon off;\nmaster_process off;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/nginx-error.log notice;\nevents {{}}\n"
        f"http {{\n    access_log {folder}/nginx-access.log;\n{paths}\n"
        f"    include {site};\n}}\n"
    )


@contextmanager
def proxy_before(kind: str, backends: list[str], folder: Path) -> Iterator[str]:
    """`kind` (haproxy or nginx) in front of `backends` (host:port each) until the block
    ends; yields its base URL once it answers `/ready` through a replica."""
    port = free_port()
    variables = addresses(backends, f"127.0.0.1:{port}")
    if kind == "haproxy":
        command = [installed("haproxy"), "-db", "-f", str(HAPROXY_CONFIG)]
        environment = variables
    else:
        site = folder / "onramp.conf"
        site.write_text(render_nginx(variables))
        main = folder / "nginx-main.conf"
        main.write_text(nginx_main(folder, site))
        command = [installed("nginx"), "-p", str(folder), "-c", str(main), "-e", "stderr"]
        environment = {}
    log_path = folder / f"{kind}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            env={"PATH": os.environ["PATH"], **environment},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
