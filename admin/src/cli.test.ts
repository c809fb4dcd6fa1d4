import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { EDGE_ENV, ENV, type KeyRecord, signWebhook, type TenantRecord, usageSortKey } from '@sd3/shared';
import { type EdgeStack, startEdgeStack, TEST_MODELS } from '../../edge/src/test-support/edge-stack.js';

const BIN = new URL('../bin/sd3-admin.js', import.meta.url).pathname;

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Spawns the real bin (asynchronously: the emulators run in this process). */
function admin(args: string[], env: Record<string, string> = s.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env['PATH'] ?? '', ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const json = <T>(run: Run): T => {
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as T;
};

test('tenants and keys end to end: a created key works on the edge, limits apply, revoke refuses it', async () => {
  const tenant = json<{ id: string; name: string }>(
    await admin(['tenants', 'create', '--name', 'Acme', '--id', 'ten_acme', '--json']),
  );
  assert.deepEqual([tenant.id, tenant.name], ['ten_acme', 'Acme']);
  const duplicate = await admin(['tenants', 'create', '--name', 'Acme', '--id', 'ten_acme']);
  assert.equal(duplicate.code, 2);
  assert.match(duplicate.stderr, /tenant ten_acme already exists/);

  const generated = await admin(['tenants', 'create', '--name', 'Other Co']);
  assert.equal(generated.code, 0, generated.stderr);
  assert.match(generated.stdout, /created tenant ten_[a-z0-9]{12} \(Other Co\)/);
  const listed = json<{ id: string }[]>(await admin(['tenants', 'list', '--json']));
  assert.ok(listed.some((t) => t.id === 'ten_acme'));
  assert.match((await admin(['tenants', 'list'])).stdout, /^ID\s+NAME\s+CREATED\n(.|\n)*ten_acme\s+Acme/);

  const created = json<{ id: string; key: string; scopes: string[]; requests_per_minute: number }>(
    await admin(['keys', 'create', '--tenant', 'ten_acme', '--name', 'ci', '--rpm', '3', '--json']),
  );
  assert.match(created.key, new RegExp(`^sk_${created.id}_[A-Za-z0-9]{32,64}$`));
  assert.deepEqual(created.scopes, ['generate', 'read']);
  assert.equal(created.requests_per_minute, 3);
  const stored = (
    await s.doc.send(new GetCommand({ TableName: s.resources.tables.keys, Key: { keyId: created.id } }))
  ).Item as KeyRecord;
  assert.equal(stored.tenantId, 'ten_acme');
  assert.ok(!JSON.stringify(stored).includes(created.key.split('_')[2]!), 'the secret is not stored');

  const text = await admin(['keys', 'create', '--tenant', 'ten_acme', '--scopes', 'read']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /\n {2}sk_[a-z0-9]{12}_[A-Za-z0-9]+\n/);
  assert.match(text.stdout, /only time the key is shown/);

  // Each edge app has its own cache; a fresh one sees the changes at once.
  const edge = () => s.appWith({}, { keyCacheTtlMs: 0 }).app;
  const call = (token: string) =>
    edge().request('/v1/models', { headers: { authorization: `Bearer ${token}` } });
  const ok = await call(created.key);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('ratelimit-limit'), '3');

  const keys = await admin(['keys', 'list', '--tenant', 'ten_acme', '--json']);
  const listedKeys = json<Record<string, unknown>[]>(keys);
  assert.equal(listedKeys.length, 2);
  assert.ok(!keys.stdout.includes(created.key) && !keys.stdout.includes(stored.secretHash));
  assert.ok(listedKeys.every((k) => !('key' in k) && !('secret_hash' in k)));
  const mine = listedKeys.find((k) => k['id'] === created.id)!;
  assert.ok(typeof mine['last_used_at'] === 'string', 'the edge recorded a use');
  assert.match((await admin(['keys', 'list', '--tenant', 'ten_acme'])).stdout, /RPM\s+CONCURRENCY/);

  const set = json<{ requests_per_minute: number; concurrent_jobs: number }>(
    await admin(['limits', 'set', created.id, '--rpm', '50', '--concurrency', '2', '--json']),
  );
  assert.deepEqual([set.requests_per_minute, set.concurrent_jobs], [50, 2]);
  assert.equal((await call(created.key)).headers.get('ratelimit-limit'), '50');
  const reset = json<{ requests_per_minute: number | null; concurrent_jobs: number }>(
    await admin(['limits', 'set', created.id, '--rpm', 'default', '--json']),
  );
  assert.deepEqual([reset.requests_per_minute, reset.concurrent_jobs], [null, 2]);
  assert.equal((await call(created.key)).headers.get('ratelimit-limit'), '600');

  const revoked = await admin(['keys', 'revoke', created.id]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, new RegExp(`revoked key ${created.id} at \\d{4}-`));
  assert.equal((await call(created.key)).status, 401);
});

