/** `tenants create`, `tenants list`. */
import { generateWebhookSecret, type TenantRecord } from '@sd3/shared';
import { type AdminCommand, iso, requiredFlag, stringFlag, table, UsageError } from '../command.js';

const TENANT_ID = /^[a-z0-9][a-z0-9_-]{2,63}$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function newTenantId(): string {
  // 36 divides 252, so b % 36 is uniform over bytes below 252.
  const chars: string[] = [];
  while (chars.length < 12) {
    for (const b of crypto.getRandomValues(new Uint8Array(16))) {
      if (b < 252 && chars.length < 12) chars.push(ALPHABET[b % 36]!);
    }
  }
  return `ten_${chars.join('')}`;
}

const view = (t: TenantRecord) => ({ id: t.tenantId, name: t.name, created_at: iso(t.createdAt) });

export const tenantCommands: AdminCommand[] = [
  {
    name: 'tenants create',
    summary: 'create a tenant',
    usage: 'tenants create --name NAME [--id ID]',
    help: [
      '  --name NAME   display name (required)',
      '  --id ID       tenant id: 3-64 of a-z 0-9 _ -, starting with a letter or digit',
      '                (default: a new ten_<random>)',
    ].join('\n'),
    options: { name: { type: 'string' }, id: { type: 'string' } },
    positionals: [],
    prepare(values) {
      const name = requiredFlag(values, 'name').trim();
      if (name.length === 0 || name.length > 200) throw new UsageError('--name must be 1-200 characters');
      const id = stringFlag(values, 'id');
      if (id !== undefined && !TENANT_ID.test(id)) {
        throw new UsageError(`--id "${id}" must be 3-64 of a-z 0-9 _ -, starting with a letter or digit`);
      }
      return async (store, now) => {
        const tenant: TenantRecord = {
          tenantId: id ?? newTenantId(),
          name,
          createdAt: now,
          webhookSecret: generateWebhookSecret(),
        };
        await store.createTenant(tenant);
        return {
          text: `created tenant ${tenant.tenantId} (${name})\nwebhook signing secret: ${tenant.webhookSecret}`,
          json: { ...view(tenant), webhook_secret: tenant.webhookSecret },
        };
      };
    },
  },
  {
    name: 'tenants list',
    summary: 'list tenants',
    usage: 'tenants list',
    help: '  (no flags of its own)',
    options: {},
    positionals: [],
    prepare() {
      return async (store) => {
        const tenants = (await store.listTenants()).map(view);
        return {
          text: table(
            ['ID', 'NAME', 'CREATED'],
            tenants.map((t) => [t.id, t.name, t.created_at]),
          ),
          json: tenants,
        };
      };
    },
  },
];
