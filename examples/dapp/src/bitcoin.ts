import { type MessageSigner, bitcoinSigner } from "@onramp/client";

/** The provider Unisat injects (`window.unisat`; OKX's and OneKey's Bitcoin providers
 * answer the same two calls). */
export interface UnisatProvider {
  requestAccounts(): Promise<string[]>;
  /** "ecdsa" (the default) is a BIP-137 signature in base64; "bip322-simple" a BIP-322
   * witness, which Mezo's sign-in does not read. */
  signMessage(message: string, type?: "ecdsa" | "bip322-simple"): Promise<string>;
}

declare global {
  interface Window {
    unisat?: UnisatProvider;
  }
}

/** The wallet's first address, signing the service's message as Mezo Passport does. */
export async function unisatSigner(unisat: UnisatProvider): Promise<MessageSigner> {
  const [address] = await unisat.requestAccounts();
  if (address === undefined) throw new Error("The Bitcoin wallet shared no address.");
  return bitcoinSigner(address, (message) => unisat.signMessage(message, "ecdsa"));
}