test('tables and endpoint from flags instead of the environment', async () => {
  const env = { PATH: process.env['PATH'] ?? '' };
  const run = await admin(
    [
      'tenants',
      'create',
      '--name',
      'Flags',
      '--id',
      'ten_flags',
      '--tables-prefix',
      'sd3',
      '--endpoint-dynamodb',
      s.env[ENV.AWS_ENDPOINT_DYNAMODB]!,
    ],
    env,
  );
  assert.equal(run.code, 0, run.stderr);
  const tenants = await s.doc.send(
    new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId: 'ten_flags' } }),
  );
  assert.equal(tenants.Item?.['name'], 'Flags');
  const noTables = await admin(['tenants', 'list'], env);
  assert.equal(noTables.code, 2);
  assert.match(noTables.stderr, /--tables-prefix or SD3_KEYS_TABLE/);
});

test('bad input exits 2 with a clear message and touches nothing', async () => {
  const cases: [string[], RegExp][] = [
    [['tenants', 'create'], /--name is required/],
    [['tenants', 'create', '--name', 'x', '--id', 'BAD ID'], /--id "BAD ID" must be/],
    [['tenants', 'create', '--name', 'x', '--bogus'], /Unknown option '--bogus'/],
    [['keys', 'create', '--tenant', 'ten_acme', '--rpm', 'lots'], /--rpm: must be a whole number/],
    [
      ['keys', 'create', '--tenant', 'ten_acme', '--concurrency', '0'],
      /--concurrency: concurrentJobs must be/,
    ],
    [['keys', 'create', '--tenant', 'ten_acme', '--scopes', 'generate,root'], /unknown scope "root"/],
    [['keys', 'create', '--tenant', 'ten_nobody'], /no tenant ten_nobody/],
    [['keys', 'list'], /--tenant is required/],
    [['keys', 'revoke'], /expected KEYID/],
    [['keys', 'revoke', 'abc'], /"abc" is not a key id/],
    [['keys', 'revoke', 'aaaaaaaaaaaa'], /no key aaaaaaaaaaaa/],
    [['limits', 'set', 'aaaaaaaaaaaa'], /give --rpm and\/or --concurrency/],
    [['limits', 'set', 'aaaaaaaaaaaa', '--rpm', '5'], /no key aaaaaaaaaaaa/],
    [['keys', 'rotate'], /unknown command 'keys rotate'/],
    [['credits', 'remove'], /unknown command 'credits remove'/],
    [['tenants', 'list', '--endpoint-dynamodb', 'not a url'], /not an http\(s\) URL/],
  ];
  for (const [args, message] of cases) {
    const run = await admin(args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(' '));
    assert.equal(run.stdout, '', args.join(' '));
  }
  assert.equal((await admin([])).code, 2);
});

