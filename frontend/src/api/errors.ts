/** An error answer of the API (`{"error": {"code", "message"}}`) or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfter: number | null;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, retryAfter: number | null = null, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

/** Builds an ApiError from a non-2xx response (reads the body). */
export async function errorFrom(resp: Response): Promise<ApiError> {
  const header = resp.headers.get("Retry-After");
  const retryAfter = header !== null && /^\d+$/.test(header.trim()) ? Number(header) : null;
  let code = `http_${resp.status}`;
  let message = resp.statusText || `HTTP ${resp.status}`;
  let details: unknown;
  try {
    const body = (await resp.json()) as { error?: { code?: string; message?: string; details?: unknown } };
    if (body && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      details = body.error.details;
    }
  } catch {
    /* not JSON (nginx's own pages) */
  }
  return new ApiError(resp.status, code, message, retryAfter, details);
}

export function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 90) return `${minutes} minutes`;
  return `${Math.ceil(minutes / 60)} hours`;
}

/** A server message as a sentence: capitalised, ending with a full stop. */
export function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const s = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** The sentence shown to a person for an error. */
export function describeError(err: unknown): string {
  if (!(err instanceof ApiError)) {
    if (err instanceof Error && err.name === "AbortError") return "Cancelled.";
    return "Cannot reach the server. Check your connection and try again.";
  }
  const wait = err.retryAfter !== null ? ` Try again in ${formatSeconds(err.retryAfter)}.` : " Try again later.";
  switch (err.code) {
    case "invalid_credentials":
      return "Wrong email or password.";
    case "account_locked":
      return `This account is locked after too many failed sign-in attempts.${wait}`;
    case "rate_limited":
      return `Too many requests.${wait}`;
    case "quota_exceeded":
      return `You have used today's allowance of your plan.${err.retryAfter !== null ? wait : ""} See Plans & usage to upgrade.`;
    case "email_taken":
      return "An account with this email already exists. Sign in instead.";
    case "weak_password":
      return `Choose a stronger password: ${err.message}`;
    case "plan_limit":
      return "Your plan's limit is reached. Delete something or upgrade your plan.";
    case "invalid_coupon":
      return "This coupon cannot be used for that plan.";
    case "storage_limit":
      return "This upload would exceed your plan's storage.";
    case "too_large":
      return "The file is too large.";
    case "unsupported_media_type":
      return "Unsupported file type: upload a PDF, a text or a Markdown file.";
    case "engine_unavailable":
      return "The AI engine is unavailable right now. Try again in a moment.";
    case "unauthorized":
      return "Your session has ended. Sign in again.";
    case "wrong_password":
      return sentence(err.message || "the password is wrong");
    case "export_limited":
      return `You can download your data a few times an hour only.${wait}`;
    case "email_unavailable":
      return "This server cannot send email, so no link can be sent. Ask its operator for help.";
    case "invalid_token":
      return "This link is unknown, already used or expired. Ask for a new one.";
    case "email_unverified":
      return "Confirm your email address first: open the link we sent you, or ask for a new one.";
    default:
      if (err.status === 0) return "Cannot reach the server. Check your connection and try again.";
      return err.message.charAt(0).toUpperCase() + err.message.slice(1) + (err.status === 429 ? wait : "");
  }
}
