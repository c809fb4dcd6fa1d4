/**
 * The `sd3` command as users run it: a real process, real files, exit codes and what is (not)
 * left at --out.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readImageMetadata } from '../image/image-codec.js';

const bin = fileURLToPath(new URL('../../bin/sd3.js', import.meta.url));
const referenceDir = new URL('../../../test/reference/', import.meta.url);
const reference = async (name: string) => JSON.parse(await readFile(new URL(name, referenceDir), 'utf8'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sd3(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

let root: string;
let model: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sd3-cli-'));
  model = join(root, 'tiny');
  const r = await sd3(['tiny-model', '--out', model]);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('diagnostics match the diffusers references', () => {
  test('sd3 scheduler', async () => {
    const ref = await reference('scheduler.json');
    const r = await sd3(['scheduler', '--steps', '28']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.timesteps, ref.t2i_steps28_shift3.timesteps);
    assert.deepEqual(out.sigmas, ref.t2i_steps28_shift3.sigmas);
    const img = JSON.parse((await sd3(['scheduler', '--steps', '50', '--strength', '0.6'])).stdout);
    assert.deepEqual(img.timesteps, ref.t2i_steps50_shift3.timesteps.slice(20));
    assert.deepEqual(img.sigmas, ref.t2i_steps50_shift3.sigmas.slice(20));
  });

  test('sd3 noise', async () => {
    const ref = (await reference('randn.json')).x86_avx2;
    for (const [dtype, shape] of [
      ['float32', '1,16,128,128'],
      ['float32', '1,16,8,8'],
      ['float16', '1,16,8,8'],
    ] as const) {
      const r = await sd3(['noise', '--seed', '42', '--shape', shape, '--dtype', dtype]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      const expected = ref[`${dtype}/seed42/${shape.replaceAll(',', 'x')}`];
      assert.equal(out.sha256, expected.sha256_le_bytes, `${dtype} ${shape}`);
      assert.deepEqual(out.head, expected.first16);
      assert.equal(out.sum, expected.sum_exact_fsum);
      assert.deepEqual(out.shape, shape.split(',').map(Number));
      assert.equal(out.dtype, dtype);
    }
  });

  test('sd3 tokenize', async () => {
    const ref = await reference('tokens.json');
    for (const p of Object.values(ref.prompts) as {
      text: string;
      clip_l: { input_ids: number[] };
      clip_g: { input_ids: number[] };
      t5: { input_ids: number[] };
    }[]) {
      const r = await sd3(['tokenize', '--model', model, '--prompt', p.text]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), {
        clip_l: p.clip_l.input_ids,
        clip_g: p.clip_g.input_ids,
        t5: p.t5.input_ids,
      });
    }
    const short = JSON.parse(
      (await sd3(['tokenize', '--model', model, '--prompt', 'a cat', '--max-sequence-length', '77'])).stdout,
    );
    assert.equal(short.t5.length, 77);
  });
});

describe('sd3 generate', () => {
  test('writes a PNG with the parameters and prints a JSON summary', async () => {
    const out = join(root, 'cat.png');
    const r = await sd3([
      'generate',
      '--model',
      model,
      '--prompt',
      'a cat',
      '--steps',
      '3',
      '--seed',
      '42',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.seed, '42');
    assert.equal(summary.steps_run, 3);
    assert.equal(summary.outputs[0].path, out);
    assert.equal(summary.dtype, 'float32');
    assert.equal(typeof summary.timings_ms.denoise, 'number');
    const file = await readFile(out);
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 64);
    assert.equal(meta.height, 64);
    assert.equal((await readImageMetadata(file))?.['prompt'], 'a cat');
    // Same seed, same bytes.
    const again = join(root, 'cat-again.png');
    assert.equal(
      (
        await sd3([
          'generate',
          '--model',
          model,
          '--prompt',
          'a cat',
          '--steps',
          '3',
          '--seed',
          '42',
          '--out',
          again,
        ])
      ).code,
      0,
    );
    assert.deepEqual(await readFile(again), file);
  });

  test('n > 1, WebP, img2img and --no-t5', async () => {
    const out = join(root, 'many.webp');
    const r = await sd3([
      'generate',
      '--model',
      model,
      '--prompt',
      'a dog',
      '--steps',
      '4',
      '--n',
      '2',
      '--seed',
      '1',
      '--image',
      join(root, 'cat.png'),
      '--strength',
      '0.5',
      '--width',
      '96',
      '--height',
      '64',
      '--no-t5',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.steps_run, 2);
    assert.equal(summary.t5, false);
    assert.deepEqual(
      summary.outputs.map((o: { path: string }) => o.path),
      [join(root, 'many-0.webp'), join(root, 'many-1.webp')],
    );
    for (const o of summary.outputs) {
      const meta = await sharp(await readFile(o.path)).metadata();
      assert.equal(meta.format, 'webp');
      assert.equal(meta.width, 96);
      assert.equal(meta.height, 64);
    }
  });

  test('bad input: exit code 2, the problem named, nothing written at --out', async () => {
    const outDir = join(root, 'bad');
    await mkdir(outDir);
    const out = join(outDir, 'x.png');
    const base = ['generate', '--model', model, '--prompt', 'x', '--steps', '2', '--out', out];
    const truncatedModel = join(root, 'truncated');
    await sd3(['tiny-model', '--out', truncatedModel]);
    const onnx = join(truncatedModel, 'transformer', 'model.onnx_data');
    await writeFile(onnx, (await readFile(onnx)).subarray(0, 100));
    const cases: [string[], RegExp][] = [
      [[...base, '--width', '100'], /--width must be a positive multiple of 16, got 100/],
      [[...base, '--steps', 'many'], /--steps must be an integer/],
      [[...base, '--strength', '0.5'], /--strength needs --image/],
      [
        [...base, '--image', join(root, 'cat.png'), '--strength', '1.5'],
        /--strength must be within \[0, 1\]/,
      ],
      [[...base, '--frobnicate'], /Unknown option '--frobnicate'/],
      [[...base, '--format', 'gif'], /--format must be one of png, jpeg, webp/],
      [[...base, '--provider', 'webgpu'], /--provider must be one of cpu, cuda, tensorrt/],
      [[...base, '--provider', 'cuda'], /execution provider 'cuda' could not be loaded/],
      [[...base, '--image', join(root, 'missing.png')], /--image: cannot read/],
      [
        ['generate', '--model', join(root, 'nope'), '--prompt', 'x', '--out', out],
        /model folder .*nope does not exist/,
      ],
      [
        ['generate', '--model', truncatedModel, '--prompt', 'x', '--out', out],
        /transformer\/model\.onnx_data is truncated/,
      ],
      [['generate', '--prompt', 'x', '--out', out], /missing required flag --model/],
      [['noise', '--seed=-4', '--shape', '1,2'], /seed: must be an integer/],
      [['noise', '--seed', '-4', '--shape', '1,2'], /Option '--seed' argument is ambiguous/],
      [['noise', '--seed', '1', '--shape', '1,0'], /--shape must be comma-separated positive integers/],
      [['scheduler', '--steps', '10', '--strength', '2'], /strength must be within \[0, 1\]/],
      [['tokenize', '--model', join(root, 'nope'), '--prompt', 'x'], /nope\/tokenizer/],
      [['tiny-model', '--out', model], /not empty|exists/],
      [['nonsense'], /unknown command 'nonsense'/],
    ];
    for (const [args, message] of cases) {
      const r = await sd3(args);
      assert.equal(r.code, 2, `${args.join(' ')}\n${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    assert.deepEqual(await readdir(outDir), []);
  });

  test('--help on every command', async () => {
    for (const command of ['generate', 'tiny-model', 'scheduler', 'noise', 'tokenize']) {
      const r = await sd3([command, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^sd3 ${command} `));
    }
    const top = await sd3(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /usage: sd3 <command>/);
  });
});
