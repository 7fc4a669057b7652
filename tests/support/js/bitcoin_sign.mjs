// Sign a sign-in message as a Bitcoin wallet does (BIP-137, with `bitcoinjs-message`),
// and check it with Mezo's own verifier (`@mezo-org/sign-in-with-wallet`), which parses
// the message, recovers the key and rebuilds the address of the signature's kind.
// Usage: node bitcoin_sign.mjs '{"privateKey", "message", "kind", "encoding"}'
// Prints {"signature", "mezoAccepts", "mezoError"}.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const bitcoinMessage = require('bitcoinjs-message')
const { SignInWithWalletMessage } = require('@mezo-org/sign-in-with-wallet')

const SEGWIT_TYPES = { p2pkh: undefined, 'p2sh-p2wpkh': 'p2sh(p2wpkh)', p2wpkh: 'p2wpkh' }

const input = JSON.parse(process.argv[2])
const key = Buffer.from(input.privateKey.replace(/^0x/, ''), 'hex')
const raw = bitcoinMessage.sign(input.message, key, true, { segwitType: SEGWIT_TYPES[input.kind] })

let mezoAccepts = false
let mezoError = null
try {
  const parsed = new SignInWithWalletMessage(input.message)
  const result = await parsed.verify({ signature: '0x' + raw.toString('hex') }, { suppressExceptions: true })
  mezoAccepts = result.success
  mezoError = result.error ? String(result.error.type || result.error) : null
} catch (error) {
  mezoError = String(error)
}

const signature = input.encoding === 'hex' ? '0x' + raw.toString('hex') : raw.toString('base64')
console.log(JSON.stringify({ signature, mezoAccepts, mezoError }))
