/**
 * Keeps README.md true: every shell and JavaScript block in it is either run here, covered by
 * `.ci/run`, or marked with a written reason why it cannot run on this machine. A block nobody
 * marked fails the test, so a new example cannot slip in untested.
 *
 * Marks (in the fence's info string, after the language; GitHub ignores them):
 *   test             run it (bash for shell blocks, node for JavaScript) and expect exit code 0
 *   test-server      the long-running command the other blocks talk to (`npm start`); started
 *                    first, its banner's `export …` lines become their environment, as a user
 *                    pastes them
 *   ci               every command in it is one `.ci/run` runs (see COVERED_BY_CI)
 *   skip-test="why"  not runnable here, with the reason
 * and, with `test`:
 *   expect='text'    stdout must contain text
 *   expect-file=P    the block must leave the file P (a PNG must start with the PNG signature)
 *   file=NAME        the JavaScript block is saved under NAME (as the README tells the reader)
 *
 * Blocks run in document order, in one scratch folder under .tmp/ inside the repository (so `npx`,
 * `npm run` and `import 'openai'` resolve exactly as they do for a reader in a clone).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);
const JS_LANGS = new Set(['js', 'mjs', 'javascript', 'ts', 'typescript']);
const MARKS = ['test', 'test-server', 'ci', 'skip-test'] as const;
const KNOWN_ATTRIBUTES = new Set<string>([...MARKS, 'expect', 'expect-file', 'file']);

/**
 * Commands a `ci` block may hold, each with what in `.ci/run` shows it runs there. Running them here
 * would reinstall node_modules under the other tests or run this suite inside itself.
 */
const COVERED_BY_CI: Record<string, { inCiRun: RegExp; reason: string }> = {
  'export ONNXRUNTIME_NODE_INSTALL=skip': {
    inCiRun: /^export ONNXRUNTIME_NODE_INSTALL=skip$/m,
    reason: '.ci/run sets it before its clean install',
  },
  'npm install': {
    inCiRun: /^npm ci\b/m,
    reason:
      '.ci/run deletes node_modules and installs from scratch (npm ci: the same tree, from the lock file)',
  },
  'npm ci': { inCiRun: /^npm ci\b/m, reason: '.ci/run runs it on a clean tree' },
  'npm test': {
    inCiRun: /^npm test$/m,
    reason: '.ci/run runs the whole suite; this test is part of it',
  },
  'npm run lint': { inCiRun: /^npm run lint$/m, reason: '.ci/run runs it' },
  'npm run typecheck': { inCiRun: /^npm run typecheck$/m, reason: '.ci/run runs it' },
  'npm run synth': { inCiRun: /^npm run synth$/m, reason: '.ci/run runs it (offline, cdk-nag included)' },
};

export interface CodeBlock {
  lang: string;
  attributes: Map<string, string | true>;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
}

/** `test expect='a b' file=x.mjs skip-test="why"` → attributes; values may be quoted either way. */
export function parseInfoAttributes(info: string, line: number): Map<string, string | true> {
  const attributes = new Map<string, string | true>();
  const pattern = /\s*([a-z][a-z-]*)(?:=(?:"([^"]*)"|'([^']*)'|([^\s"']+)))?/gy;
  let rest = info.trim();
  while (rest.length > 0) {
    pattern.lastIndex = 0;
    const m = pattern.exec(rest);
    if (!m || m[0].length === 0)
      throw new Error(`README.md:${line}: cannot read the fence attributes "${info}"`);
    const name = m[1]!;
    if (attributes.has(name)) throw new Error(`README.md:${line}: attribute ${name} given twice`);
    attributes.set(name, m[2] ?? m[3] ?? m[4] ?? true);
    rest = rest.slice(m[0].length).trimStart();
  }
  return attributes;
}

