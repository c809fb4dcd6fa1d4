/**
 * Every error code the API returns (problem+json `code`) or records on a failed job, with its
 * HTTP status and a stable title. One table so edge responses and runner failures agree.
 */
export const ERROR_CODES = {
  invalid_request: { status: 400, title: 'Invalid request' },
  unauthorized: { status: 401, title: 'Missing or invalid API key' },
  forbidden: { status: 403, title: 'The API key lacks the required scope' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  idempotency_conflict: { status: 409, title: 'Idempotency-Key reused with a different request' },
  not_cancelable: { status: 409, title: 'The generation already finished' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  unprocessable: { status: 422, title: 'The request is well-formed but cannot be processed' },
  rate_limited: { status: 429, title: 'Too many requests' },
  insufficient_credits: { status: 402, title: 'Insufficient credits' },
  spend_cap_exceeded: { status: 402, title: 'Monthly spend cap reached' },
  internal: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service temporarily unavailable' },
  generation_timeout: { status: 504, title: 'The generation did not finish in time; poll it by id' },
  // Job failure codes (recorded on the job, surfaced in events and webhooks).
  envelope_invalid: { status: 500, title: 'The job message was forged, altered or malformed' },
  envelope_expired: { status: 500, title: 'The job message expired before it was processed' },
  input_invalid: { status: 422, title: 'The generation parameters were refused by the model' },
  pipeline_failed: { status: 500, title: 'The pipeline failed' },
  max_attempts_exceeded: { status: 500, title: 'The job failed on every attempt' },
  enqueue_failed: { status: 503, title: 'The job could not be queued' },
  message_lost: { status: 503, title: 'The job message was lost and could not be delivered again' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function errorStatus(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}
