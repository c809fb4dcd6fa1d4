/** A tiny client for the end-to-end tests: real HTTP against the local stack. */
import type { Job } from '@sd3/shared';

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  async request<T = unknown>(
    method: string,
    path: string,
    options: {
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
      token?: string | null;
    } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? this.token : options.token;
    if (token) headers['authorization'] = `Bearer ${token}`;
    let body: string | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (SSE, HTML)
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  create(body: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<Job>> {
    return this.request<Job>('POST', '/v1/generations', { body, headers });
  }

  get(id: string): Promise<ApiResponse<Job>> {
    return this.request<Job>('GET', `/v1/generations/${id}`);
  }

  /** Polls until the job is terminal. */
  async waitFor(
    id: string,
    timeoutMs = 60_000,
    predicate = (j: Job) => ['succeeded', 'failed', 'canceled'].includes(j.status),
  ): Promise<Job> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await this.get(id);
      if (predicate(body)) return body;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${body.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
