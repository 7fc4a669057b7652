import { useEffect, useRef } from "react";

/** Stripe's embedded onramp, for a deployment with real Stripe keys. Loaded only when
 * shown: importing @stripe/crypto fetches Stripe's scripts from js.stripe.com. */
export function StripeWidget(props: { publishableKey: string; clientSecret: string }) {
  const mount = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let cancelled = false;
    void import("@stripe/crypto")
      .then(({ loadStripeOnramp }) => loadStripeOnramp(props.publishableKey))
      .then((onramp) => {
      if (cancelled || onramp === null || mount.current === null) return;
      onramp.createSession({ clientSecret: props.clientSecret }).mount(mount.current);
    });
    return () => {
      cancelled = true;
    };
  }, [props.publishableKey, props.clientSecret]);
  return <div ref={mount} data-testid="stripe-widget" />;
}