test('--help on every command exits 0 and names its flags', async () => {
  const top = await admin(['--help']);
  assert.equal(top.code, 0);
  for (const [args, flag] of [
    [['tenants', 'create', '--help'], '--name'],
    [['tenants', 'list', '--help'], '--json'],
    [['keys', 'create', '--help'], '--concurrency'],
    [['keys', 'list', '--help'], '--tenant'],
    [['keys', 'revoke', '-h'], 'KEYID'],
    [['limits', 'set', '--help'], '--rpm'],
    [['keys', '--help'], 'keys revoke'],
  ] as const) {
    const run = await admin([...args]);
    assert.equal(run.code, 0, args.join(' '));
    assert.ok(run.stdout.includes(flag), `${args.join(' ')} mentions ${flag}`);
  }
});

test('credits add tops up a balance that the edge then enforces', async () => {
  json(await admin(['tenants', 'create', '--name', 'Payer', '--id', 'ten_payer', '--json']));
  const key = json<{ key: string }>(await admin(['keys', 'create', '--tenant', 'ten_payer', '--json']));
  // tiny at its defaults costs ceil(1000 * 64 * 64 * 4 / 1e6) = 17 millicredits.
  const priced = TEST_MODELS.map((m) =>
    m.id === 'tiny' ? { ...m, price: { millicredits_per_megapixel_step: 1000 } } : m,
  );
  const { app } = s.appWith({ [EDGE_ENV.MODELS]: JSON.stringify(priced) });
  const create = () =>
    app.request('/v1/generations', {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'paid' }),
    });
  // No balance yet: not enforced.
  assert.equal((await create()).status, 202);
  const added = json<{ tenant: string; added: string; balance: string }>(
    await admin(['credits', 'add', '--tenant', 'ten_payer', '--amount', '0.02', '--json']),
  );
  assert.deepEqual(added, { tenant: 'ten_payer', added: '0.020', balance: '0.020' });
  assert.equal((await create()).status, 202);
  assert.equal((await create()).status, 402);
  const text = await admin(['credits', 'add', '--tenant', 'ten_payer', '--amount', '1']);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stdout.trim(), 'tenant ten_payer: added 1.000 credits, balance 1.003');
  const stored = (
    await s.doc.send(
      new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId: 'ten_payer' } }),
    )
  ).Item as TenantRecord;
  assert.equal(stored.creditBalance, 1003);

  for (const [args, message] of [
    [
      ['credits', 'add', '--tenant', 'ten_payer', '--amount', '0'],
      /--amount: must be a number of credits above 0/,
    ],
    [['credits', 'add', '--tenant', 'ten_payer', '--amount', '1.0001'], /at most 3 decimals/],
    [['credits', 'add', '--tenant', 'ten_payer', '--amount', '-5'], /--amount/],
    [['credits', 'add', '--amount', '5'], /--tenant is required/],
    [['credits', 'add', '--tenant', 'ten_nobody', '--amount', '5'], /no tenant ten_nobody/],
  ] as const) {
    const run = await admin([...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
  assert.equal(
    (
      (
        await s.doc.send(
          new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId: 'ten_payer' } }),
        )
      ).Item as TenantRecord
    ).creditBalance,
    1003,
  );
  const help = await admin(['credits', 'add', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--amount/);
});

