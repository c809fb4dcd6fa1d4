import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chargeMillicredits,
  formatCredits,
  jobCost,
  parseCredits,
  quoteMillicredits,
  settlementFields,
} from './billing.js';
import { GenerationRequestSchema, ModelInfoSchema } from './generation-request.js';

test('quote: megapixels x steps x images, rounded up, exact for large numbers', () => {
  const price = { millicredits_per_megapixel_step: 10 };
  // 1024 x 1024 x 28 x 1 x 10 / 1e6 = 293.6 -> 294
  assert.equal(quoteMillicredits(price, { width: 1024, height: 1024, steps: 28, n: 1 }), 294);
  assert.equal(quoteMillicredits(price, { width: 1000, height: 1000, steps: 28, n: 2 }), 560);
  assert.equal(
    quoteMillicredits({ ...price, minimum_millicredits: 1000 }, { width: 64, height: 64, steps: 1, n: 1 }),
    1000,
  );
  const big = { millicredits_per_megapixel_step: 1_000_000 };
  assert.equal(
    quoteMillicredits(big, { width: 2048, height: 2048, steps: 500, n: 4 }),
    2048 * 2048 * 500 * 4,
  );
});

test('charge by outcome; canceled pays the steps that ran, rounded down', () => {
  assert.equal(chargeMillicredits('succeeded', 1000), 1000);
  assert.equal(chargeMillicredits('failed', 1000, 5, 10), 0);
  assert.equal(chargeMillicredits('canceled', 1000, 0, 10), 0);
  assert.equal(chargeMillicredits('canceled', 1000, 1, 3), 333);
  assert.equal(chargeMillicredits('canceled', 1000, 12, 10), 1000);
  assert.deepEqual(settlementFields({ quote: 1000, reserved: true }, 'canceled', 2, 3), {
    charge: 666,
    refund: 334,
    settlement: 'pending',
  });
  assert.deepEqual(settlementFields({ quote: 1000 }, 'failed'), {
    charge: 0,
    refund: 1000,
    settlement: 'pending',
  });
  assert.deepEqual(settlementFields({}, 'failed'), {});
});

test('credits format and parse exactly', () => {
  assert.equal(formatCredits(1250), '1.250');
  assert.equal(formatCredits(7), '0.007');
  assert.equal(formatCredits(-20), '-0.020');
  assert.equal(parseCredits('12.5'), 12_500);
  assert.equal(parseCredits('0.001'), 1);
  assert.equal(parseCredits('3'), 3000);
  assert.equal(parseCredits('0.0001'), null);
  assert.equal(parseCredits('-1'), null);
  assert.equal(parseCredits('abc'), null);
  assert.deepEqual(jobCost({ quote: 17 }), { quote: '0.017', charge: null, currency: 'credits' });
  assert.equal(jobCost({}), null);
});

test('schemas: dry_run and an optional model price', () => {
  assert.equal(GenerationRequestSchema.safeParse({ prompt: 'x', dry_run: true }).success, true);
  assert.equal(GenerationRequestSchema.safeParse({ prompt: 'x', dry_run: 'yes' }).success, false);
  const model = {
    id: 'm',
    object: 'model',
    description: '',
    default: true,
    native_size: 64,
    max_megapixels: 1,
    max_steps: 10,
    default_steps: 4,
    default_guidance_scale: 7,
    output_formats: ['png'],
  };
  assert.equal(ModelInfoSchema.safeParse(model).success, true);
  assert.equal(
    ModelInfoSchema.safeParse({ ...model, price: { millicredits_per_megapixel_step: 5 } }).success,
    true,
  );
  assert.equal(
    ModelInfoSchema.safeParse({ ...model, price: { millicredits_per_megapixel_step: 0.5 } }).success,
    false,
  );
});
