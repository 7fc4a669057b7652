import {
  type ClientConfig,
  OnrampClient,
  type Quote,
  type Session,
  eip1193Signer,
  isSettled,
} from "@onramp/client";
import { useEffect, useMemo, useState } from "react";
import { type EIP1193Provider, createWalletClient, custom } from "viem";

import { explain } from "./refusals";
import { StripeWidget } from "./StripeWidget";

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

/** Idempotency keys survive a reload, so a retried purchase never buys twice. */
const keys = {
  get: (purchase: string) => localStorage.getItem(`onramp-key:${purchase}`),
  set: (purchase: string, key: string) => localStorage.setItem(`onramp-key:${purchase}`, key),
};

export function App() {
  const onramp = useMemo(() => new OnrampClient({ baseUrl: window.location.origin, keys }), []);
  const [config, setConfig] = useState<ClientConfig>();
  const [wallet, setWallet] = useState<string>();
  const [signedIn, setSignedIn] = useState(false);
  const [amount, setAmount] = useState("100.00");
  const [quote, setQuote] = useState<Quote>();
  const [session, setSession] = useState<Session>();
  const [history, setHistory] = useState<Session[]>([]);
  const [refusal, setRefusal] = useState<string>();
  const [busy, setBusy] = useState(false);
  // One purchase id per amount until it is bought: pressing Buy again after a failure
  // retries the same purchase (same Idempotency-Key), it never buys a second time.
  const [purchaseId, setPurchaseId] = useState(() => crypto.randomUUID());

  useEffect(() => {
    onramp.config().then(setConfig, (error: unknown) => setRefusal(explain(error)));
  }, [onramp]);

  useEffect(() => {
    if (!signedIn) return;
    let current = true; // an answer for an amount no longer shown is dropped
    setQuote(undefined);
    const timer = setTimeout(() => {
      onramp.quote({ sourceAmount: amount }).then(
        (found) => {
          if (!current) return;
          setQuote(found);
          setRefusal(undefined);
        },
        (error: unknown) => {
          if (!current) return;
          setRefusal(explain(error));
        },
      );
    }, 300);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [onramp, signedIn, amount]);

  useEffect(() => {
    if (session === undefined || config === undefined || isSettled(session, config.lifecycle)) return;
    const stop = new AbortController();
    void (async () => {
      try {
        for await (const current of onramp.watchSession(session.id, { signal: stop.signal })) {
          setSession(current);
        }
        setHistory((await onramp.sessions({ limit: 10 })).items);
      } catch (error) {
        if (!stop.signal.aborted) setRefusal(explain(error));
      }
    })();
    return () => stop.abort();
  }, [onramp, session?.id, config]);

  async function connect() {
    if (window.ethereum === undefined) {
      setRefusal("No wallet found. Install a browser wallet to continue.");
      return;
    }
    const client = createWalletClient({ transport: custom(window.ethereum) });
    const [address] = await client.requestAddresses();
    setWallet(address);
  }

  async function signIn() {
    if (window.ethereum === undefined || wallet === undefined) return;
    setBusy(true);
    try {
      await onramp.signIn(await eip1193Signer(window.ethereum, wallet));
      setSignedIn(true);
      setRefusal(undefined);
      setHistory((await onramp.sessions({ limit: 10 })).items);
    } catch (error) {
      setRefusal(explain(error));
    } finally {
      setBusy(false);
    }
  }

  async function buy() {
    if (wallet === undefined) return;
    setBusy(true);
    // Opened in the click itself, so that popup blockers let it through.
    const payment = config?.stripeStandIn ? window.open("", "_blank") : null;
    try {
      const created = await onramp.createSession({ purchaseId, walletAddress: wallet, sourceAmount: amount });
      setSession(created);
      setRefusal(undefined);
      setPurchaseId(crypto.randomUUID());
      if (payment !== null && created.redirectUrl) payment.location.href = created.redirectUrl;
      else payment?.close();
    } catch (error) {
      payment?.close();
      setRefusal(explain(error));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main>
      <h1>Buy MUSD with a card</h1>
      {config?.stripeStandIn && <p>Test mode: payments go to the local Stripe stand-in.</p>}

      <section>
        {wallet === undefined ? (
          <button onClick={connect}>Connect wallet</button>
        ) : (
          <p>
            Wallet <code data-testid="wallet">{wallet}</code>
          </p>
        )}
        {wallet !== undefined && !signedIn && (
          <button onClick={signIn} disabled={busy}>
            Sign in
          </button>
        )}
        {signedIn && <p data-testid="signed-in">Signed in.</p>}
      </section>

      {signedIn && (
        <section>
          <label>
            Spend (USD){" "}
            <input
              value={amount}
              onChange={(event) => {
                setAmount(event.target.value);
                setPurchaseId(crypto.randomUUID());
              }}
              inputMode="decimal"
            />
          </label>
          {quote && (
            <p data-testid="quote">
              You receive about <strong>{quote.destinationAmount} MUSD</strong> (fees{" "}
              {quote.transactionFee} + {quote.networkFee} network)
            </p>
          )}
          <button onClick={buy} disabled={busy || quote === undefined}>
            Buy
          </button>
        </section>
      )}

      {refusal && (
        <section className="refusal" role="alert">
          {refusal}
        </section>
      )}

      {session && (
        <section data-testid="purchase">
          <p>
            Purchase <code>{session.id}</code>: <span className="status" data-testid="status">{session.status}</span>
          </p>
          <p>
            Delivery: <span className="status" data-testid="delivery">{session.delivery.status}</span>
            {session.delivery.confirmations > 0 &&
              ` (${session.delivery.confirmations} confirmation${session.delivery.confirmations === 1 ? "" : "s"})`}
          </p>
          {session.transactionHash && (
            <p>
              Transaction <code>{session.transactionHash}</code>
            </p>
          )}
          {config?.stripeStandIn && session.redirectUrl && session.status === config.lifecycle.statuses[0] && (
            <p>
              <a href={session.redirectUrl} target="_blank" rel="noreferrer">
                Open the payment page
              </a>
            </p>
          )}
          {!config?.stripeStandIn && config?.publishableKey && session.clientSecret && (
            <StripeWidget publishableKey={config.publishableKey} clientSecret={session.clientSecret} />
          )}
        </section>
      )}

      {history.length > 0 && (
        <section>
          <h2>Past purchases</h2>
          <table data-testid="history">
            <tbody>
              {history.map((past) => (
                <tr key={past.id}>
                  <td>{new Date(past.createdAt).toLocaleString()}</td>
                  <td>{past.sourceAmount} USD</td>
                  <td>{past.status}</td>
                  <td>{past.delivery.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </main>
  );
}
