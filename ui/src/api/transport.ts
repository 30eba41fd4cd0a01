// One UI, two transports: Tauri `invoke` in the desktop app, HTTP in a browser served by
// `processops serve`. Both reject with an `ApiError` carrying the API's `{code, message}`.

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status = 0) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
  }
}

/** One service call, described for both transports. */
export interface Call {
  /** The Tauri command (snake_case). */
  command: string;
  /** Arguments of the Tauri command. */
  args?: Record<string, unknown>;
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** The HTTP path, already with its path parameters. */
  path: string;
  query?: Record<string, string | number | boolean | null | undefined | string[]>;
  body?: unknown;
}

export interface Transport {
  readonly kind: "tauri" | "http";
  send<T>(call: Call): Promise<T>;
}

export function queryString(query: Call["query"]): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.set(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

function asApiError(value: unknown, status: number): ApiError {
  if (value && typeof value === "object" && "code" in value && "message" in value) {
    const v = value as { code: unknown; message: unknown };
    return new ApiError(String(v.code), String(v.message), status);
  }
  if (typeof value === "string") return new ApiError("error", value, status);
  return new ApiError("error", "the engine answered with an error it did not explain", status);
}

export function httpTransport(base = ""): Transport {
  return {
    kind: "http",
    async send<T>(call: Call): Promise<T> {
      let response: Response;
      try {
        response = await fetch(`${base}${call.path}${queryString(call.query)}`, {
          method: call.method,
          headers: call.body === undefined ? {} : { "Content-Type": "application/json" },
          body: call.body === undefined ? undefined : JSON.stringify(call.body),
        });
      } catch {
        throw new ApiError(
          "unreachable",
          "cannot reach the ProcessOps engine; is `processops serve` still running?",
        );
      }
      const text = await response.text();
      let value: unknown = undefined;
      if (text) {
        try {
          value = JSON.parse(text);
        } catch {
          throw new ApiError("bad_response", `the engine answered with something that is not JSON (HTTP ${response.status})`, response.status);
        }
      }
      if (!response.ok) throw asApiError(value, response.status);
      return value as T;
    },
  };
}

interface TauriInternals {
  invoke: (cmd: string, args?: Record<string, unknown>) => Promise<unknown>;
}

export function isTauri(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

export function tauriTransport(): Transport {
  return {
    kind: "tauri",
    async send<T>(call: Call): Promise<T> {
      const { invoke } = await import("@tauri-apps/api/core");
      try {
        return (await invoke(call.command, call.args ?? {})) as T;
      } catch (e) {
        throw asApiError(e, 0);
      }
    },
  };
}

export type { TauriInternals };
