"""@onramp/client as a dApp team gets it: the packed tarball (`npm pack`, which builds it)
installed with plain `npm install` into a project outside this repository, beside
TypeScript and viem. There, its README's examples compile under `tsc --strict` with every
library's declarations checked, no type it exports is `any`, and the README's Node
example runs as an ES module against `onramp demo`'s whole stack (the service, the Stripe
stand-in, anvil, the delivery worker) until the delivery is confirmed on chain; then the
package is required from CommonJS and reads the same session."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
from eth_account import Account

from service.demo.flow import demo_stack
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus
from service.stripe_sim.hosted_page import PAYING_CARD
from tests.demo.test_demo_command import wait_for

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "typescript"
PAYMENT_PAGE = re.compile(r"^pay at (\S+)$", re.M)

# Each line after a @ts-expect-error must be a type error. Were an exported type `any`,
# as the types of a declaration file the package lacks silently become under skipLibCheck,
# the line would compile and the unused directive fail. (A conditional `IsAny<T>` cannot
# tell: on a type whose declaration is missing it answers `any` itself.)
TYPED = """
import type {
  ClientConfig, OnrampClient, Purchase, Quote, QuoteRequest, Session, SignedIn,
} from "@onramp/client";

const notOne = "not one";
// @ts-expect-error a string is no session
export const session: Session = notOne;
// @ts-expect-error nor one of the statuses the lifecycle declares
export const status: Session["status"] = notOne;
// @ts-expect-error nor a delivery
export const delivery: Session["delivery"] = notOne;
// @ts-expect-error nor a quote
export const quote: Quote = notOne;
// @ts-expect-error nor what a quote is asked with
export const asked: QuoteRequest = notOne;
// @ts-expect-error nor the configuration
export const config: ClientConfig = notOne;
// @ts-expect-error nor the lifecycle
export const lifecycle: ClientConfig["lifecycle"] = notOne;
// @ts-expect-error nor a sign-in's answer
export const signedIn: SignedIn = notOne;
// @ts-expect-error nor a purchase
export const purchase: Purchase = notOne;
// @ts-expect-error nor the generated OpenAPI client
export const api: OnrampClient["api"] = notOne;
// @ts-expect-error nor what createSession answers
export const created: Awaited<ReturnType<OnrampClient["createSession"]>> = notOne;
"""

# From CommonJS (a .cts compiles to require() calls): the wallet's sessions, as read.
REQUIRED = """
import { OnrampClient, isSettled } from "@onramp/client";
import { privateKeyToAccount } from "viem/accounts";

