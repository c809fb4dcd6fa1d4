/**
 * The one error type of the edge. Routes and services throw it; the app's single onError turns it
 * into an RFC 9457 problem+json response (see problem-response.ts). Anything else thrown is a bug
 * and becomes a logged 500.
 */
import { ERROR_CODES, type ErrorCode, type FieldError } from '@sd3/shared';

export interface ApiErrorOptions {
  /** Every offending field, so a client can fix them all at once. */
  errors?: FieldError[];
  /** Extra response headers (Retry-After, Allow, WWW-Authenticate, Location). */
  headers?: Record<string, string>;
  /** RFC 9457 extension members, e.g. generation_id. */
  extensions?: Record<string, string | number>;
  cause?: unknown;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, string | number>;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    options: ApiErrorOptions = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = ERROR_CODES[code].status;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  /** A 400 naming one field. */
  static field(field: string, message: string, code: ErrorCode = 'invalid_request'): ApiError {
    return new ApiError(code, `${field}: ${message}`, { errors: [{ field, message }] });
  }

  /** A 400 (or another code) listing several fields. */
  static fields(errors: FieldError[], code: ErrorCode = 'invalid_request'): ApiError {
    const detail =
      errors.length === 1
        ? `${errors[0]!.field || 'body'}: ${errors[0]!.message}`
        : `${errors.length} fields are invalid: ${errors.map((e) => e.field || 'body').join(', ')}`;
    return new ApiError(code, detail, { errors });
  }
}
