/** JSON responses and CORS headers shared by every answer of the function. */

export const ALLOWED_METHODS = "POST, OPTIONS";
const ALLOWED_HEADERS = "authorization, content-type, apikey, x-client-info";

/** A failure the caller caused or can act on; its message is safe to send back. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * Whether a browser page may call: requests without Origin (curl, servers, native apps) and
 * same-origin pages may; a cross-origin page only when its origin is listed.
 */
export function originAllowed(req: Request, origins: readonly string[]): boolean {
  const origin = req.headers.get("origin");
  return origin === null || origins.includes(origin) || origin === sameOrigin(req);
}

function sameOrigin(req: Request): string | null {
  try {
    return new URL(req.url).origin;
  } catch {
    return null;
  }
}

/** Refuses a page whose origin is not listed, before any work is done for it. */
export function checkOrigin(req: Request, origins: readonly string[]): void {
  if (originAllowed(req, origins)) return;
  const origin = JSON.stringify((req.headers.get("origin") ?? "").slice(0, 200));
  const why = origins.length === 0
    ? "this server allows no cross-origin pages because CORS_ALLOWED_ORIGINS is empty"
    : "it is not listed in CORS_ALLOWED_ORIGINS";
  throw new HttpError(403, `origin ${origin} may not request tokens: ${why}`);
}

export function corsHeaders(req: Request, origins: readonly string[]): Headers {
  const headers = new Headers({
    "Access-Control-Allow-Methods": ALLOWED_METHODS,
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Max-Age": "86400",
    // Retry-After must be readable by the page to tell the user when to try again.
    "Access-Control-Expose-Headers": "Retry-After",
    // Caches must not hand one origin's answer to another.
    Vary: "Origin",
  });
  const origin = req.headers.get("origin");
  if (origin !== null && originAllowed(req, origins)) {
    headers.set("Access-Control-Allow-Origin", origin);
  }
  return headers;
}

export function preflight(req: Request, origins: readonly string[]): Response {
  return new Response(null, { status: 204, headers: corsHeaders(req, origins) });
}

export function json(
  req: Request,
  origins: readonly string[],
  status: number,
  body: unknown,
  extra: Record<string, string> = {},
): Response {
  const headers = corsHeaders(req, origins);
  headers.set("Content-Type", "application/json; charset=utf-8");
  // Tokens are credentials: no cache may keep them.
  headers.set("Cache-Control", "no-store");
  for (const [name, val] of Object.entries(extra)) headers.set(name, val);
  return new Response(JSON.stringify(body), { status, headers });
}

export function errorResponse(req: Request, origins: readonly string[], err: HttpError): Response {
  return json(req, origins, err.status, { error: err.message }, err.headers);
}
