/**
 * The onramp service from a dApp: sign in with any wallet, read the configuration and a
 * quote, buy (one Idempotency-Key per purchase, kept across retries), and follow the
 * session live until its tokens are delivered. Types come from the service's OpenAPI
 * document (`npm run generate`); this file adds what generation cannot.
 */
import createClient, { type Client } from "openapi-fetch";

import { parseEvents } from "./events.js";
import { OnrampProblem, problemOf } from "./problems.js";
import type { MessageSigner } from "./signers.js";
import type { components, paths } from "./schema.js";

export { OnrampProblem } from "./problems.js";
export { bitcoinSigner, eip1193Signer, type Eip1193Provider, type MessageSigner } from "./signers.js";

export type Session = components["schemas"]["SessionPublic"];
export type SessionPage = components["schemas"]["SessionPage"];
export type Quote = components["schemas"]["Quote"];
export type ClientConfig = components["schemas"]["ClientConfig"];
export type SignedIn = components["schemas"]["TokenIssued"];
export type StreamTicket = components["schemas"]["TicketIssued"];
export type QuoteRequest = NonNullable<paths["/api/v1/onramp/quotes"]["get"]["parameters"]["query"]>;

/** Where each purchase's Idempotency-Key is kept; give a persistent one (localStorage)
 * so that a retry after a page reload still cannot buy twice. */
export interface KeyStore {
  get(purchaseId: string): string | null | undefined;
  set(purchaseId: string, key: string): void;
}

/** One purchase: what to spend (`sourceAmount`) or what to receive (`destinationAmount`). */
export type Purchase = {
  /** Names one purchase (one press of "Buy"): every attempt at it sends the same key. */
  purchaseId: string;
  walletAddress: string;
  sourceCurrency?: string;
  destinationNetwork?: string;
  destinationCurrency?: string;
} & ({ sourceAmount: string; destinationAmount?: never } | { destinationAmount: string; sourceAmount?: never });

export interface OnrampClientOptions {
  baseUrl: string;
  token?: string;
  keys?: KeyStore;
  fetch?: typeof fetch;
  /** Attempts at a create call that fails in a way a retry can fix (default 4). */
  attempts?: number;
  /** The first pause between attempts and reconnects, doubled each time (default 500 ms). */
  retryDelayMs?: number;
}

/** The session lifecycle as the service declares it (`GET /api/v1/config`). */
export type Lifecycle = ClientConfig["lifecycle"];

/** Nothing more will change, by the lifecycle the service serves: refused, or the
 * chain gave its verdict on the delivery. */
export function isSettled(session: Session, lifecycle: Lifecycle): boolean {
  return (
    lifecycle.settledStatuses.includes(session.status) ||
    (session.status === lifecycle.fulfilledStatus &&
      lifecycle.settledDeliveryStatuses.includes(session.delivery.status))
  );
}

export class OnrampClient {
  readonly api: Client<paths>;
  token: string | undefined;
  private readonly baseUrl: string;
  private readonly keys: KeyStore;
  private readonly fetcher: typeof fetch;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private lifecycleRead: Promise<Lifecycle> | undefined;