/** The fenced code blocks of a Markdown text (``` or ~~~, indented up to 3 spaces). */
export function parseCodeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang, info] = open as unknown as [string, string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    const close = new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`);
    while (j < lines.length && !close.test(lines[j]!)) {
      // Content lines lose the fence's own indentation, as CommonMark reads them.
      body.push(lines[j]!.replace(new RegExp(`^ {0,${indent.length}}`), ''));
      j++;
    }
    if (j === lines.length) throw new Error(`README.md:${i + 1}: code block never closed`);
    blocks.push({
      lang: lang.toLowerCase(),
      attributes: parseInfoAttributes(info, i + 1),
      code: `${body.join('\n')}\n`,
      line: i + 1,
    });
    i = j;
  }
  return blocks;
}

/** The commands of a shell block: comments and blank lines dropped, continuations joined. */
function shellCommands(code: string): string[] {
  return code
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l.length > 0);
}

type Kind = 'shell' | 'js';

function kindOf(block: CodeBlock): Kind | null {
  if (SHELL_LANGS.has(block.lang)) return 'shell';
  if (JS_LANGS.has(block.lang)) return 'js';
  return null;
}

/** Checks the marks; returns what is wrong, one line per problem. */
function checkMarks(blocks: CodeBlock[], ciRun: string): string[] {
  const problems: string[] = [];
  for (const b of blocks) {
    const at = `README.md:${b.line} (\`\`\`${b.lang})`;
    for (const name of b.attributes.keys()) {
      if (!KNOWN_ATTRIBUTES.has(name)) problems.push(`${at}: unknown attribute "${name}"`);
    }
    const kind = kindOf(b);
    const marks = MARKS.filter((m) => b.attributes.has(m));
    if (kind === null) {
      if (marks.length > 0) problems.push(`${at}: only shell and JavaScript blocks can be run`);
      continue;
    }
    if (marks.length !== 1) {
      problems.push(
        `${at}: needs exactly one of test, test-server, ci, skip-test="reason" (found ${marks.join(', ') || 'none'})`,
      );
      continue;
    }
    const mark = marks[0]!;
    const skip = b.attributes.get('skip-test');
    if (mark === 'skip-test' && (typeof skip !== 'string' || skip.trim().length < 5)) {
      problems.push(`${at}: skip-test needs a reason, e.g. skip-test="needs AWS credentials"`);
    }
    if (mark !== 'test' && ['expect', 'expect-file', 'file'].some((a) => b.attributes.has(a))) {
      problems.push(`${at}: expect, expect-file and file only go with test`);
    }
    if ((mark === 'ci' || mark === 'test-server') && kind !== 'shell') {
      problems.push(`${at}: ${mark} is for shell blocks`);
    }
    if (mark === 'ci') {
      for (const command of shellCommands(b.code)) {
        const covered = COVERED_BY_CI[command];
        if (!covered) problems.push(`${at}: "${command}" is not a command .ci/run runs; mark the block test`);
        else if (!covered.inCiRun.test(ciRun)) {
          problems.push(`${at}: "${command}" is listed as covered by .ci/run, but .ci/run no longer runs it`);
        }
      }
    }
  }
  const servers = blocks.filter((b) => b.attributes.has('test-server'));
  if (servers.length !== 1)
    problems.push(`README.md: exactly one test-server block expected, found ${servers.length}`);
  return problems;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (or kills it after `timeoutMs`). */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number) {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Signals the child's whole process group (it was spawned detached, so the group is its own). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** `export A=1 B=2` lines of a banner → { A: '1', B: '2' } (values are single tokens there). */
export function parseExportLines(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*export\s+(.+)$/.exec(line);
    if (!m) continue;
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`cannot read "${pair}" in the banner line "${line.trim()}"`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
const blocks = parseCodeBlocks(readme);

describe('README.md code blocks', () => {
  test('the parser reads fences, languages and attributes', () => {
    const md = [
      'text',
      '```sh test expect=\'"status":"succeeded"\' file=a.mjs',
      'echo 1 # one',
      '```',
      '  ~~~~js skip-test="needs AWS"',
      '  const a = 1;',
      '  ~~~~',
      '```',
      'plain',
      '```',
    ].join('\n');
    const parsed = parseCodeBlocks(md);
    assert.equal(parsed.length, 3);
    assert.equal(parsed[0]!.lang, 'sh');
    assert.equal(parsed[0]!.attributes.get('test'), true);
    assert.equal(parsed[0]!.attributes.get('expect'), '"status":"succeeded"');
    assert.equal(parsed[0]!.attributes.get('file'), 'a.mjs');
    assert.equal(parsed[0]!.code, 'echo 1 # one\n');
    assert.equal(parsed[1]!.lang, 'js');
    assert.equal(parsed[1]!.attributes.get('skip-test'), 'needs AWS');
    assert.equal(parsed[1]!.code, 'const a = 1;\n');
    assert.equal(parsed[1]!.line, 5);
    assert.equal(parsed[2]!.lang, '');
    assert.throws(() => parseCodeBlocks('```sh\necho\n'), /never closed/);
    assert.throws(() => parseInfoAttributes('test test', 1), /given twice/);
    assert.deepEqual(parseExportLines('x\n  export A=1 B=http://h:1\n'), { A: '1', B: 'http://h:1' });
  });

  test('an unmarked block, an empty reason or an unknown command in a ci block is refused', () => {
    const ciRun = 'npm ci --no-audit\nnpm test\n';
    const server = '```sh test-server\nnpm start\n```\n';
    assert.deepEqual(checkMarks(parseCodeBlocks(`${server}\`\`\`sh test\necho\n\`\`\`\n`), ciRun), []);
    const unmarked = checkMarks(parseCodeBlocks(`${server}\`\`\`bash\necho\n\`\`\`\n`), ciRun);
    assert.match(unmarked.join('\n'), /README\.md:4 .*needs exactly one of test/);
    const noReason = checkMarks(parseCodeBlocks(`${server}\`\`\`js skip-test=""\nx\n\`\`\`\n`), ciRun);
    assert.match(noReason.join('\n'), /skip-test needs a reason/);
    const typo = checkMarks(parseCodeBlocks(`${server}\`\`\`sh tset\necho\n\`\`\`\n`), ciRun);
    assert.match(typo.join('\n'), /unknown attribute "tset"/);
    const notCi = checkMarks(parseCodeBlocks(`${server}\`\`\`sh ci\nnpm test\nrm -rf x\n\`\`\`\n`), ciRun);
    assert.deepEqual(notCi, [
      'README.md:4 (```sh): "rm -rf x" is not a command .ci/run runs; mark the block test',
    ]);
    const dropped = checkMarks(parseCodeBlocks(`${server}\`\`\`sh ci\nnpm run lint\n\`\`\`\n`), ciRun);
    assert.match(dropped.join('\n'), /\.ci\/run no longer runs it/);
  });

  test('every shell and JavaScript block in README.md is marked', async () => {
    const ciRun = await readFile(join(ROOT, '.ci/run'), 'utf8');
    assert.deepEqual(checkMarks(blocks, ciRun), []);
    const runnable = blocks.filter((b) => kindOf(b) !== null);
    assert.ok(runnable.filter((b) => b.attributes.has('test')).length >= 5, 'most examples should run');
  });
});

describe('README.md examples run against `npm start`', { concurrency: false }, () => {
  const work = join(ROOT, '.tmp', `readme-${process.pid}-${randomBytes(3).toString('hex')}`);
  const server = blocks.find((b) => b.attributes.has('test-server'));
  let stack: ChildProcess | undefined;
  let stackOutput = '';
  // What a reader has: their own environment plus the lines npm start told them to export.
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  // node:test marks its children with this; the examples are not test files.
  delete env['NODE_TEST_CONTEXT'];

  before(async () => {
    assert.ok(server, 'README.md has no test-server block');
    await mkdir(work, { recursive: true });
    // PORT=0: a free port, so this never collides with a developer's own npm start on 8787.
    const child = spawn('bash', ['-c', server.code], {
      cwd: work,
      env: { ...env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    stack = child;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stackOutput += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stackOutput += d;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`npm start printed no banner in 120 s:\n${stackOutput}`)),
        120_000,
      );
      const check = () => {
        // The banner ends with this line; everything a reader copies is above it.
        if (/Ctrl-C stops everything\./.test(stackOutput)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited with ${code}:\n${stackOutput}`));
      });
    });
    child.removeAllListeners('exit');
    const exported = parseExportLines(stackOutput);
    for (const name of ['SD3_API_URL', 'SD3_API_KEY', 'SD3_DYNAMODB_ENDPOINT']) {
      assert.ok(exported[name], `npm start's banner has no export of ${name}:\n${stackOutput}`);
    }
    Object.assign(env, exported);
  });

  after(async () => {
    if (stack && stack.exitCode === null) {
      const exited = new Promise<void>((resolve) => stack!.once('close', () => resolve()));
      killGroup(stack, 'SIGTERM');
      const timer = setTimeout(() => killGroup(stack!, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(work, { recursive: true, force: true });
  });

  for (const block of blocks.filter((b) => b.attributes.has('test'))) {
    const first = block.code
      .split('\n')
      .find((l) => l.trim() && !l.trim().startsWith('#') && !l.startsWith('//'));
    const file = block.attributes.get('file');
    const title = typeof file === 'string' ? file : (first ?? '').trim().slice(0, 60);
    test(`README.md:${block.line} ${block.lang}: ${title}`, async () => {
      const kind = kindOf(block)!;
      let result: RunResult;
      if (kind === 'shell') {
        result = await run('bash', ['-euo', 'pipefail', '-c', block.code], work, env, 120_000);
      } else {
        const name = typeof file === 'string' ? file : `readme-${block.line}.mjs`;
        await writeFile(join(work, name), block.code);
        result = await run(process.execPath, [name], work, env, 120_000);
      }
      const shown = `exit ${result.code ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}\n--- npm start\n${stackOutput.slice(-3000)}`;
      assert.equal(result.code, 0, `README.md:${block.line} failed:\n${shown}`);
      const expect = block.attributes.get('expect');
      if (typeof expect === 'string') {
        assert.ok(
          result.stdout.includes(expect),
          `README.md:${block.line}: stdout lacks ${expect}:\n${shown}`,
        );
      }
      const expectFile = block.attributes.get('expect-file');
      if (typeof expectFile === 'string') {
        const path = join(work, expectFile);
        const info = await stat(path).catch(() => null);
        assert.ok(info && info.size > 0, `README.md:${block.line}: ${expectFile} was not written:\n${shown}`);
        if (expectFile.endsWith('.png')) {
          const head = (await readFile(path)).subarray(0, 8);
          assert.deepEqual(head, PNG_SIGNATURE, `${expectFile} is not a PNG`);
        }
      }
    });
  }
});
