/** What the sweeps need: the stores, the queues, the signing key, the settings. */
import type { Clock } from '../deps.js';
import type { Logger } from '../logger.js';
import type { BillingStore, EventPublisher, JobQueue } from '../ports/index.js';
import type { MessageSigning } from '../services/job-message.js';
import type { ReconcilerConfig } from './config.js';
import type { OpenJobs } from './open-jobs.js';
import type { TenantMarkers } from './open-reservations.js';
import type { QueueDepth } from './queue-depth.js';

export interface ReconcilerDeps extends MessageSigning {
  jobs: OpenJobs;
  billing: BillingStore;
  /** Tenants holding reservation markers. */
  openReservations(): Promise<TenantMarkers[]>;
  queue: JobQueue;
  queueDepth: QueueDepth;
  events: EventPublisher;
  /** The served models (one open-index partition and one jobs queue each). */
  models: string[];
  clock: Clock;
  logger: Logger;
  config: ReconcilerConfig;
}
