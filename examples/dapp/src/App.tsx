import {
  type ClientConfig,
  type MessageSigner,
  OnrampClient,
  type Quote,
  type Session,
  type SignedIn,
  eip1193Signer,
  isSettled,
} from "@onramp/client";
import { useEffect, useMemo, useRef, useState } from "react";
import { type EIP1193Provider, createWalletClient, custom } from "viem";

import { unisatSigner } from "./bitcoin";
import { explain } from "./refusals";
import { StripeWidget, standInOnramp, stripeOnramp } from "./StripeWidget";
import { DELIVERY_WORDS, STATUS_WORDS, amount, confirmations, network, shortened, steps } from "./words";

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

/** What the payment form needs: given once, by the session's creation. */
type Payment = { clientSecret: string; redirectUrl: string | null };

export function App() {
  const onramp = useMemo(() => new OnrampClient({ baseUrl: window.location.origin, keys }), []);
  const [config, setConfig] = useState<ClientConfig>();
  const [signer, setSigner] = useState<MessageSigner>();
  const [account, setAccount] = useState<SignedIn>();
  const [amountText, setAmountText] = useState("100.00");
  const [quote, setQuote] = useState<Quote>();
  const [session, setSession] = useState<Session>();
  const [payment, setPayment] = useState<Payment>();
  const [history, setHistory] = useState<Session[]>([]);
  const [refusal, setRefusal] = useState<string>();
  const [busy, setBusy] = useState(false);
  // One purchase id per amount until it is bought: pressing Buy again after a failure
  // retries the same purchase (same Idempotency-Key), it never buys a second time.
  const [purchaseId, setPurchaseId] = useState(() => crypto.randomUUID());
  const statusHeading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    onramp.config().then(setConfig, (error: unknown) => setRefusal(explain(error)));
  }, [onramp]);

  useEffect(() => {
    if (account === undefined) return;
    let current = true; // an answer for an amount no longer shown is dropped
    setQuote(undefined);
    const timer = setTimeout(() => {
      onramp.quote({ sourceAmount: amountText }).then(
        (found) => {
          if (!current) return;
          setQuote(found);
          setRefusal(undefined);
        },
        (error: unknown) => {
          if (current) setRefusal(explain(error));
        },
      );
    }, 300);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [onramp, account, amountText]);

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

  const lifecycle = config?.lifecycle;
  // The statuses before Stripe's processing (the one before the end of the path): unpaid.
  const path: string[] = lifecycle?.statuses.filter((status) => !lifecycle.settledStatuses.includes(status)) ?? [];
  const unpaid = lifecycle ? path.slice(0, path.indexOf(lifecycle.fulfilledStatus) - 1) : [];
  const paying = session !== undefined && unpaid.includes(session.status);

  const showPayment = paying && payment !== undefined && Boolean(config?.publishableKey);

  // The buyer's attention goes where the news is: to the purchase once it exists, and
  // back to it once the payment form (an iframe that may hold the focus) is gone.
  useEffect(() => {
    statusHeading.current?.focus();
  }, [session?.id, showPayment]);

  const load = useMemo(
    () => (config?.stripeStandIn && payment?.redirectUrl ? standInOnramp(payment.redirectUrl) : stripeOnramp),
    [config?.stripeStandIn, payment?.redirectUrl],
  );

  async function connect(wallet: () => Promise<MessageSigner>) {
    try {
      setSigner(await wallet());
      setRefusal(undefined);
    } catch (error) {
      setRefusal(explain(error));
    }
  }

  function connectEthereum() {
    const provider = window.ethereum;
    if (provider === undefined) {
      setRefusal("No Ethereum wallet found. Install a browser wallet such as MetaMask or Rabby to continue.");
      return;
    }
    void connect(async () => {
      const [address] = await createWalletClient({ transport: custom(provider) }).requestAddresses();
      return eip1193Signer(provider, address);
    });
  }

  function connectBitcoin() {
    const provider = window.unisat;
    if (provider === undefined) {
      setRefusal("No Bitcoin wallet found. Install Unisat (or OKX Wallet) to continue.");
      return;
    }
    void connect(() => unisatSigner(provider));
  }

  async function signIn() {
    if (signer === undefined) return;
    setBusy(true);
    try {
      setAccount(await onramp.signIn(signer));
      setRefusal(undefined);
      setHistory((await onramp.sessions({ limit: 10 })).items);
    } catch (error) {
      setRefusal(explain(error));
    } finally {
      setBusy(false);
    }
  }

  async function buy() {
    if (account === undefined) return;
    setBusy(true);
    try {
      const created = await onramp.createSession({
        purchaseId,
        walletAddress: account.walletAddress,
        sourceAmount: amountText,
      });
      setSession(created);
      setPayment(created.clientSecret ? { clientSecret: created.clientSecret, redirectUrl: created.redirectUrl ?? null } : undefined);
      setRefusal(undefined);
      setPurchaseId(crypto.randomUUID());
    } catch (error) {
      setRefusal(explain(error));
    } finally {
      setBusy(false);
    }
  }

  const destination = config?.destinations.find(
    (d) => session !== undefined && d.network === session.destinationNetwork && d.currency === session.destinationCurrency,
  );
  const currency = (config?.sourceCurrency ?? "usd").toUpperCase();

  return (
    <main>
      <h1>Buy MUSD with a card</h1>
      {config?.stripeStandIn && <p className="notice">Test mode: payments go to the local Stripe stand-in. No real money moves.</p>}

      <section aria-labelledby="wallet-heading">
        <h2 id="wallet-heading">Your wallet</h2>
        {signer === undefined ? (
          <div className="choices">
            <button onClick={connectEthereum}>Ethereum wallet</button>
            <button onClick={connectBitcoin}>Bitcoin wallet</button>
          </div>
        ) : (
          <p>
            Connected: <code data-testid="wallet" title={signer.address}>{shortened(signer.address)}</code>
          </p>
        )}
        {signer !== undefined && account === undefined && (
          <button onClick={signIn} disabled={busy}>
            Sign in
          </button>
        )}
        {account !== undefined && (
          <p data-testid="signed-in">
            Signed in. Your tokens go to{" "}
            <code data-testid="account" title={account.walletAddress}>
              {shortened(account.walletAddress)}
            </code>
            {account.bitcoinAddress ? ", the Mezo account of your Bitcoin wallet." : "."}
          </p>
        )}
      </section>

      {account !== undefined && (
        <section aria-labelledby="amount-heading">
          <h2 id="amount-heading">Amount</h2>
          <label>
            Spend ({currency}){" "}
            <input
              value={amountText}
              onChange={(event) => {
                setAmountText(event.target.value);
                setPurchaseId(crypto.randomUUID());
              }}
              inputMode="decimal"
              aria-describedby={quote ? "quote" : undefined}
            />
          </label>
          {quote && (
            <p id="quote" data-testid="quote">
              You receive about <strong>{amount(quote.destinationAmount, quote.destinationCurrency)}</strong> (fees{" "}
              {amount(quote.transactionFee, quote.sourceCurrency)} + {amount(quote.networkFee, quote.sourceCurrency)} network)
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

      {session !== undefined && lifecycle !== undefined && (
        <section aria-labelledby="purchase-heading" data-testid="purchase">
          <h2 id="purchase-heading" tabIndex={-1} ref={statusHeading}>
            Your purchase
          </h2>
          <div role="status" aria-live="polite" aria-atomic="true">
            <p className="status" data-testid="status">
              {STATUS_WORDS[session.status]}
            </p>
            {session.status === lifecycle.fulfilledStatus && (
              <p data-testid="delivery">
                {DELIVERY_WORDS[session.delivery.status]}
                {destination !== undefined &&
                  (session.delivery.status === "pending" || session.delivery.status === "confirmed") &&
                  ` (${confirmations(session.delivery.confirmations, destination.confirmations)})`}
              </p>
            )}
          </div>
          <ol className="steps" aria-label="Progress">
            {steps(session, lifecycle).map((step) => (
              <li key={step.name} data-state={step.state} aria-current={step.state === "current" ? "step" : undefined}>
                {step.name}
                <span className="visually-hidden">
                  {step.state === "done" ? " (done)" : step.state === "current" ? " (in progress)" : ""}
                </span>
              </li>
            ))}
          </ol>
          <p data-testid="amounts">
            You pay {amount(session.sourceAmount, session.sourceCurrency)} and receive{" "}
            {amount(session.destinationAmount ?? quote?.destinationAmount, session.destinationCurrency)} on{" "}
            {network(session.destinationNetwork)}.
          </p>
          {session.transactionHash && (
            <p>
              Transaction{" "}
              {destination?.explorerUrl ? (
                <a
                  data-testid="transaction"
                  href={`${destination.explorerUrl}/tx/${session.transactionHash}`}
                  target="_blank"
                  rel="noreferrer"
                  title={session.transactionHash}
                >
                  {shortened(session.transactionHash)}
                  <span className="visually-hidden"> on the block explorer</span>
                </a>
              ) : (
                <code data-testid="transaction" title={session.transactionHash}>
                  {shortened(session.transactionHash)}
                </code>
              )}
            </p>
          )}
          {showPayment && payment !== undefined && config?.publishableKey && (
            <StripeWidget
              load={load}
              publishableKey={config.publishableKey}
              clientSecret={payment.clientSecret}
              onUpdate={(updated) => {
                // The payment form knows first: once it is past payment, it has done its part.
                if (!unpaid.includes(updated.status)) setPayment(undefined);
              }}
              onFailure={(error) => setRefusal(explain(error))}
            />
          )}
        </section>
      )}

      {history.length > 0 && (
        <section aria-labelledby="history-heading">
          <h2 id="history-heading">Past purchases</h2>
          <table data-testid="history">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Paid</th>
                <th scope="col">Received</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {history.map((past) => (
                <tr key={past.id}>
                  <td>{new Date(past.createdAt).toLocaleString()}</td>
                  <td>{amount(past.sourceAmount, past.sourceCurrency)}</td>
                  <td>{amount(past.destinationAmount, past.destinationCurrency)}</td>
                  <td>
                    {past.status === lifecycle?.fulfilledStatus
                      ? DELIVERY_WORDS[past.delivery.status]
                      : STATUS_WORDS[past.status]}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </main>
  );
}
