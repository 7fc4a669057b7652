import type { OnrampSessionResult, StripeOnramp } from "@stripe/crypto";
import { useEffect, useRef, useState } from "react";

export type LoadOnramp = (publishableKey: string) => Promise<StripeOnramp | null>;

/** Stripe's own embedded onramp. Imported only when shown: @stripe/crypto fetches
 * Stripe's scripts from js.stripe.com and crypto-js.stripe.com. */
export const stripeOnramp: LoadOnramp = async (publishableKey) =>
  (await import("@stripe/crypto")).loadStripeOnramp(publishableKey);

/** The Stripe stand-in's embedded onramp, with @stripe/crypto's shape, from the origin
 * that serves the session's payment page (service/stripe_sim/widget.py's SCRIPT_PATH). */
export function standInOnramp(paymentPage: string): LoadOnramp {
  return async (publishableKey) => {
    const script = new URL("/crypto-js/onramp.js", paymentPage).href;
    const module = (await import(/* @vite-ignore */ script)) as { loadStripeOnramp: LoadOnramp };
    return module.loadStripeOnramp(publishableKey);
  };
}

/** The payment form, mounted by whichever onramp `load` gives. `onUpdate` hears the
 * session's status as the payment form sees it. */
export function StripeWidget(props: {
  load: LoadOnramp;
  publishableKey: string;
  clientSecret: string;
  onUpdate: (session: OnrampSessionResult) => void;
  onFailure: (error: unknown) => void;
}) {
  const mount = useRef<HTMLDivElement>(null);
  const [loaded, setLoaded] = useState(false);
  const { load, publishableKey, clientSecret, onUpdate, onFailure } = props;
  const listeners = useRef({ onUpdate, onFailure });
  listeners.current = { onUpdate, onFailure };

  useEffect(() => {
    let cancelled = false;
    load(publishableKey).then(
      (onramp) => {
        if (cancelled || onramp === null || mount.current === null) return;
        onramp
          .createSession({ clientSecret, appearance: { theme: "light" } })
          .addEventListener("onramp_ui_loaded", () => setLoaded(true))
          .addEventListener("onramp_session_updated", (event) => listeners.current.onUpdate(event.payload.session))
          .mount(mount.current);
      },
      (error: unknown) => {
        if (!cancelled) listeners.current.onFailure(error);
      },
    );
    return () => {
      cancelled = true; // Stripe's session has no unmount: React removes its element.
    };
  }, [load, publishableKey, clientSecret]);

  return (
    <div className="payment" data-testid="stripe-widget">
      {!loaded && <p>Loading the payment form…</p>}
      <div ref={mount} />
    </div>
  );
}
