import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCursor, encodeCursor } from './cursor.js';
import { isJobId, newJobId } from './job-id.js';

test('job ids are gen_ + 26 Crockford characters and sort by creation time', () => {
  const ids = [1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 2 ** 47].map((t) => newJobId(t));
  for (const id of ids) assert.ok(isJobId(id), id);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(newJobId(0).slice(4, 14), '0000000000');
  assert.notEqual(newJobId(5), newJobId(5));
  for (const bad of [
    'gen_',
    'gen_0000000000000000000000000I',
    'gen_0000000000000000000000000a',
    'job_01M889VXD4MTCPREBJNPFH520H',
  ]) {
    assert.ok(!isJobId(bad), bad);
  }
});

test('cursors round-trip and refuse anything else', () => {
  const pos = { createdAt: 1_700_000_000_123, jobId: newJobId(1_700_000_000_123) };
  assert.deepEqual(decodeCursor(encodeCursor(pos)), pos);
  const forged = Buffer.from(JSON.stringify({ c: 1, j: '../x' })).toString('base64url');
  for (const bad of ['', '!!', forged, Buffer.from('[]').toString('base64url'), 'a'.repeat(600)]) {
    assert.equal(decodeCursor(bad), null, bad);
  }
});
