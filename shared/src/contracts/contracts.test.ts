import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inputImageKey, outputKey } from '../storage/object-keys.js';
import { digestsEqual, generateApiKey, hashSecret, parseApiKey } from './api-key.js';
import { GenerationRequestSchema, type ModelInfo, normalizeRequest } from './generation-request.js';

const model: ModelInfo = {
  id: 'sd3-medium',
  object: 'model',
  description: 'SD3 Medium',
  default: true,
  native_size: 1024,
  max_megapixels: 2.1,
  max_steps: 100,
  default_steps: 28,
  default_guidance_scale: 7,
  output_formats: ['png', 'jpeg', 'webp'],
};

const fields = (body: unknown) => {
  const r = GenerationRequestSchema.safeParse(body);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
};

test('request validation names the bad fields', () => {
  assert.deepEqual(fields({ prompt: 'a cat' }), []);
  assert.deepEqual(fields({}), ['prompt']);
  assert.deepEqual(fields({ prompt: 'x', width: 100, height: 64 }), ['width']);
  assert.deepEqual(fields({ prompt: 'x', width: 64 }), ['height']);
  assert.deepEqual(fields({ prompt: 'x', n: 5 }), ['n']);
  assert.deepEqual(fields({ prompt: 'x', seed: -1 }), ['seed']);
  assert.deepEqual(fields({ prompt: 'x', seed: 2 ** 32 }), ['seed']);
  assert.deepEqual(fields({ prompt: 'x', steps: 2.5 }), ['steps']);
  assert.deepEqual(fields({ prompt: 'x', strength: 0.5 }), ['strength']);
  assert.deepEqual(fields({ prompt: 'x', aspect_ratio: '16:9', width: 64, height: 64 }), ['aspect_ratio']);
  assert.deepEqual(fields({ prompt: 'x', webhook_url: 'ftp://x' }), ['webhook_url']);
  assert.deepEqual(fields({ prompt: 'x', colour: 'red' }), ['']);
  assert.deepEqual(fields({ prompt: 'x', __proto__: { polluted: true }, constructor: 1 }), ['']);
});

test('normalization applies defaults, aspect ratios and the model limits', () => {
  const { params, errors } = normalizeRequest(
    GenerationRequestSchema.parse({ prompt: 'x' }),
    model,
    () => 1234,
  );
  assert.deepEqual(errors, []);
  assert.equal(params.width, 1024);
  assert.equal(params.seed, 1234);
  assert.equal(params.steps, 28);
  assert.equal(params.strength, null);
  const wide = normalizeRequest(
    GenerationRequestSchema.parse({ prompt: 'x', aspect_ratio: '16:9' }),
    model,
    () => 0,
  );
  assert.deepEqual([wide.params.width, wide.params.height], [1344, 768]);
  const tiny = normalizeRequest(
    GenerationRequestSchema.parse({ prompt: 'x', aspect_ratio: '16:9' }),
    { ...model, native_size: 64 },
    () => 0,
  );
  assert.deepEqual([tiny.params.width, tiny.params.height], [80, 48]);
  const big = normalizeRequest(
    GenerationRequestSchema.parse({ prompt: 'x', width: 2048, height: 2048, steps: 101 }),
    model,
    () => 0,
  );
  assert.deepEqual(
    big.errors.map((e) => e.field),
    ['width', 'steps'],
  );
  const img = normalizeRequest(GenerationRequestSchema.parse({ prompt: 'x', image: 'abc' }), model, () => 0);
  assert.equal(img.params.strength, 0.6);
});

test('API keys: format, parse, hash', async () => {
  const k = generateApiKey();
  assert.match(k.token, /^sk_[a-z0-9]{12}_[A-Za-z0-9]{40}$/);
  assert.deepEqual(parseApiKey(k.token), { keyId: k.keyId, secret: k.secret });
  assert.equal(parseApiKey('sk_short_x'), null);
  assert.equal(parseApiKey(`${k.token} `), null);
  const h = await hashSecret(k.secret);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.ok(digestsEqual(h, await hashSecret(k.secret)));
  assert.ok(!digestsEqual(h, await hashSecret(`${k.secret}x`)));
});

test('object keys stay inside the tenant prefix', () => {
  assert.equal(outputKey('ten_1', 'gen_2', 0, 'jpeg'), 'outputs/ten_1/gen_2/0.jpg');
  assert.equal(inputImageKey('ten_1', 'gen_2', 'png'), 'inputs/ten_1/gen_2/image.png');
  assert.throws(() => outputKey('../ten_2', 'gen', 0, 'png'), /safe key segment/);
  assert.throws(() => inputImageKey('ten', 'a/b', 'png'), /safe key segment/);
});
