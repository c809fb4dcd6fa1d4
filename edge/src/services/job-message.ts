/**
 * The jobs-queue message of a job: its envelope signed with the edge's current key, and the message
 * attributes the runner logs by. One function for the create flow and the reconciler's resends, so
 * a resent job is indistinguishable from a first send (except for its fresh validity window).
 */
import {
  type JobRecord,
  MESSAGE_ATTRIBUTES,
  outputPrefix,
  REQUEST_ID_MESSAGE_ATTRIBUTE,
  type SigningKeys,
  serializeEnvelope,
  signEnvelope,
} from '@sd3/shared';
import type { QueueMessage } from '../ports/index.js';

export interface MessageSigning {
  /** `kid` signs; it must be a key of `keys`. */
  signing: { kid: string; keys: SigningKeys };
  /** Lifetime of the envelope (s). */
  envelopeMaxAgeSeconds: number;
}

/** Signs the job's envelope as of `issuedAt` (epoch ms) and wraps it as a queue message. */
export async function buildJobMessage(
  deps: MessageSigning,
  record: Pick<JobRecord, 'jobId' | 'tenantId' | 'model' | 'params' | 'inputImageKey'>,
  issuedAt: number,
  requestId?: string,
): Promise<QueueMessage> {
  const secret = deps.signing.keys.get(deps.signing.kid);
  if (!secret) throw new Error(`no signing key with id ${deps.signing.kid}`);
  const envelope = await signEnvelope(
    {
      v: 1,
      jobId: record.jobId,
      tenantId: record.tenantId,
      model: record.model,
      params: record.params,
      inputs: record.inputImageKey ? { image: record.inputImageKey } : {},
      outputPrefix: outputPrefix(record.tenantId, record.jobId),
      issuedAt,
      expiresAt: issuedAt + deps.envelopeMaxAgeSeconds * 1000,
      kid: deps.signing.kid,
    },
    secret,
  );
  return {
    body: serializeEnvelope(envelope),
    attributes: {
      [MESSAGE_ATTRIBUTES.jobId]: record.jobId,
      [MESSAGE_ATTRIBUTES.tenantId]: record.tenantId,
      [MESSAGE_ATTRIBUTES.model]: record.model,
      ...(requestId ? { [REQUEST_ID_MESSAGE_ATTRIBUTE]: requestId } : {}),
    },
  };
}
