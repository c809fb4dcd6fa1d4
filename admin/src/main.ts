/**
 * `sd3-admin`: tenants, API keys and their limits, straight in DynamoDB. Works against the local
 * stack (SD3_DYNAMODB_ENDPOINT or --endpoint-dynamodb) and against AWS (the SDK's default
 * credential chain and region). Exit codes: 0 done, 2 bad input (flags, unknown or duplicate
 * ids), 1 anything else.
 *
 * Commands are `<group> <verb>` entries of COMMANDS, each with its own flags and --help.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ENV } from '@sd3/shared';
import { type AdminCommand, type AdminIo, type Env, UsageError } from './command.js';
import { capCommands } from './commands/caps.js';
import { creditCommands } from './commands/credits.js';
import { keyCommands } from './commands/keys.js';
import { limitCommands } from './commands/limits.js';
import { tenantCommands } from './commands/tenants.js';
import { usageCommands } from './commands/usage.js';
import { webhookCommands } from './commands/webhooks.js';
import { AdminInputError, AdminStore, type StoreConfig } from './store.js';

export const COMMANDS: readonly AdminCommand[] = [
  ...tenantCommands,
  ...keyCommands,
  ...limitCommands,
  ...creditCommands,
  ...capCommands,
  ...usageCommands,
  ...webhookCommands,
];

const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'endpoint-dynamodb': { type: 'string' },
  'tables-prefix': { type: 'string' },
  region: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const COMMON_HELP = `common flags:
  --json                     machine-readable output
  --tables-prefix P          tables P-tenants, P-keys and P-usage (the local stack uses "sd3");
                             otherwise ${ENV.TENANTS_TABLE}, ${ENV.KEYS_TABLE} and ${ENV.USAGE_TABLE} name them
  --endpoint-dynamodb URL    DynamoDB endpoint (default ${ENV.AWS_ENDPOINT_DYNAMODB}, else AWS)
  --region R                 AWS region (default AWS_REGION)
  -h, --help                 this help`;

function topUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: sd3-admin <group> <command> [flags]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    COMMON_HELP,
    '',
    'Run `sd3-admin <group> <command> --help` for its flags.',
  ].join('\n');
}

function storeConfig(values: Record<string, unknown>, env: Env): StoreConfig {
  const prefix = values['tables-prefix'] as string | undefined;
  if (prefix !== undefined && !/^[A-Za-z0-9_.-]{1,200}$/.test(prefix)) {
    throw new UsageError(`--tables-prefix: "${prefix}" is not a valid table name prefix`);
  }
  const keys = prefix !== undefined ? `${prefix}-keys` : env[ENV.KEYS_TABLE];
  const tenants = prefix !== undefined ? `${prefix}-tenants` : env[ENV.TENANTS_TABLE];
  // Only `usage export` needs it; that command says so when it is missing.
  const usage = prefix !== undefined ? `${prefix}-usage` : env[ENV.USAGE_TABLE];
  if (!keys || !tenants) {
    throw new UsageError(
      `name the tables with --tables-prefix or ${ENV.KEYS_TABLE} and ${ENV.TENANTS_TABLE} (the stack outputs KeysTable and TenantsTable)`,
    );
  }
  const endpoint = (values['endpoint-dynamodb'] as string | undefined) ?? env[ENV.AWS_ENDPOINT_DYNAMODB];
  if (endpoint !== undefined && !(URL.canParse(endpoint) && /^https?:$/.test(new URL(endpoint).protocol))) {
    throw new UsageError(`--endpoint-dynamodb: "${endpoint}" is not an http(s) URL`);
  }
  const region =
    (values['region'] as string | undefined) ??
    env['AWS_REGION'] ??
    env['AWS_DEFAULT_REGION'] ??
    // Emulators accept any region; in AWS the SDK's own lookup (profile) still applies.
    (endpoint ? 'us-east-1' : undefined);
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken = env['AWS_SESSION_TOKEN'];
  return {
    tables: { keys, tenants, ...(usage ? { usage } : {}) },
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    // An emulator needs some credentials; in AWS the default chain finds them.
    ...(endpoint && !(accessKeyId && secretAccessKey)
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
    ...(endpoint && accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
      : {}),
  };
}

export async function main(
  argv: string[],
  io: AdminIo = { stdout: process.stdout, stderr: process.stderr },
  env: Env = process.env,
): Promise<number> {
  const [group, verb, ...rest] = argv;
  if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
    io.stdout.write(`${topUsage()}\n`);
    return group === undefined ? 2 : 0;
  }
  const name = `${group} ${verb ?? ''}`.trim();
  let store: AdminStore | undefined;
  try {
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      const verbs = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
      if (verbs.length > 0 && (verb === undefined || verb === '--help' || verb === '-h')) {
        io.stdout.write(`${verbs.map((c) => `sd3-admin ${c.name}  ${c.summary}`).join('\n')}\n`);
        return verb === undefined ? 2 : 0;
      }
      throw new UsageError(`unknown command '${name}'; run sd3-admin --help`);
    }
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...COMMON_OPTIONS, ...command.options },
        allowPositionals: command.positionals.length > 0,
        strict: true,
      });
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
    const { values, positionals } = parsed;
    if (values['help']) {
      io.stdout.write(`usage: sd3-admin ${command.usage}\n\n${command.help}\n\n${COMMON_HELP}\n`);
      return 0;
    }
    if (positionals.length !== command.positionals.length) {
      throw new UsageError(
        command.positionals.length === 0
          ? `unexpected argument ${positionals[0]}`
          : `expected ${command.positionals.join(' ')} (usage: sd3-admin ${command.usage})`,
      );
    }
    // Checked before any AWS call, so bad flags never touch a table.
    const prepared = command.prepare(values, positionals);
    store = new AdminStore(storeConfig(values, env));
    const result = await prepared(store, Date.now());
    io.stdout.write(values['json'] ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof AdminInputError) {
      io.stderr.write(`sd3-admin ${name}: ${err.message}\n`);
      return 2;
    }
    io.stderr.write(
      `sd3-admin ${name}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`,
    );
    return 1;
  } finally {
    store?.destroy();
  }
}
