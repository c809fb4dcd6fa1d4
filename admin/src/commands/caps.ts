/** `caps set`: a tenant's monthly spend cap (credits, exact to 0.001; UTC calendar months). */
import { formatCredits, parseCredits, spendMonthOf } from '@sd3/shared';
import { type AdminCommand, requiredFlag, UsageError } from '../command.js';

export const capCommands: AdminCommand[] = [
  {
    name: 'caps set',
    summary: "set or remove a tenant's monthly spend cap",
    usage: 'caps set --tenant TENANT --monthly CREDITS|none',
    help: [
      '  --tenant TENANT          the tenant id',
      '  --monthly CREDITS|none   the cap per UTC month, e.g. 500 or 12.5 (at most 3 decimals), or',
      '                           none to remove it',
      "  With a cap, every generation adds its quote to the month's spend and is refused with 402",
      '  (spend_cap_exceeded) when that would pass the cap; refunds give the headroom back. A prepaid',
      '  balance, if the tenant has one, applies as well.',
    ].join('\n'),
    options: { tenant: { type: 'string' }, monthly: { type: 'string' } },
    positionals: [],
    prepare(values) {
      const tenantId = requiredFlag(values, 'tenant');
      const raw = requiredFlag(values, 'monthly');
      const remove = raw.trim() === 'none';
      const cap = remove ? null : parseCredits(raw);
      if (!remove && cap === null) {
        throw new UsageError(
          `--monthly: must be a number of credits with at most 3 decimals, or none (got "${raw}")`,
        );
      }
      return async (store, now) => {
        const tenant = await store.setSpendCap(tenantId, cap);
        const month = spendMonthOf(now);
        const spent = tenant.spendMonth === month ? (tenant.spentThisMonth ?? 0) : 0;
        const capText = cap === null ? 'none' : formatCredits(cap);
        return {
          text:
            cap === null
              ? `tenant ${tenantId}: monthly spend cap removed (${formatCredits(spent)} credits spent in ${month})`
              : `tenant ${tenantId}: monthly spend cap ${capText} credits (${formatCredits(spent)} spent in ${month})`,
          json: {
            tenant: tenantId,
            monthly_spend_cap: cap === null ? null : capText,
            month,
            spent: formatCredits(spent),
          },
        };
      };
    },
  },
];
