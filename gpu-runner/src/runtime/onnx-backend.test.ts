import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOnnxModel, probeProvider } from './onnx-backend.js';

test('the CPU provider loads', async () => {
  await probeProvider('cpu');
});

test('a provider whose libraries are missing fails with a clear message, never falls back', async () => {
  // This machine has no CUDA libraries; on a GPU host the probe succeeds instead.
  try {
    await probeProvider('cuda');
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'provider_unavailable');
    assert.match((err as Error).message, /execution provider 'cuda' could not be loaded/);
  }
});

test('an unknown provider is refused', async () => {
  await assert.rejects(probeProvider('webgpu' as 'cpu'), /provider must be one of cpu, cuda, tensorrt/);
});

test('missing, empty and corrupt ONNX files are model_invalid errors naming the path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sd3-ort-'));
  try {
    const missing = join(dir, 'nope.onnx');
    await assert.rejects(loadOnnxModel(missing, { provider: 'cpu' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'model_invalid');
      assert.ok(e.message.includes(missing));
      return true;
    });
    const empty = join(dir, 'empty.onnx');
    await writeFile(empty, '');
    await assert.rejects(loadOnnxModel(empty, { provider: 'cpu' }), /empty ONNX file/);
    const corrupt = join(dir, 'corrupt.onnx');
    await writeFile(corrupt, Buffer.from('this is not a protobuf at all, just text'));
    await assert.rejects(loadOnnxModel(corrupt, { provider: 'cpu' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'model_invalid');
      assert.ok(e.message.startsWith(`cannot load ${corrupt}`));
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
