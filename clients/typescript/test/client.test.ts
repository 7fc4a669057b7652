// Runs against a real service and Stripe stand-in started by tests/test_typescript_package.py
// (ONRAMP_URL, with the stand-in sending its webhooks to the service).
import { createRequire } from "node:module";

import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import { beforeEach, describe, expect, it } from "vitest";

import {
  OnrampClient,
  OnrampProblem,
  bitcoinSigner,
  eip1193Signer,
  isSettled,
  type Eip1193Provider,
} from "../src/index.js";
import { parseEvents } from "../src/events.js";

const baseUrl = process.env.ONRAMP_URL ?? "";

/** An injected wallet as a dApp meets it: EIP-1193 over a local key. */
function localWallet(): Eip1193Provider & { address: string } {
  const account = privateKeyToAccount(generatePrivateKey());
  return {
    address: account.address,
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account.address];
      if (method === "personal_sign") {
        const [hex] = params as [`0x${string}`, string];
        return account.signMessage({ message: { raw: hex } });
      }
      throw new Error(`unsupported method ${method}`);
    },
  };
}

async function signedIn(fetcher?: typeof fetch): Promise<{ client: OnrampClient; wallet: string }> {
  const wallet = localWallet();
  const client = new OnrampClient({ baseUrl, fetch: fetcher, retryDelayMs: 50 });
  const token = await client.signIn(await eip1193Signer(wallet));
  expect(token.walletAddress).toBe(wallet.address);
  return { client, wallet: wallet.address };
}

