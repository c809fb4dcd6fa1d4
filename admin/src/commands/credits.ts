/** `credits add`: top up a tenant's prepaid balance (amounts in credits, exact to 0.001). */
import { formatCredits, parseCredits } from '@sd3/shared';
import { type AdminCommand, requiredFlag, UsageError } from '../command.js';

export const creditCommands: AdminCommand[] = [
  {
    name: 'credits add',
    summary: "add credits to a tenant's prepaid balance",
    usage: 'credits add --tenant TENANT --amount CREDITS',
    help: [
      '  --tenant TENANT    the tenant id',
      '  --amount CREDITS   credits to add, e.g. 100 or 12.5 (at most 3 decimals, more than 0)',
      '  A tenant without a balance gets one: from then on every generation reserves its',
      '  quote from it and is refused with 402 when the balance is short.',
    ].join('\n'),
    options: { tenant: { type: 'string' }, amount: { type: 'string' } },
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      const raw = requiredFlag(values, 'amount');
      const amount = parseCredits(raw);
      if (amount === null || amount <= 0) {
        throw new UsageError(
          `--amount: must be a number of credits above 0 with at most 3 decimals (got "${raw}")`,
        );
      }
      return async (store) => {
        const tenant = await store.addCredits(tenantId, amount);
        const balance = tenant.creditBalance ?? 0;
        return {
          text: `tenant ${tenantId}: added ${formatCredits(amount)} credits, balance ${formatCredits(balance)}`,
          json: { tenant: tenantId, added: formatCredits(amount), balance: formatCredits(balance) },
        };
      };
    },
  },
];
