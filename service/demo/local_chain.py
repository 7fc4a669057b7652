"""A real local EVM node: anvil, from the npm package @foundry-rs/anvil.

The demo runs the whole flow on it, and the tests run against it; the project's own
set-up (`./run`) installs the package with npm: into node_modules/ with everything else
for the tests, or alone into .tools/anvil/ for the demo.
"""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import HTTPProvider, Web3

from service.chain.artifacts import load_artifact

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding node_modules/
_NODE_MODULES = (ROOT / "node_modules", ROOT / ".tools" / "anvil" / "node_modules")
MEZO_TESTNET_CHAIN_ID = 31611

_PLATFORMS = {
    ("linux", "x86_64"): "linux-amd64",
    ("linux", "aarch64"): "linux-arm64",
    ("darwin", "arm64"): "darwin-arm64",
    ("darwin", "x86_64"): "darwin-amd64",
}


def anvil_binary() -> Path:
    """The native binary that the npm package ships for this platform."""
    key = (sys.platform, platform.machine().lower())
    candidates = []
    for modules in _NODE_MODULES:
        if key in _PLATFORMS:
            native = modules / "@foundry-rs" / f"anvil-{_PLATFORMS[key]}"
            candidates.append(native / "bin" / "anvil")
        candidates.append(modules / ".bin" / "anvil")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise RuntimeError("anvil is not installed: `./run demo` or `./run test` installs it")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Anvil:
    url: str
    chain_id: int
    process: subprocess.Popen[bytes]
    w3: Web3

    @property
    def funder(self) -> str:
        """An unlocked, pre-funded account of anvil's."""
        return str(self.w3.eth.accounts[0])

    def deploy(self, artifact: str, *args: Any) -> str:
        compiled = load_artifact(artifact)
        contract = self.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
        tx = contract.constructor(*args).transact({"from": self.funder})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        return str(receipt["contractAddress"])

    def deploy_token(self, supply: int) -> str:
        """A fresh MUSD-like token, with `supply` minted to the funder."""
        address = self.deploy("TestMUSD")
        minted = self.contract("TestMUSD", address).functions.mint(self.funder, supply)
        self.w3.eth.wait_for_transaction_receipt(minted.transact({"from": self.funder}))
        return address

    def deploy_at(self, artifact: str, address: str, *args: Any) -> str:
        """The contract's code placed at `address` (a registry's, say), as if deployed
        there; its storage starts empty (immutables are part of the code)."""
        deployed = self.deploy(artifact, *args)
        code = self.w3.eth.get_code(Web3.to_checksum_address(deployed))
        self.w3.provider.make_request("anvil_setCode", [address, "0x" + bytes(code).hex()])  # type: ignore[arg-type]
        return Web3.to_checksum_address(address)

    def contract(self, artifact: str, address: str) -> Any:
        checksummed = Web3.to_checksum_address(address)
        return self.w3.eth.contract(address=checksummed, abi=load_artifact(artifact)["abi"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_anvil(chain_id: int = MEZO_TESTNET_CHAIN_ID, block_time: int | None = None) -> Anvil:
    port = free_port()
    command = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--chain-id", str(chain_id), "--silent"]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    process = subprocess.Popen(  # noqa: S603 - our own anvil binary, fixed arguments
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 5}))
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                if w3.eth.chain_id == chain_id:
                    return Anvil(url, chain_id, process, w3)
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"anvil did not start: {error}") from None
            time.sleep(0.05)
    except BaseException:  # a failed start, or Ctrl-C / SIGTERM while it starts
        process.kill()
        process.wait()
        raise