describe("the typed client against a running service", () => {
  let calls: string[] = [];
  beforeEach(() => {
    calls = [];
  });

  it("reads the configuration a frontend needs", async () => {
    const config = await new OnrampClient({ baseUrl }).config();
    expect(config.stripeStandIn).toBe(true);
    expect(config.destinations.map((d) => `${d.currency} on ${d.network}`)).toContain("musd on mezo");
    expect(config.signIn.chainId).toBeGreaterThan(0);
  });

  it("signs in through an EIP-1193 wallet and quotes", async () => {
    const { client } = await signedIn();
    const quote = await client.quote({ sourceAmount: "100.00" });
    expect(quote.destinationAmount).toBe("98.49");
    expect(quote.destinationCurrency).toBe("musd");
  });

  it("signs in a Bitcoin wallet through Mezo Passport (BIP-137, bitcoinjs-message)", async () => {
    const bitcoinMessage = createRequire(import.meta.url)("bitcoinjs-message");
    const key = Buffer.from(process.env.BITCOIN_KEY ?? "", "hex");
    const address = process.env.BITCOIN_ADDRESS ?? "";
    const client = new OnrampClient({ baseUrl });
    const signedIn = await client.signIn(
      bitcoinSigner(address, async (message) =>
        bitcoinMessage.sign(message, key, true, { segwitType: "p2wpkh" }).toString("base64"),
      ),
    );
    expect(signedIn.bitcoinAddress).toBe(address);
    expect(signedIn.walletAddress).toMatch(/^0x[0-9a-fA-F]{40}$/); // the Mezo account
    expect((await client.sessions()).items).toEqual([]);
  });

  it("signs in a wallet that gives every address the P2PKH header, as Unisat does", async () => {
    const bitcoinMessage = createRequire(import.meta.url)("bitcoinjs-message");
    const key = Buffer.from(process.env.BITCOIN_KEY ?? "", "hex");
    const address = process.env.BITCOIN_ADDRESS ?? ""; // P2WPKH
    const signedIn = await new OnrampClient({ baseUrl }).signIn(
      bitcoinSigner(address, async (message) => bitcoinMessage.sign(message, key, true).toString("base64")),
    );
    expect(signedIn.bitcoinAddress).toBe(address);
  });

  it("turns refusals into typed problems and does not retry them", async () => {
    const counting: typeof fetch = (input, init) => {
      calls.push(String(input instanceof Request ? input.url : input));
      return fetch(input, init);
    };
    const { client, wallet } = await signedIn(counting);
    calls = [];
    const refused = await client
      .createSession({ purchaseId: "p-bad", walletAddress: wallet, sourceAmount: "1.001" })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OnrampProblem);
    expect((refused as OnrampProblem).status).toBe(400);
    expect((refused as OnrampProblem).code).toBe("invalid_amount");
    expect((refused as OnrampProblem).errors?.[0]?.field).toBe("sourceAmount");
    expect(calls).toHaveLength(1);
  });

  it("retries a purchase whose answer was lost with the same key: one session", async () => {
    let lost = 0;
    const losing: typeof fetch = async (input, init) => {
      const request = input instanceof Request ? input : new Request(input, init);
      const response = await fetch(request);
      if (request.method === "POST" && request.url.endsWith("/api/v1/onramp/sessions") && lost === 0) {
        lost++;
        throw new TypeError("network connection lost"); // the service did the work
      }
      return response;
    };
    const { client, wallet } = await signedIn(losing);
    const session = await client.createSession({ purchaseId: "p-1", walletAddress: wallet, sourceAmount: "25.00" });
    expect(lost).toBe(1);
    expect(session.clientSecret).toBeTruthy();
    const again = await client.createSession({ purchaseId: "p-1", walletAddress: wallet, sourceAmount: "25.00" });
    expect(again.id).toBe(session.id);
    const page = await client.sessions();
    expect(page.items.map((s) => s.id)).toEqual([session.id]);
  });

  it("watches a session live to its end, reconnecting after a dropped stream", async () => {
    let cut = 0;
    const cutting: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const url = String(input instanceof Request ? input.url : input);
      if (!url.endsWith("/events") || cut > 0 || response.body === null) return response;
      cut++;
      // Deliver the first chunk, then fail as a dropped connection does.
      const reader = response.body.getReader();
      const broken = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value } = await reader.read();
          if (value !== undefined) controller.enqueue(value);
          controller.error(new TypeError("connection reset"));
        },
      });
      return new Response(broken, { status: response.status, headers: response.headers });
    };
    const { client, wallet } = await signedIn(cutting);
    const session = await client.createSession({ purchaseId: "p-watch", walletAddress: wallet, sourceAmount: "40.00" });
    const page = session.redirectUrl ?? "";
    const seen: string[] = [];
    for await (const current of client.watchSession(session.id)) {
      seen.push(current.status);
      if (seen.length === 1) {
        const paid = await fetch(page, { method: "POST", body: new URLSearchParams({ card: "4000000000000002" }) });
        expect(paid.status).toBe(200);
      }
    }
    expect(cut).toBe(1);
    expect(seen[0]).toBe("initialized");
    expect(seen.at(-1)).toBe("rejected");
    expect(isSettled(await client.session(session.id), await client.lifecycle())).toBe(true);
  });

  it("reads a session settled before its watch once, without reconnecting to its 204", async () => {
    let streams = 0;
    const counting: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith("/events")) streams++;
      return fetch(input, init);
    };
    const { client, wallet } = await signedIn(counting);
    const session = await client.createSession({ purchaseId: "p-settled", walletAddress: wallet, sourceAmount: "40.00" });
    const declined = await fetch(session.redirectUrl ?? "", {
      method: "POST",
      body: new URLSearchParams({ card: "4000000000000002" }),
    });
    expect(declined.status).toBe(200);
    const lifecycle = await client.lifecycle();
    await expect.poll(async () => isSettled(await client.session(session.id), lifecycle)).toBe(true);

    const seen: string[] = [];
    for await (const current of client.watchSession(session.id)) seen.push(current.status);
    expect(seen).toEqual(["rejected"]);
    expect(streams).toBe(1);
  });

  it("gives a native EventSource a URL with a single-use ticket, no header needed", async () => {
    const { client, wallet } = await signedIn();
    const session = await client.createSession({ purchaseId: "p-ticket", walletAddress: wallet, sourceAmount: "40.00" });
    const url = await client.eventSourceUrl(session.id);
    expect(new URL(url).searchParams.get("ticket")).toMatch(/^est_/);
    // As an EventSource asks: a plain GET, no Authorization header.
    const stream = await fetch(url, { headers: { Accept: "text/event-stream" } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/);
    for await (const event of parseEvents(stream.body as ReadableStream<Uint8Array>)) {
      expect(event.event).toBe("session");
      expect((JSON.parse(event.data) as { id: string }).id).toBe(session.id);
      break;
    }
    const again = await fetch(url, { headers: { Accept: "text/event-stream" } });
    expect(again.status).toBe(401);
    const ticket = await client.streamTicket(session.id);
    expect(Date.parse(ticket.expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
  });
});
