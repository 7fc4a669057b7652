// Builds and signs a Sign-In with Ethereum message the way dApps do, with the npm
// libraries they use, for the nonce the service issued. Prints {message, signature}.
//   node sign_in.mjs viem|siwe-ethers '{"privateKey", "domain", "uri", "chainId", "nonce", ...}'
import { createSiweMessage } from 'viem/siwe'
import { privateKeyToAccount } from 'viem/accounts'
import { SiweMessage } from 'siwe'
import { Wallet } from 'ethers'

const [library, json] = process.argv.slice(2)
const p = JSON.parse(json)
const fields = {
  domain: p.domain,
  uri: p.uri,
  chainId: p.chainId,
  nonce: p.nonce,
  version: '1',
  statement: p.statement,
  requestId: p.requestId,
  resources: p.resources,
  issuedAt: new Date(p.issuedAt),
  notBefore: p.notBefore ? new Date(p.notBefore) : undefined,
  expirationTime: p.expirationTime ? new Date(p.expirationTime) : undefined
}

async function withViem () {
  const account = privateKeyToAccount(p.privateKey)
  const message = createSiweMessage({ ...fields, address: account.address })
  return { message, signature: await account.signMessage({ message }) }
}

async function withSiweAndEthers () {
  const wallet = new Wallet(p.privateKey)
  const message = new SiweMessage({
    ...fields,
    address: wallet.address,
    issuedAt: fields.issuedAt.toISOString(),
    notBefore: fields.notBefore?.toISOString(),
    expirationTime: fields.expirationTime?.toISOString()
  }).prepareMessage()
  return { message, signature: await wallet.signMessage(message) }
}

const signed = library === 'viem' ? await withViem() : await withSiweAndEthers()
process.stdout.write(JSON.stringify(signed))
