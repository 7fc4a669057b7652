/** Whatever can sign the service's sign-in message for one address: an EOA or a smart
 * account through any EIP-1193 provider, or a Bitcoin wallet through Mezo Passport. */
export interface MessageSigner {
  address: string;
  signMessage(message: string): Promise<string>;
}

/** The EIP-1193 surface the client uses (window.ethereum, viem, wagmi connectors, …). */
export interface Eip1193Provider {
  // `any`: libraries type `request` as a generic over their own method tables (viem's
  // EIP1193Provider, ethers'), which no narrower parameter type accepts.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  request(args: { method: string; params?: any }): Promise<any>;
}

/** A signer over an EIP-1193 provider: `personal_sign` (EIP-191); smart accounts answer
 * with EIP-1271 or ERC-6492 signatures, which the service verifies on chain. */
export async function eip1193Signer(provider: Eip1193Provider, address?: string): Promise<MessageSigner> {
  let account = address;
  if (account === undefined) {
    const accounts = (await provider.request({ method: "eth_requestAccounts" })) as string[];
    account = accounts[0];
    if (account === undefined) throw new Error("the wallet shared no account");
  }
  const signer = account;
  return {
    address: signer,
    async signMessage(message: string): Promise<string> {
      const hex = `0x${Array.from(new TextEncoder().encode(message), (b) => b.toString(16).padStart(2, "0")).join("")}`;
      return (await provider.request({ method: "personal_sign", params: [hex, signer] })) as string;
    },
  };
}

/** A Bitcoin wallet (Unisat, OKX, Xverse through Mezo Passport) that signs BIP-137
 * messages; the token is then bound to the user's Mezo account. */
export function bitcoinSigner(
  address: string,
  signMessage: (message: string) => Promise<string>,
): MessageSigner {
  return { address, signMessage };
}
