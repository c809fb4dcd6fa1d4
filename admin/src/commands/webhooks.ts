/** `webhooks secret`, `webhooks rotate`, `webhooks finish-rotation`: the tenant's signing secret. */
import { generateWebhookSecret } from '@sd3/shared';
import { type AdminCommand, requiredFlag } from '../command.js';
import { AdminInputError } from '../store.js';

const tenantFlag = { tenant: { type: 'string' } } as const;

export const webhookCommands: AdminCommand[] = [
  {
    name: 'webhooks secret',
    summary: "show a tenant's webhook signing secret (whsec_…)",
    usage: 'webhooks secret --tenant TENANT',
    help: '  --tenant TENANT   the tenant id\n  Receivers verify deliveries with it (Standard Webhooks).',
    options: tenantFlag,
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      return async (store) => {
        const tenant = await store.getTenant(tenantId);
        if (!tenant) throw new AdminInputError(`no tenant ${tenantId}`);
        const current = tenant.webhookSecret ?? null;
        const previous = tenant.webhookSecretPrevious ?? null;
        return {
          text: `current: ${current ?? '(none)'}${previous ? `\nprevious (still signing): ${previous}` : ''}`,
          json: { tenant: tenantId, webhook_secret: current, previous_webhook_secret: previous },
        };
      };
    },
  },
  {
    name: 'webhooks rotate',
    summary: 'start a secret rotation: a new secret signs, the old one keeps signing too',
    usage: 'webhooks rotate --tenant TENANT',
    help: [
      '  --tenant TENANT   the tenant id',
      '  Deliveries carry signatures with both secrets until `webhooks finish-rotation`,',
      '  so receivers can switch without missing a delivery.',
    ].join('\n'),
    options: tenantFlag,
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      return async (store) => {
        const tenant = await store.rotateWebhookSecret(tenantId, generateWebhookSecret());
        return {
          text: `new webhook signing secret: ${tenant.webhookSecret}`,
          json: {
            tenant: tenantId,
            webhook_secret: tenant.webhookSecret,
            rotating: Boolean(tenant.webhookSecretPrevious),
          },
        };
      };
    },
  },
  {
    name: 'webhooks finish-rotation',
    summary: 'stop signing with the previous secret',
    usage: 'webhooks finish-rotation --tenant TENANT',
    help: '  --tenant TENANT   the tenant id',
    options: tenantFlag,
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      return async (store) => {
        await store.finishWebhookRotation(tenantId);
        return {
          text: `tenant ${tenantId}: only the current secret signs now`,
          json: { tenant: tenantId, rotating: false },
        };
      };
    },
  },
];
