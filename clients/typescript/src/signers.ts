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
 * messages; the token is then bound to the user's Mezo account. `signMessage` returns the
 * wallet's signature, base64 (as wallets give it) or 0x-hex.
 *
 * A BIP-137 header names the kind of address that signed (27 + recovery id, + 4 for a
 * compressed P2PKH key, + 8 for P2SH-P2WPKH, + 12 for P2WPKH). Some wallets (Unisat's
 * `signMessage(message)`, "ecdsa") give the compressed-P2PKH header whatever the address;
 * the service, like Mezo's own verifier, rebuilds the address of the header's kind, so
 * the header is set here for `address`'s kind, as Passport does. */
export function bitcoinSigner(
  address: string,
  signMessage: (message: string) => Promise<string>,
): MessageSigner {
  const headerBase = bip137HeaderBase(address);
  return {
    address,
    async signMessage(message: string): Promise<string> {
      const signature = await signMessage(message);
      return headerBase === undefined ? signature : withHeaderBase(signature, headerBase);
    },
  };
}

/** The first BIP-137 header of a compressed key's signature for this kind of address. */
function bip137HeaderBase(address: string): number | undefined {
  if (/^(bc1q|tb1q)/i.test(address)) return 39; // P2WPKH
  if (/^[23]/.test(address)) return 35; // P2SH-P2WPKH
  if (/^[1mn]/.test(address)) return 31; // P2PKH
  return undefined; // a kind the service refuses anyway, with its own answer
}

function withHeaderBase(signature: string, base: number): string {
  const bytes = signature.startsWith("0x")
    ? Uint8Array.from(signature.slice(2).match(/../g) ?? [], (pair) => parseInt(pair, 16))
    : Uint8Array.from(atob(signature), (char) => char.charCodeAt(0));
  const header = bytes[0];
  // Only a compressed key's signature (31 to 42) can be any of the three kinds.
  if (bytes.length !== 65 || header === undefined || header < 31 || header > 42) return signature;
  bytes[0] = base + ((header - 27) % 4);
  return btoa(String.fromCharCode(...bytes));
}