  constructor(options: OnrampClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/$/, "");
    this.token = options.token;
    this.keys = options.keys ?? new Map<string, string>();
    this.fetcher = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.attempts = options.attempts ?? 4;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.api = createClient<paths>({ baseUrl: this.baseUrl, fetch: this.fetcher });
  }

  async config(): Promise<ClientConfig> {
    const { data, error, response } = await this.api.GET("/api/v1/config");
    if (data === undefined) throw await problemOf(response, error);
    return data;
  }

  /** The service's lifecycle, read once (again after a failed read). */
  lifecycle(signal?: AbortSignal): Promise<Lifecycle> {
    this.lifecycleRead ??= this.api.GET("/api/v1/config", { signal }).then(
      async ({ data, error, response }) => {
        if (data === undefined) throw await problemOf(response, error);
        return data.lifecycle;
      },
    );
    this.lifecycleRead.catch(() => {
      this.lifecycleRead = undefined;
    });
    return this.lifecycleRead;
  }

  /** Ask for the service's message, have the wallet sign it, and keep the token. */
  async signIn(signer: MessageSigner): Promise<SignedIn> {
    const issued = await this.api.POST("/api/v1/auth/nonce", {
      body: { walletAddress: signer.address },
    });
    if (issued.data === undefined) throw await problemOf(issued.response, issued.error);
    const signature = await signer.signMessage(issued.data.message);
    const verified = await this.api.POST("/api/v1/auth/verify", {
      body: { message: issued.data.message, signature },
    });
    if (verified.data === undefined) throw await problemOf(verified.response, verified.error);
    this.token = verified.data.token;
    return verified.data;
  }

  async quote(request: QuoteRequest): Promise<Quote> {
    const { data, error, response } = await this.api.GET("/api/v1/onramp/quotes", {
      params: { query: request },
      headers: this.bearer(),
    });
    if (data === undefined) throw await problemOf(response, error);
    return data;
  }

  /** Create the purchase's session, retrying what a retry can fix with the same key:
   * however many attempts reach the service, at most one session is bought. */
  async createSession(purchase: Purchase): Promise<Session> {
    const { purchaseId, ...body } = purchase;
    const authorization = this.bearer(); // not signed in: nothing to retry
    let key = this.keys.get(purchaseId);
    if (!key) {
      key = crypto.randomUUID();
      this.keys.set(purchaseId, key);
    }
    for (let attempt = 1; ; attempt++) {
      let problem: OnrampProblem | Error;
      try {
        const { data, error, response } = await this.api.POST("/api/v1/onramp/sessions", {
          body,
          headers: { ...authorization, "Idempotency-Key": key },
        });
        if (data !== undefined) return data;
        problem = await problemOf(response, error);
        if (!(problem as OnrampProblem).retryable) throw problem;
      } catch (error) {
        if (error instanceof OnrampProblem && !error.retryable) throw error;
        problem = error as Error;
      }
      if (attempt >= this.attempts) throw problem;
      const hinted = problem instanceof OnrampProblem ? problem.retryAfter : undefined;
      await pause(hinted !== undefined ? hinted * 1000 : this.retryDelayMs * 2 ** (attempt - 1));
    }
  }

  async session(id: string): Promise<Session> {
    const { data, error, response } = await this.api.GET("/api/v1/onramp/sessions/{session_id}", {
      params: { path: { session_id: id } },
      headers: this.bearer(),
    });
    if (data === undefined) throw await problemOf(response, error);
    return data;
  }

  /** A single-use ticket (60 s) that opens this session's event stream without an
   * Authorization header, which a browser's native `EventSource` cannot send. */
  async streamTicket(id: string): Promise<StreamTicket> {
    const { data, error, response } = await this.api.POST("/api/v1/onramp/sessions/{session_id}/events/ticket", {
      params: { path: { session_id: id } },
      headers: this.bearer(),
    });
    if (data === undefined) throw await problemOf(response, error);
    return data;
  }

  /** The URL of this session's event stream for a native `EventSource`, with a fresh
   * ticket: `new EventSource(await client.eventSourceUrl(id))`. A ticket opens one stream
   * and is spent: when the session is settled the stream ends, the `EventSource`'s
   * reconnect with the same ticket is answered 401 and it closes (close it on the settled
   * session to skip that request). After any other end (the connection lost,
   * `LIVE_MAX_STREAM_SECONDS` reached) it closes the same way: open a new one with a new
   * URL, which starts with the current state (204 if the session is settled by then). */
  async eventSourceUrl(id: string): Promise<string> {
    const { ticket } = await this.streamTicket(id);
    const url = new URL(`${this.baseUrl}/api/v1/onramp/sessions/${encodeURIComponent(id)}/events`);
    url.searchParams.set("ticket", ticket);
    return url.toString();
  }

  async sessions(query: { status?: string; cursor?: string; limit?: number } = {}): Promise<SessionPage> {
    const { data, error, response } = await this.api.GET("/api/v1/onramp/sessions", {
      params: { query },
      headers: this.bearer(),
    });
    if (data === undefined) throw await problemOf(response, error);
    return data;
  }

  /** The session now and at every change of its status or delivery, until it is
   * settled; a dropped or timed-out connection is opened again from the last event
   * received. A session already settled is read once (its stream answers 204). */
  async *watchSession(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Session> {
    let lifecycle: Lifecycle | undefined;
    let lastEventId: string | undefined;
    let latest: Session | undefined;
    for (let failures = 0; ; ) {
      const headers: Record<string, string> = { ...this.bearer(), Accept: "text/event-stream" };
      if (lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
      let response: Response | undefined;
      try {
        // Read with the stream, so that its failures are retried like the stream's.
        lifecycle ??= await this.lifecycle(options.signal);
        response = await this.fetcher(
          `${this.baseUrl}/api/v1/onramp/sessions/${encodeURIComponent(id)}/events`,
          { headers, signal: options.signal },
        );
      } catch (error) {
        if (options.signal?.aborted) return;
        if (++failures >= this.attempts) throw error;
      }
      if (response !== undefined) {
        if (response.status === 204) {
          // Settled before this stream opened: there is nothing to stream, only to read.
          yield await this.session(id);
          return;
        }
        if (!response.ok) {
          const problem = await problemOf(response);
          if (!problem.retryable || ++failures >= this.attempts) throw problem;
        } else if (response.body !== null) {
          try {
            for await (const event of parseEvents(response.body)) {
              if (event.event !== "session") continue;
              lastEventId = event.id ?? lastEventId;
              latest = JSON.parse(event.data) as Session;
              failures = 0;
              yield latest;
            }
          } catch (error) {
            if (options.signal?.aborted) return;
            failures++;
          }
          if (latest !== undefined && lifecycle !== undefined && isSettled(latest, lifecycle)) return;
        }
      }
      if (options.signal?.aborted) return;
      await pause(this.retryDelayMs * 2 ** Math.min(failures, 5));
    }
  }

  private bearer(): Record<string, string> {
    if (this.token === undefined) throw new Error("sign in first: no token");
    return { Authorization: `Bearer ${this.token}` };
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
