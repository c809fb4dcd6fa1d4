export type { BillingStore, Reservation, ReservedFrom, SpendingRoom } from './billing-store.js';
export { type EventPublisher, noEventPublisher } from './event-publisher.js';
export type { IdempotencyRecord, IdempotencyStore } from './idempotency-store.js';
export type { JobQueue, QueueMessage } from './job-queue.js';
export {
  JobExistsError,
  type JobPage,
  type JobStore,
  type ListJobsQuery,
  type ListPosition,
} from './job-store.js';
export type { KeyStore } from './key-store.js';
export type { ObjectStore } from './object-store.js';
export type { RateLimitStore, WindowHit } from './rate-limit-store.js';
export type { UsageStore } from './usage-store.js';
