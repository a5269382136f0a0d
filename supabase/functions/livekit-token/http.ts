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

/** The Access-Control-Allow-Origin value for this request, or null to send none. */
export function allowedOrigin(req: Request, origins: readonly string[]): string | null {
  if (origins.includes("*")) return "*";
  const origin = req.headers.get("origin");
  return origin !== null && origins.includes(origin) ? origin : null;
}

export function corsHeaders(req: Request, origins: readonly string[]): Headers {
  const headers = new Headers({
    "Access-Control-Allow-Methods": ALLOWED_METHODS,
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Max-Age": "86400",
  });
  const origin = allowedOrigin(req, origins);
  if (origin !== null) headers.set("Access-Control-Allow-Origin", origin);
  // Caches must not hand one origin's answer to another.
  if (origin !== "*") headers.set("Vary", "Origin");
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
