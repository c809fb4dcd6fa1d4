/** RFC 9457 problem+json bodies, built from ApiError and the shared error-code table. */
import { ERROR_CODES, type Problem } from '@sd3/shared';
import type { ApiError } from './api-error.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Problem types are relative references to the error list on the reference page. */
export function problemType(code: string): string {
  return `/docs#error-${code}`;
}

export function problemBody(
  err: ApiError,
  instance: string,
  requestId: string | undefined,
): Problem & Record<string, unknown> {
  return {
    ...err.extensions,
    type: problemType(err.code),
    title: ERROR_CODES[err.code].title,
    status: err.status,
    detail: err.detail,
    instance,
    code: err.code,
    ...(err.errors ? { errors: err.errors } : {}),
    ...(requestId ? { request_id: requestId } : {}),
  };
}

export function problemResponse(err: ApiError, instance: string, requestId: string | undefined): Response {
  const headers = new Headers(err.headers);
  headers.set('content-type', PROBLEM_CONTENT_TYPE);
  if (requestId) headers.set('x-request-id', requestId);
  return new Response(JSON.stringify(problemBody(err, instance, requestId)), {
    status: err.status,
    headers,
  });
}
