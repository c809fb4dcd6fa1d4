/**
 * `npm start`: the local stack in the foreground. Ctrl-C stops everything.
 *   PORT             edge port (default 8787)
 *   SD3_MODEL_DIR    a real SD3 ONNX export; without it a tiny random model is generated
 *   SD3_DEV_API_KEY  reuse this key (sk_…) instead of generating one
 *   SD3_PROVIDER     onnxruntime execution provider for the runner (default cpu)
 */
import { fileURLToPath } from 'node:url';
import { startLocalStack } from './stack.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const port = Number(process.env['PORT'] ?? 8787);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(process.env['PORT'])}`);
  process.exit(2);
}

console.log('starting the local stack (emulators, edge, runner)…');
let stack: Awaited<ReturnType<typeof startLocalStack>>;
try {
  stack = await startLocalStack({
    port,
    tinyModelDir: `${root}.sd3-local/models/tiny`,
    ...(process.env['SD3_MODEL_DIR'] ? { modelDir: process.env['SD3_MODEL_DIR'] } : {}),
    ...(process.env['SD3_DEV_API_KEY'] ? { apiKey: process.env['SD3_DEV_API_KEY'] } : {}),
    ...(process.env['SD3_PROVIDER'] ? { provider: process.env['SD3_PROVIDER'] } : {}),
    onRunnerLine: (line) => {
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string; job_id?: string };
        console.log(
          `[runner] ${entry.level ?? ''} ${entry.msg ?? line}${entry.job_id ? ` (${entry.job_id})` : ''}`,
        );
      } catch {
        console.log(`[runner] ${line}`);
      }
    },
  });
} catch (err) {
  console.error(`could not start the local stack: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

const size = stack.model.native_size;
console.log(`
sd3-serverless local stack is up
  API        ${stack.url}   (docs: ${stack.url}/docs)
  API key    ${stack.apiKey.token}${process.env['SD3_DEV_API_KEY'] ? '' : '   (new; set SD3_DEV_API_KEY to keep it)'}
  webhooks   signed with ${stack.apiKey.webhookSecret} (Standard Webhooks)
  model      ${stack.model.id}, ${size}x${size}${stack.tiny ? ' — tiny random weights: images are noise (set SD3_MODEL_DIR for real SD3)' : ''}

for your shell (the README's examples read these):
  export SD3_API_URL=${stack.url} SD3_API_KEY=${stack.apiKey.token}
sd3-admin against this stack:
  export SD3_DYNAMODB_ENDPOINT=${stack.emulators.dynamodbEndpoint} SD3_TENANTS_TABLE=${stack.resources.tables.tenants} SD3_KEYS_TABLE=${stack.resources.tables.keys} SD3_USAGE_TABLE=${stack.resources.tables.usage}

try it:
  curl -s ${stack.url}/v1/generations -H "Authorization: Bearer ${stack.apiKey.token}" \\
    -H "Content-Type: application/json" -H "Prefer: wait=30" \\
    -d '{"prompt":"a lighthouse at dusk","steps":8,"seed":42}'

Ctrl-C stops everything.
`);

let stopping = false;
const shutdown = async () => {
  if (stopping) process.exit(130);
  stopping = true;
  console.log('\nstopping…');
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
