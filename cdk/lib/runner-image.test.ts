/**
 * The runner image cannot be built here (no Docker, no GPU), so its Dockerfile is parsed and checked
 * for what the runner needs: CUDA 12 + cuDNN 9 base, Node 22, a production install of the runner
 * workspace with the CUDA provider libraries fetched, the sources, a non-root user, a health check
 * and the entry point; and the ignore file keeps build junk out of the context.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from './paths.js';
import { RUNNER_DOCKERFILE, RUNNER_HEALTH_PORT, RUNNER_UID, runnerIgnorePatterns } from './runner-image.js';

interface Instruction {
  op: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\w+)\s+([\s\S]*)$/.exec(full);
    assert.ok(m, `not an instruction: ${full}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ') });
  }
  return out;
}

/** Docker ignore semantics: last matching pattern wins, `!` re-includes, a matched folder hides its contents. */
function isIgnored(path: string, patterns: string[]): boolean {
  const toRegex = (p: string) =>
    new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '(?:.*/)?')
        .replace(/\*\*/g, '.*')
        .replace(/(?<!\.)\*/g, '[^/]*')}(?:/.*)?$`,
    );
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const p = (negate ? raw.slice(1) : raw).replace(/\/$/, '');
    if (toRegex(p).test(path)) ignored = !negate;
  }
  return ignored;
}

const text = readFileSync(join(REPO_ROOT, RUNNER_DOCKERFILE), 'utf8');
const all = parseDockerfile(text);
const stages: Instruction[][] = [];
for (const ins of all) {
  if (ins.op === 'FROM') stages.push([]);
  stages.at(-1)?.push(ins);
}
const final = stages.at(-1)!;
const argDefault = (name: string) =>
  all.find((i) => i.op === 'ARG' && i.args.startsWith(`${name}=`))?.args.split('=')[1];
const patterns = runnerIgnorePatterns();

describe('gpu-runner/Dockerfile', () => {
  test('CUDA 12 + cuDNN 9 runtime base and Node 22', () => {
    assert.match(
      argDefault('CUDA_IMAGE') ?? '',
      /^nvidia\/cuda:12\.\d+(\.\d+)?-cudnn-runtime-ubuntu(22|24)\.04$/,
    );
    assert.match(argDefault('NODE_VERSION') ?? '', /^22\.\d+\.\d+$/);
    assert.ok(
      stages.every((s) => s[0]!.args.startsWith('$' + '{CUDA_IMAGE}')),
      'every stage on the CUDA base',
    );
    // The Node tarball is checked against the release's checksums.
    assert.ok(
      all.some((i) => i.op === 'RUN' && /SHASUMS256\.txt/.test(i.args) && /sha256sum -c/.test(i.args)),
    );
  });

  test('production install of the runner workspace with the CUDA provider libraries', () => {
    const install = all.find((i) => i.op === 'RUN' && i.args.includes('npm ci'))!;
    assert.match(install.args, /npm ci --omit=dev/);
    assert.match(install.args, /-w gpu-runner/);
    assert.match(
      install.args,
      /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install/,
    );
    assert.match(install.args, /libonnxruntime_providers_cuda\.so/);
    const copies = all.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).map((i) => i.args);
    for (const needed of [
      'package.json package-lock.json',
      'shared/package.json',
      'gpu-runner/package.json',
    ]) {
      assert.ok(
        copies.some((c) => c.startsWith(needed)),
        `copies ${needed}`,
      );
    }
  });

  test('the runtime stage has the dependencies, shared/ and gpu-runner/', () => {
    const copies = final.filter((i) => i.op === 'COPY').map((i) => i.args);
    assert.ok(copies.some((c) => /^--from=deps \/app /.test(c)));
    assert.ok(copies.includes('shared ./shared'));
    assert.ok(copies.includes('gpu-runner ./gpu-runner'));
  });

  test('every file the build copies survives the ignore file; junk does not', () => {
    for (const kept of [
      'package.json',
      'package-lock.json',
      'shared/package.json',
      'shared/src/config-keys.ts',
      'gpu-runner/package.json',
      'gpu-runner/bin/sd3-runner.js',
      'gpu-runner/bin/sd3.js',
      'gpu-runner/src/service/main.ts',
      'edge/package.json',
      'cdk/package.json',
    ]) {
      assert.equal(isIgnored(kept, patterns), false, `${kept} reaches the build`);
    }
    for (const gone of [
      'node_modules/x/index.js',
      'gpu-runner/node_modules/x',
      'shared/node_modules/x',
      '.tmp/a',
      'gpu-runner/.tmp/a',
      'cdk/cdk.out/manifest.json',
      'cdk/lib/stack.ts',
      'edge/src/app.ts',
      '.git/HEAD',
      'gpu-runner/src/models/models.test.ts',
      'README.md',
    ]) {
      assert.equal(isIgnored(gone, patterns), true, `${gone} is kept out`);
    }
    for (const p of ['**/node_modules', '**/.tmp', '**/cdk.out']) assert.ok(patterns.includes(p), p);
  });

  test('non-root user, health check on /healthz, the runner as the command', () => {
    const user = final.findLast((i) => i.op === 'USER');
    assert.ok(user, 'USER in the runtime stage');
    assert.ok(!['root', '0', '0:0'].includes(user.args));
    assert.ok(final.some((i) => i.op === 'RUN' && i.args.includes(`--uid ${RUNNER_UID}`)));
    const health = final.find((i) => i.op === 'HEALTHCHECK');
    assert.ok(health);
    assert.match(health.args, /\/healthz/);
    assert.match(health.args, new RegExp(String(RUNNER_HEALTH_PORT)));
    const cmd = final.at(-1)!;
    assert.equal(cmd.op, 'CMD');
    assert.deepEqual(JSON.parse(cmd.args), ['node', 'gpu-runner/bin/sd3-runner.js']);
    assert.ok(final.indexOf(user) < final.indexOf(cmd));
    for (const entry of ['gpu-runner/bin/sd3-runner.js', 'gpu-runner/bin/sd3.js']) {
      assert.ok(existsSync(join(REPO_ROOT, entry)), `${entry} exists`);
    }
  });
});