async function main(): Promise<void> {
  const account = privateKeyToAccount(process.env.WALLET_PRIVATE_KEY as `0x${string}`);
  const onramp = new OnrampClient({ baseUrl: process.env.ONRAMP_URL ?? "" });
  await onramp.signIn({
    address: account.address,
    signMessage: (message) => account.signMessage({ message }),
  });
  const lifecycle = await onramp.lifecycle();
  const { items } = await onramp.sessions();
  const sessions = items.map((s) => [s.status, s.delivery.status, isSettled(s, lifecycle)]);
  console.log(JSON.stringify({ loaded: require.resolve("@onramp/client"), sessions }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
"""

STRICT = {"target": "es2022", "module": "nodenext", "strict": True, "skipLibCheck": False}


def readme_example(heading: str) -> str:
    """The TypeScript block under one of the README's headings: what a reader copies."""
    readme = (CLIENT / "README.md").read_text()
    found = re.search(rf"^### {heading}\n.*?^```ts\n(.*?)^```$", readme, re.S | re.M)
    assert found is not None, f"the client's README has no `### {heading}` example"
    return found.group(1)


def locked_version(package: str) -> str:
    """The version this repository's lock file installs (so npm has it cached)."""
    lock = json.loads((ROOT / "package-lock.json").read_text())
    return str(lock["packages"][f"node_modules/{package}"]["version"])


def run(*command: str, cwd: Path, **env: str) -> str:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert done.returncode == 0, f"$ {' '.join(command)}\n{done.stdout}{done.stderr}"
    return done.stdout


def packed(into: Path) -> Path:
    into.mkdir()
    listing = json.loads(run("npm", "pack", "--json", "--pack-destination", str(into), cwd=CLIENT))
    files = {entry["path"] for entry in listing[0]["files"]}
    for build in ("esm", "cjs"):
        assert {f"dist/{build}/index.js", f"dist/{build}/schema.d.ts"} <= files, files
    assert not [name for name in files if name.startswith(("src/", "test/"))], files
    return into / str(listing[0]["filename"])


def scratch_project(at: Path, tarball: Path) -> Path:
    """A project of its own, outside the repository, with the tarball installed."""
    at.mkdir()
    buyer = {"name": "buyer", "private": True, "type": "module"}
    (at / "package.json").write_text(json.dumps(buyer))
    run(
        "npm",
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--save-exact",
        str(tarball),
        *(f"{name}@{locked_version(name)}" for name in ("typescript", "viem", "@types/node")),
        cwd=at,
    )
    (at / "example.ts").write_text(readme_example("In Node"))
    (at / "browser.ts").write_text(readme_example("In a browser"))
    (at / "typed.ts").write_text(TYPED)
    (at / "typed-require.cts").write_text(TYPED)
    (at / "required.cts").write_text(REQUIRED)
    node = {**STRICT, "types": ["node"]}
    files = ["example.ts", "typed.ts", "typed-require.cts", "required.cts"]
    (at / "tsconfig.json").write_text(json.dumps({"compilerOptions": node, "files": files}))
    browser = {**STRICT, "lib": ["es2022", "dom", "dom.iterable"], "types": [], "noEmit": True}
    (at / "tsconfig.browser.json").write_text(
        json.dumps({"compilerOptions": browser, "files": ["browser.ts"]})
    )
    return at


def test_the_packed_client_installs_compiles_and_buys_from_node_and_commonjs(
    tmp_path: Path,
) -> None:
    project = scratch_project(tmp_path / "buyer", packed(tmp_path / "packed"))
    tsc = str(project / "node_modules" / ".bin" / "tsc")
    run(tsc, "-p", "tsconfig.json", cwd=project)
    run(tsc, "-p", "tsconfig.json", "--noEmit", "--skipLibCheck", cwd=project)
    run(tsc, "-p", "tsconfig.browser.json", cwd=project)
    imported = "console.log(import.meta.resolve('@onramp/client'))"
    assert (
        run("node", "--input-type=module", "-e", imported, cwd=project)
        .strip()
        .endswith("/node_modules/@onramp/client/dist/esm/index.js")
    )

    key = "0x" + bytes(Account.create().key).hex()
    with demo_stack() as stack:
        wallet = {"ONRAMP_URL": stack.base, "WALLET_PRIVATE_KEY": key}
        printed = project / "example.out"
        with printed.open("w") as out:
            example = subprocess.Popen(
                ["node", "example.js"],
                cwd=project,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **wallet},
            )
        try:
            # A buyer pays on Stripe's page; here, on the stand-in's, with its test card.
            wait_for(
                lambda: (
                    PAYMENT_PAGE.search(printed.read_text()) is not None
                    or example.poll() is not None
                ),
                60,
                "the example printed no payment page",
            )
            page = PAYMENT_PAGE.search(printed.read_text())
            assert page is not None, printed.read_text()
            paid = httpx.post(page.group(1), data={"card": PAYING_CARD}, timeout=30)
            assert paid.status_code == 200, paid.text
            assert example.wait(timeout=60) == 0, printed.read_text()
        finally:
            example.kill()
        lines = printed.read_text().splitlines()
        assert re.fullmatch(r"100\.00 USD buys \d+\.\d+ musd", lines[0]), lines
        assert lines[2] == f"{LIFECYCLE.initial} {DeliveryStatus.NOT_STARTED}", lines
        assert lines[-1] == f"{LIFECYCLE.fulfilled} {DeliveryStatus.CONFIRMED}", lines

        required = json.loads(run("node", "required.cjs", cwd=project, **wallet))
    assert required["loaded"].endswith("/node_modules/@onramp/client/dist/cjs/index.js")
    assert required["sessions"] == [[LIFECYCLE.fulfilled, DeliveryStatus.CONFIRMED, True]]
