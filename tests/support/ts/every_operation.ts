// A typed call of every operation the service documents, through openapi-fetch and the
// types openapi-typescript generated from the served document (./api.d.ts). It is
// compiled with `tsc --strict`, not run: it fails when the document and the calls a
// dApp makes disagree.
import createClient from 'openapi-fetch'
import type { components, paths } from './api'

type Session = components['schemas']['SessionPublic']
type SessionStatus = Session['status']
type DeliveryStatus = Session['delivery']['status']

const client = createClient<paths>({ baseUrl: 'http://localhost:8000' })
const wallet = '0x52908400098527886E0F7030069857D2E4169EE7'

export const statuses: SessionStatus[] = [
  'initialized',
  'requires_payment',
  'fulfillment_processing',
  'fulfillment_complete',
  'rejected'
]
export const deliveries: DeliveryStatus[] = ['not_started', 'pending', 'confirmed', 'mismatch', 'failed']

export async function everyOperation (token: string, operatorKey: string): Promise<string[]> {
  const bearer = { Authorization: `Bearer ${token}` }
  await client.GET('/health')
  await client.GET('/ready')
  await client.GET('/metrics')
  const nonce = await client.POST('/api/v1/auth/nonce', { body: { walletAddress: wallet } })
  const message: string = nonce.data?.message ?? ''
  const signedIn = await client.POST('/api/v1/auth/verify', { body: { message, signature: '0x00' } })
  const expiresAt: string | undefined = signedIn.data?.expiresAt
  await client.GET('/api/v1/auth/me', { headers: bearer })
  const created = await client.POST('/api/v1/onramp/sessions', {
    body: { walletAddress: wallet, sourceAmount: '100.00', destinationNetwork: 'mezo' },
    params: { header: { 'Idempotency-Key': 'purchase-1' } },
    headers: bearer
  })
  const status: SessionStatus | undefined = created.data?.status
  const delivery: DeliveryStatus | undefined = created.data?.delivery.status
  const page = await client.GET('/api/v1/onramp/sessions', {
    params: { query: { limit: 20, status: 'fulfillment_complete' } },
    headers: bearer
  })
  const next: string | null | undefined = page.data?.nextCursor
  await client.GET('/api/v1/onramp/sessions/{session_id}', {
    params: { path: { session_id: created.data?.id ?? '' } },
    headers: bearer
  })
  const operator = { 'X-API-Key': operatorKey }
  await client.GET('/api/v1/admin/sessions', { params: { query: { wallet } }, headers: operator })
  await client.POST('/api/v1/admin/sessions/{session_id}/sync', {
    params: { path: { session_id: 'ors_01J0000000000000000000000' } },
    headers: operator
  })
  const trail = await client.GET('/api/v1/admin/audit', {
    params: { query: { since: '2026-12-01T00:00:00Z', limit: 50 } },
    headers: operator
  })
  const outcome: string | undefined = trail.data?.items[0]?.outcome
  await client.POST('/api/v1/webhooks/stripe', {
    params: { header: { 'Stripe-Signature': 't=1,v1=00' } },
    body: { id: 'evt_1', type: 'crypto.onramp_session_updated', created: 1 }
  })
  await client.POST('/api/v1/onramp/sessions', {
    // @ts-expect-error sourceAmount is a decimal string, never a number
    body: { walletAddress: wallet, sourceAmount: 25 },
    headers: bearer
  })
  // @ts-expect-error a status the service never reports
  const unknown: SessionStatus = 'completed'
  return [message, expiresAt ?? '', status ?? '', delivery ?? '', next ?? '', outcome ?? '', unknown]
}