test('usage export writes the ledger of a period as CSV or JSON', async () => {
  const item = (ts: string, jobId: string, user: string | undefined, charge: number) => ({
    tenantId: 'ten_export',
    sk: usageSortKey(Date.parse(ts), jobId),
    jobId,
    ts,
    keyId: 'key1',
    ...(user !== undefined ? { user } : {}),
    model: 'tiny',
    status: 'succeeded',
    images: 1,
    megapixels: 0.0041,
    steps: 4,
    quote: charge,
    charge,
  });
  for (const u of [
    item('2026-02-28T23:59:59.000Z', 'gen_before', 'x', 5),
    item('2026-03-01T00:00:00.000Z', 'gen_one', 'alice, "the admin"', 1250),
    item('2026-03-15T10:00:00.000Z', 'gen_two', '=cmd', 7),
    item('2026-04-01T00:00:00.000Z', 'gen_after', undefined, 9),
  ]) {
    await s.doc.send(new PutCommand({ TableName: s.resources.tables.usage, Item: u }));
  }
  const csv = await admin([
    'usage',
    'export',
    '--tenant',
    'ten_export',
    '--from',
    '2026-03-01',
    '--to',
    '2026-04-01',
  ]);
  assert.equal(csv.code, 0, csv.stderr);
  assert.deepEqual(csv.stdout.trim().split('\n'), [
    'ts,job_id,key_id,user,model,status,images,megapixels,steps,quote,charge',
    '2026-03-01T00:00:00.000Z,gen_one,key1,"alice, ""the admin""",tiny,succeeded,1,0.0041,4,1.250,1.250',
    "2026-03-15T10:00:00.000Z,gen_two,key1,'=cmd,tiny,succeeded,1,0.0041,4,0.007,0.007",
  ]);
  const rows = json<{ job_id: string; charge: string; user: string }[]>(
    await admin([
      'usage',
      'export',
      '--tenant',
      'ten_export',
      '--from',
      '2026-03-01',
      '--to',
      '2026-04-01',
      '--format',
      'json',
    ]),
  );
  assert.deepEqual(
    rows.map((r) => [r.job_id, r.charge]),
    [
      ['gen_one', '1.250'],
      ['gen_two', '0.007'],
    ],
  );
  const none = await admin([
    'usage',
    'export',
    '--tenant',
    'ten_nobody',
    '--from',
    '2026-03-01',
    '--to',
    '2026-04-01',
  ]);
  assert.equal(none.stdout.trim(), 'ts,job_id,key_id,user,model,status,images,megapixels,steps,quote,charge');
  for (const [args, message] of [
    [['usage', 'export', '--from', '2026-03-01', '--to', '2026-04-01'], /--tenant is required/],
    [
      ['usage', 'export', '--tenant', 't', '--from', 'March', '--to', '2026-04-01'],
      /--from: "March" is not an ISO 8601 date/,
    ],
    [
      ['usage', 'export', '--tenant', 't', '--from', '2026-04-01', '--to', '2026-03-01'],
      /--to: must be after --from/,
    ],
    [['usage', 'export', '--tenant', 't', '--from', '2025-01-01', '--to', '2026-04-01'], /at most 366 days/],
    [
      ['usage', 'export', '--tenant', 't', '--from', '2026-03-01', '--to', '2026-04-01', '--format', 'xml'],
      /--format: must be csv or json/,
    ],
  ] as const) {
    const run = await admin([...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
});

test('caps set: a monthly spend cap the edge enforces, then removed', async () => {
  json(await admin(['tenants', 'create', '--name', 'Capped', '--id', 'ten_capped', '--json']));
  const key = json<{ key: string }>(await admin(['keys', 'create', '--tenant', 'ten_capped', '--json']));
  // tiny at its defaults costs 17 millicredits.
  const priced = TEST_MODELS.map((m) =>
    m.id === 'tiny' ? { ...m, price: { millicredits_per_megapixel_step: 1000 } } : m,
  );
  const { app } = s.appWith({ [EDGE_ENV.MODELS]: JSON.stringify(priced) });
  const create = () =>
    app.request('/v1/generations', {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'capped' }),
    });
  const month = new Date().toISOString().slice(0, 7);
  const set = json<{ tenant: string; monthly_spend_cap: string | null; month: string; spent: string }>(
    await admin(['caps', 'set', '--tenant', 'ten_capped', '--monthly', '0.04', '--json']),
  );
  assert.deepEqual(set, { tenant: 'ten_capped', monthly_spend_cap: '0.040', month, spent: '0.000' });
  assert.equal((await create()).status, 202);
  assert.equal((await create()).status, 202);
  const refused = await create();
  assert.equal(refused.status, 402);
  assert.equal(((await refused.json()) as { code: string }).code, 'spend_cap_exceeded');
  const stored = (
    await s.doc.send(
      new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId: 'ten_capped' } }),
    )
  ).Item as TenantRecord;
  assert.deepEqual(
    [stored.monthlySpendCap, stored.spentThisMonth, stored.creditBalance],
    [40, 34, undefined],
  );

  const raised = await admin(['caps', 'set', '--tenant', 'ten_capped', '--monthly', '1']);
  assert.equal(raised.code, 0, raised.stderr);
  assert.equal(
    raised.stdout.trim(),
    `tenant ten_capped: monthly spend cap 1.000 credits (0.034 spent in ${month})`,
  );
  assert.equal((await create()).status, 202);
  const removed = await admin(['caps', 'set', '--tenant', 'ten_capped', '--monthly', 'none']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /monthly spend cap removed/);
  const after = (
    await s.doc.send(
      new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId: 'ten_capped' } }),
    )
  ).Item as TenantRecord;
  assert.equal(after.monthlySpendCap, undefined);

  for (const [args, message] of [
    [
      ['caps', 'set', '--tenant', 'ten_capped', '--monthly', 'lots'],
      /--monthly: must be a number of credits/,
    ],
    [['caps', 'set', '--tenant', 'ten_capped', '--monthly', '1.0001'], /--monthly/],
    [['caps', 'set', '--tenant', 'ten_capped'], /--monthly is required/],
    [['caps', 'set', '--monthly', '5'], /--tenant is required/],
    [['caps', 'set', '--tenant', 'ten_nobody', '--monthly', '5'], /no tenant ten_nobody/],
  ] as const) {
    const run = await admin([...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
  const help = await admin(['caps', 'set', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--monthly CREDITS\|none/);
});

test('webhook secrets: created with the tenant, shown, rotated (both sign), rotation finished', async () => {
  const created = json<{ webhook_secret: string }>(
    await admin(['tenants', 'create', '--name', 'Hooks', '--id', 'ten_hooks', '--json']),
  );
  assert.match(created.webhook_secret, /^whsec_[A-Za-z0-9+/=]+$/);
  const shown = json<{ webhook_secret: string; previous_webhook_secret: string | null }>(
    await admin(['webhooks', 'secret', '--tenant', 'ten_hooks', '--json']),
  );
  assert.deepEqual(shown, {
    tenant: 'ten_hooks',
    webhook_secret: created.webhook_secret,
    previous_webhook_secret: null,
  });
  const rotated = json<{ webhook_secret: string; rotating: boolean }>(
    await admin(['webhooks', 'rotate', '--tenant', 'ten_hooks', '--json']),
  );
  assert.notEqual(rotated.webhook_secret, created.webhook_secret);
  assert.equal(rotated.rotating, true);
  const stored = await s.doc.send(
    new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId: 'ten_hooks' } }),
  );
  const tenant = stored.Item as TenantRecord;
  assert.equal(tenant.webhookSecret, rotated.webhook_secret);
  assert.equal(tenant.webhookSecretPrevious, created.webhook_secret);
  // During the rotation a delivery carries a signature for each secret.
  const headers = await signWebhook(
    [tenant.webhookSecret!, tenant.webhookSecretPrevious!],
    'evt_1',
    1_700_000_000,
    '{"x":1}',
  );
  assert.equal(headers['webhook-signature']!.split(' ').length, 2);
  assert.equal((await admin(['webhooks', 'finish-rotation', '--tenant', 'ten_hooks'])).code, 0);
  const after = (
    await s.doc.send(
      new GetCommand({ TableName: s.resources.tables.tenants, Key: { tenantId: 'ten_hooks' } }),
    )
  ).Item as TenantRecord;
  assert.equal(after.webhookSecretPrevious, undefined);
  assert.equal((await admin(['webhooks', 'rotate', '--tenant', 'ten_nobody'])).code, 2);
});
