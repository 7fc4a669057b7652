import { OnrampProblem } from "@onramp/client";

/** What to tell a buyer for each refusal the service can give. */
export function explain(error: unknown): string {
  if (!(error instanceof OnrampProblem)) {
    return error instanceof Error ? error.message : "Something went wrong.";
  }
  if (error.stripeCode === "crypto_onramp_unsupportable_customer") {
    return "Card purchases are not available where you are.";
  }
  if (error.code === "stripe_unavailable" || error.code === "stripe_not_configured") {
    return "Payments are unavailable right now. Try again in a minute.";
  }
  if (error.code === "rate_limited") {
    return `Too many attempts. Try again in ${error.retryAfter ?? 60} s.`;
  }
  if (error.code.startsWith("signature_") || error.code.startsWith("nonce_") || error.status === 401) {
    return "Your wallet's signature was not accepted. Sign in again.";
  }
  if (error.code === "amount_out_of_range" || error.code === "invalid_amount") {
    return error.errors?.[0]?.message ? `Amount ${error.errors[0].message}.` : "Check the amount.";
  }
  return error.detail ?? error.message;
}
