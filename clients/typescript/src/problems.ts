/** A refusal from the service, as its problem details (RFC 9457) describe it. */
export interface ProblemFields {
  status: number;
  code: string;
  title?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
  stripeCode?: string;
}

export class OnrampProblem extends Error implements ProblemFields {
  readonly status: number;
  readonly code: string;
  readonly title?: string;
  readonly detail?: string;
  readonly errors?: { field: string; message: string }[];
  readonly stripeCode?: string;
  /** Seconds to wait before trying again, when the service said so (429, 503). */
  readonly retryAfter?: number;

  constructor(fields: ProblemFields, retryAfter?: number) {
    super(fields.detail ?? fields.title ?? `${fields.status} ${fields.code}`);
    this.name = "OnrampProblem";
    this.status = fields.status;
    this.code = fields.code;
    this.title = fields.title;
    this.detail = fields.detail;
    this.errors = fields.errors;
    this.stripeCode = fields.stripeCode;
    this.retryAfter = retryAfter;
  }

  /** Whether the same request may succeed later (Stripe or the database down, a limit). */
  get retryable(): boolean {
    return this.status === 429 || this.status === 409 || this.status >= 500;
  }
}

/** The problem a failed response carries; any body that is not one still gives a typed error. */
export async function problemOf(response: Response, body?: unknown): Promise<OnrampProblem> {
  let parsed: unknown = body;
  if (parsed === undefined) {
    try {
      parsed = await response.clone().json();
    } catch {
      parsed = undefined;
    }
  }
  const fields = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Partial<ProblemFields>;
  const retryAfter = Number(response.headers.get("Retry-After") ?? NaN);
  return new OnrampProblem(
    {
      status: response.status,
      code: typeof fields.code === "string" ? fields.code : `http_${response.status}`,
      title: fields.title,
      detail: fields.detail,
      errors: fields.errors,
      stripeCode: fields.stripeCode,
    },
    Number.isFinite(retryAfter) ? retryAfter : undefined,
  );
}
