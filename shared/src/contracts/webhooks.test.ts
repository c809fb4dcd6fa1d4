import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import {
  DEFAULT_WEBHOOK_EVENTS,
  generateWebhookSecret,
  signWebhook,
  verifyWebhook,
  webhookSecretBytes,
  webhookWants,
} from './webhooks.js';

test('secrets are whsec_ + base64 of 32 random bytes', () => {
  const a = generateWebhookSecret();
  const b = generateWebhookSecret();
  assert.match(a, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.notEqual(a, b);
  assert.equal(webhookSecretBytes(a).length, 32);
  assert.throws(() => webhookSecretBytes('abc'), /whsec_/);
  assert.throws(() => webhookSecretBytes('whsec_AAAA'), /24 to 64 bytes/);
});

test('signatures are v1,base64(HMAC-SHA256(key, id.timestamp.body)), one per secret', async () => {
  const s1 = generateWebhookSecret();
  const s2 = generateWebhookSecret();
  const body = '{"type":"generation.succeeded"}';
  const headers = await signWebhook([s1, s2], 'gen_X.0003', 1_700_000_000, body);
  const mac = (s: string) =>
    createHmac('sha256', Buffer.from(s.slice(6), 'base64'))
      .update(`gen_X.0003.1700000000.${body}`)
      .digest('base64');
  assert.deepEqual(headers, {
    'webhook-id': 'gen_X.0003',
    'webhook-timestamp': '1700000000',
    'webhook-signature': `v1,${mac(s1)} v1,${mac(s2)}`,
  });
  const h = {
    id: 'gen_X.0003',
    timestamp: '1700000000',
    signature: headers['webhook-signature']!,
  };
  assert.equal(await verifyWebhook(s2, h, body, 1_700_000_010), true);
  assert.equal(await verifyWebhook(s1, h, `${body} `, 1_700_000_010), false, 'altered body');
  assert.equal(await verifyWebhook(generateWebhookSecret(), h, body, 1_700_000_010), false, 'other secret');
  assert.equal(await verifyWebhook(s1, h, body, 1_700_000_400), false, 'outside the tolerance');
  assert.equal(await verifyWebhook(s1, { ...h, signature: `v2,${mac(s1)}` }, body, 1_700_000_010), false);
});

test('without webhook_events only terminal events are wanted', () => {
  assert.deepEqual(DEFAULT_WEBHOOK_EVENTS, [
    'generation.succeeded',
    'generation.failed',
    'generation.canceled',
  ]);
  assert.equal(webhookWants(undefined, 'generation.progress'), false);
  assert.equal(webhookWants(undefined, 'generation.preview'), false, 'previews only when asked for');
  assert.equal(webhookWants([], 'generation.preview'), false);
  assert.equal(webhookWants(['generation.preview'], 'generation.preview'), true);
  assert.equal(webhookWants(undefined, 'generation.failed'), true);
  assert.equal(webhookWants(['generation.progress'], 'generation.progress'), true);
  assert.equal(webhookWants(['generation.progress'], 'generation.failed'), false);
});
