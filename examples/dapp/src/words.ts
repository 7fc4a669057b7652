import type { ClientConfig, Session } from "@onramp/client";

/** What a buyer reads for each status of a purchase. Keyed by the statuses of the
 * service's OpenAPI document (`schema.d.ts`): a status added to the lifecycle and
 * generated into the client fails `tsc` here until it has its words. */
export const STATUS_WORDS: Record<Session["status"], string> = {
  initialized: "Waiting for you to pay",
  requires_payment: "Waiting for your payment",
  fulfillment_processing: "Payment received, sending your tokens",
  fulfillment_complete: "Tokens sent",
  rejected: "Refused by the payment provider; you were not charged",
};

/** What a buyer reads for each state of the delivery on chain (same rule as above). */
export const DELIVERY_WORDS: Record<Session["delivery"]["status"], string> = {
  not_started: "Not sent yet",
  pending: "Waiting for the network to confirm",
  confirmed: "Confirmed on chain",
  mismatch: "The transaction on chain does not match this purchase; contact support",
  failed: "Could not be checked on chain; contact support",
};

export type Step = { name: string; state: "done" | "current" | "todo" };

/** Paid → processing → sent → confirmed on chain, read from the lifecycle the service
 * serves: the status before the end of its path is Stripe's processing (paid), its end
 * is the tokens sent, then the chain's verdict. The first step not done is current,
 * unless the purchase was refused. */
export function steps(session: Session, lifecycle: ClientConfig["lifecycle"]): Step[] {
  const path = lifecycle.statuses.filter((status) => !lifecycle.settledStatuses.includes(status));
  const at = path.indexOf(session.status);
  const sent = path.indexOf(lifecycle.fulfilledStatus);
  const done = [at >= sent - 1, at >= sent, at >= sent, session.delivery.status === "confirmed"];
  const current = at < 0 ? -1 : done.indexOf(false);
  return ["Paid", "Processing", "Sent", "Confirmed on chain"].map((name, index) => ({
    name,
    state: done[index] ? "done" : index === current ? "current" : "todo",
  }));
}

/** "0x1234…abcd": enough to recognise, short enough to read. */
export function shortened(text: string): string {
  return text.length > 12 ? `${text.slice(0, 6)}…${text.slice(-4)}` : text;
}

/** "2 of 3 confirmations". */
export function confirmations(have: number, need: number): string {
  return `${Math.min(have, need)} of ${need} confirmation${need === 1 ? "" : "s"}`;
}

/** "100.00 USD", "98.49 MUSD". */
export function amount(value: string | null | undefined, currency: string): string {
  return `${value ?? "…"} ${currency.toUpperCase()}`;
}

/** "mezo" → "Mezo": a network as a buyer names it. */
export function network(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
