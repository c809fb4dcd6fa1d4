import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from './canonical-json.js';
import {
  EnvelopeError,
  type EnvelopePayload,
  parseSigningKeys,
  serializeEnvelope,
  signEnvelope,
  verifyEnvelope,
} from './signed-envelope.js';

const secret = new Uint8Array(32).fill(7);
const keys = new Map([['k1', secret]]);
const now = 1_800_000_000_000;
const payload: EnvelopePayload = {
  v: 1,
  jobId: 'gen_abc',
  tenantId: 'ten_1',
  model: 'sd3-medium',
  params: {
    prompt: 'a cat ✨',
    negative_prompt: '',
    width: 1024,
    height: 1024,
    steps: 28,
    guidance_scale: 7,
    seed: 42,
    n: 1,
    output_format: 'png',
    output_quality: 90,
    strength: null,
    output_ttl_seconds: 3600,
  },
  inputs: {},
  outputPrefix: 'outputs/ten_1/gen_abc/',
  issuedAt: now,
  expiresAt: now + 60_000,
  kid: 'k1',
};

async function expectError(body: string, code: string, message: RegExp, at = now) {
  await assert.rejects(verifyEnvelope(body, keys, at), (err: unknown) => {
    assert.ok(err instanceof EnvelopeError);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test('canonical JSON sorts keys at every level and drops undefined members', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, 'x', null], c: true }, u: undefined }),
    '{"a":{"c":true,"d":[1,"x",null]},"b":1}',
  );
  assert.throws(() => canonicalJson({ x: Number.NaN }), /non-finite/);
});

test('a signed envelope verifies and round-trips', async () => {
  const body = serializeEnvelope(await signEnvelope(payload, secret));
  assert.deepEqual(await verifyEnvelope(body, keys, now), payload);
  // Key order in the message does not matter, only the canonical form.
  const reordered = JSON.stringify({ sig: JSON.parse(body).sig, payload: JSON.parse(body).payload });
  assert.deepEqual(await verifyEnvelope(reordered, keys, now), payload);
});

test('altered, forged, expired, unknown-key and malformed messages are refused', async () => {
  const signed = await signEnvelope(payload, secret);
  const altered = {
    ...signed,
    payload: { ...signed.payload, params: { ...signed.payload.params, steps: 100 } },
  };
  await expectError(JSON.stringify(altered), 'envelope_invalid', /signature does not match/);
  const forged = await signEnvelope(payload, new Uint8Array(32).fill(9));
  await expectError(serializeEnvelope(forged), 'envelope_invalid', /signature does not match/);
  await expectError(serializeEnvelope(signed), 'envelope_expired', /expired/, now + 60_001);
  const otherKid = await signEnvelope({ ...payload, kid: 'k2' }, secret);
  await expectError(serializeEnvelope(otherKid), 'envelope_invalid', /unknown signing key id k2/);
  await expectError('not json', 'envelope_invalid', /not JSON/);
  await expectError('{"payload":{"jobId":"gen_x"},"sig":"abc"}', 'envelope_invalid', /malformed/);
  try {
    await verifyEnvelope('{"payload":{"jobId":"gen_x"},"sig":"abc"}', keys, now);
  } catch (err) {
    assert.equal((err as EnvelopeError).jobId, 'gen_x');
  }
});

test('signing keys parse from JSON and must be long enough', () => {
  const k = parseSigningKeys(JSON.stringify({ a: Buffer.alloc(32, 1).toString('base64') }));
  assert.equal(k.get('a')!.length, 32);
  assert.throws(() => parseSigningKeys('{"a":"c2hvcnQ="}'), /at least 32 bytes/);
  assert.throws(() => parseSigningKeys('[]'), /JSON object/);
  assert.throws(() => parseSigningKeys('nope'), /JSON object/);
});
