import { OnrampProblem } from "@onramp/client";

/** What to tell a buyer for each refusal the service or a wallet can give. */
export function explain(error: unknown): string {
  if (!(error instanceof OnrampProblem)) return walletRefusal(error);
  if (error.stripeCode === "crypto_onramp_unsupportable_customer") {
    return "Card purchases are not available where you are.";
  }
  if (error.code === "stripe_unavailable" || error.code === "stripe_not_configured") {
    return "Payments are unavailable right now. Try again in a minute.";
  }
  if (error.code === "rate_limited" || error.code === "too_many_streams") {
    return `Too many attempts. Try again in ${error.retryAfter ?? 60} s.`;
  }
  if (error.code === "unsupported_address_type") {
    return "This kind of Bitcoin address cannot sign in. Use a Native SegWit (bc1q…), Nested SegWit (3…) or Legacy (1…) address; Taproot (bc1p…) is not supported.";
  }
  if (error.code === "chain_id_mismatch") {
    return "Your wallet is on another network than this shop. Switch networks (Bitcoin testnet or mainnet, as the shop uses) and sign in again.";
  }
  if (error.code === "chain_unavailable") {
    return "The network cannot be reached to check your wallet right now. Try again in a minute.";
  }
  if (error.code.startsWith("signature_") || error.code.startsWith("nonce_") || error.status === 401) {
    return "Your wallet's signature was not accepted. Sign in again.";
  }
  if (error.code === "amount_out_of_range" || error.code === "invalid_amount") {
    return error.errors?.[0]?.message ? `Amount ${error.errors[0].message}.` : "Check the amount.";
  }
  if (error.code === "unsupported_destination") {
    return "This token cannot be bought here right now.";
  }
  return error.detail ?? error.message;
}

/** A wallet's own refusal: EIP-1193's 4001 (and Unisat's, the same code) is the buyer's
 * "no", not a failure. */
function walletRefusal(error: unknown): string {
  const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
  if (code === 4001) return "You declined the request in your wallet. Nothing was signed.";
  return error instanceof Error ? error.message : "Something went wrong. Try again.";
}
