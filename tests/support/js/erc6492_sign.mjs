// Sign a message for a smart wallet that may not be deployed yet, as viem does it: the
// owner's signature wrapped by ERC-6492 with the factory call that deploys the wallet.
// viem's own `verifyMessage` checks it against the chain too.
// Usage: node erc6492_sign.mjs '{"privateKey", "message", "factory", "salt", "wallet", "rpcUrl", "chainId"}'
// Prints {"signature", "viemAccepts"}.
import { createPublicClient, defineChain, encodeFunctionData, http, parseAbi } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { serializeErc6492Signature } from 'viem/utils'

const input = JSON.parse(process.argv[2])
const owner = privateKeyToAccount(input.privateKey)
const chain = defineChain({
  id: input.chainId,
  name: 'local',
  nativeCurrency: { name: 'Bitcoin', symbol: 'BTC', decimals: 18 },
  rpcUrls: { default: { http: [input.rpcUrl] } }
})
const client = createPublicClient({ chain, transport: http(input.rpcUrl) })

const inner = await owner.signMessage({ message: input.message })
const signature = serializeErc6492Signature({
  address: input.factory,
  data: encodeFunctionData({
    abi: parseAbi(['function deploy(address owner, bytes32 salt) returns (address)']),
    functionName: 'deploy',
    args: [owner.address, input.salt]
  }),
  signature: inner
})
const viemAccepts = await client.verifyMessage({ address: input.wallet, message: input.message, signature })
console.log(JSON.stringify({ signature, viemAccepts }))
