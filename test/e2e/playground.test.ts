/**
 * The playground page in a real browser: headless Chromium (Debian's package, or SD3_CHROMIUM)
 * driven by playwright-core against the local stack with the tiny model. Screenshots of the page
 * (desktop and a 375 px phone) are kept in test-artifacts/playground/.
 *
 * Without Chromium the test is skipped with a message, except under CI or SD3_REQUIRE_BROWSER=1,
 * where a missing browser fails it (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job } from '@sd3/shared';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { ApiClient } from './api-client.js';

const ARTIFACTS = new URL('../../test-artifacts/playground/', import.meta.url).pathname;
/** Where Debian's `chromium` package puts the browser; SD3_CHROMIUM overrides. */
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const chromiumPath = process.env['SD3_CHROMIUM'] || CANDIDATES.find((p) => existsSync(p));
const required = Boolean(process.env['CI']) || process.env['SD3_REQUIRE_BROWSER'] === '1';
const INSTALL_HINT =
  'Chromium not found: install it (Debian/Ubuntu: `sudo apt-get install -y chromium`) or point SD3_CHROMIUM at a Chromium binary';

if (!chromiumPath && required) {
  test('the playground browser test needs Chromium', () => {
    assert.fail(`${INSTALL_HINT}. CI or SD3_REQUIRE_BROWSER=1 makes this a failure.`);
  });
}

/** The observed page states, recorded in the page so quick transitions are not missed. */
interface Seen {
  statuses: string[];
  previews: string[];
  progress: number[];
}

describe('playground page', { skip: chromiumPath ? false : INSTALL_HINT }, () => {
  let dir: string;
  let stack: LocalStack;
  let api: ApiClient;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let firstJob: Job;
  const pageErrors: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sd3-playground-'));
    await mkdir(ARTIFACTS, { recursive: true });
    stack = await startLocalStack({ tinyModelDir: join(dir, 'tiny'), edgeLogs: false });
    api = new ApiClient(stack.url, stack.apiKey.token);
    browser = await chromium.launch({ executablePath: chromiumPath!, headless: true });
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      // The browser logs refused requests (the invalid-key and 400 cases) as errors: expected.
      if (msg.type() === 'error' && !/status of 40[01]/.test(msg.text())) pageErrors.push(msg.text());
    });
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function open(): Promise<void> {
    await page.goto(stack.url);
    await page.waitForSelector('html[data-ready="true"]');
  }

  async function useKey(key: string): Promise<void> {
    await page.fill('#f-key', key);
    await page.press('#f-key', 'Tab'); // the change event checks it
  }

  // In-page code is passed as strings: this project's TypeScript has no DOM types.
  const inPage = <T>(expression: string) => page.evaluate<T>(expression);
  /** Polls an in-page expression (waitForFunction would eval it in the page, which the CSP forbids). */
  const until = async (expression: string, timeout = 30_000) => {
    const deadline = Date.now() + timeout;
    while (!(await inPage<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const textOf = (id: string) => `(document.getElementById(${JSON.stringify(id)})?.textContent ?? '')`;
  const focused = () => inPage<string | undefined>('document.activeElement?.id');

  async function watch(): Promise<void> {
    await inPage(`(() => {
      const seen = { statuses: [], previews: [], progress: [] };
      window.seen = seen;
      const status = document.getElementById('run-status');
      const preview = document.getElementById('preview-image');
      const bar = document.getElementById('run-progress');
      new MutationObserver(() => {
        seen.statuses.push(status.textContent ?? '');
        if (preview.src.startsWith('data:')) seen.previews.push(preview.src);
        if (bar.hasAttribute('value')) seen.progress.push(bar.value / bar.max);
      }).observe(document.getElementById('run'), { subtree: true, childList: true, characterData: true, attributes: true });
    })()`);
  }

  const seen = () => inPage<Seen>('window.seen');

  /** Waits for the result panel to show a finished job and returns it from the API. */
  async function finished(previousId?: string): Promise<Job> {
    await until(
      `/^(Done|Failed|Canceled)/.test(${textOf('run-status')}) &&
        (document.querySelector('#run-details dd')?.textContent ?? ${JSON.stringify(previousId ?? '')}) !== ${JSON.stringify(previousId ?? '')}`,
      60_000,
    );
    const id = await page.textContent('#run-details dd');
    const { body } = await api.get(id!);
    return body;
  }

  test('an invalid key shows the API error; the key stays in sessionStorage only', async () => {
    await open();
    await useKey('sk_abcdefghijkl_0123456789abcdefghijklmnopqrstuv');
    await page.waitForSelector('#err-key:not([hidden])');
    const message = await page.textContent('#err-key');
    assert.match(message ?? '', /Missing or invalid API key/);
    assert.equal(await page.getAttribute('#f-key', 'aria-invalid'), 'true');
    // Submitting with it shows the problem's title and detail in the alert.
    await page.fill('#f-prompt', 'a fox');
    await page.click('#submit');
    await page.waitForSelector('#error-summary:not([hidden])');
    assert.match((await page.textContent('#error-summary')) ?? '', /Missing or invalid API key/);
    const stored = await inPage<{ session: string | null; local: number }>(
      "({ session: sessionStorage.getItem('sd3.playground.key'), local: localStorage.length })",
    );
    assert.equal(stored.session, 'sk_abcdefghijkl_0123456789abcdefghijklmnopqrstuv');
    assert.equal(stored.local, 0);
  });

  test('paste a key, see the quote, submit, watch progress and previews, get the image and download it', async () => {
    await open();
    await useKey(stack.apiKey.token);
    await until(`/Key accepted/.test(${textOf('key-status')})`);
    assert.equal(await page.getAttribute('#f-key', 'aria-invalid'), null);
    await page.fill('#f-prompt', 'a lighthouse at dusk');
    await page.fill('#f-negative_prompt', 'fog');
    await page.selectOption('#f-aspect_ratio', 'custom');
    await page.fill('#f-width', '64');
    await page.fill('#f-height', '64');
    await page.fill('#f-steps', '40');
    await page.fill('#f-seed', '4242');
    await page.selectOption('#f-output_format', 'png');
    assert.equal(await page.isChecked('#f-previews'), true);
    // 10 millicredits per MP-step x 64 x 64 x 40 steps = 1.6384 -> 2 millicredits.
    await until(`/Price: 0\\.002 credits/.test(${textOf('quote')})`);
    await watch();
    await page.click('#submit');
    firstJob = await finished();
    assert.equal(firstJob.status, 'succeeded', JSON.stringify(firstJob.error));
    assert.equal(firstJob.params.seed, 4242);
    assert.equal(firstJob.params.negative_prompt, 'fog');
    const states = await seen();
    assert.ok(
      states.statuses.some((s) => /^Running: step \d+ of 40/.test(s)),
      `progress shown: ${JSON.stringify(states.statuses)}`,
    );
    assert.ok(
      states.progress.some((p) => p > 0 && p < 1),
      `progress bar moved: ${states.progress.join(',')}`,
    );
    assert.ok(states.previews.length > 0, 'a live preview was shown');
    assert.match(states.previews[0]!, /^data:image\/(jpeg|webp);base64,/);

    // The gallery shows the image (loaded from the presigned URL), the seed, timings and the charge.
    const img = page.locator('#gallery img').first();
    await img.waitFor();
    await until(
      "document.querySelector('#gallery img')?.complete && document.querySelector('#gallery img').naturalWidth === 64",
    );
    assert.match((await page.textContent('#gallery figcaption')) ?? '', /Seed 4242/);
    const details = (await page.textContent('#run-details')) ?? '';
    assert.match(details, /Charged0\.002 credits/);
    assert.match(details, /Denoising[\d.]+ s/);
    assert.match(details, /Total[\d.]+ s/);
    assert.match((await page.textContent('#history')) ?? '', /a lighthouse at dusk/);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#gallery .download')]);
    assert.equal(download.suggestedFilename(), `${firstJob.id}-0.png`);
    const bytes = await readFile((await download.path())!);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const meta = await sharp(bytes).metadata();
    assert.equal(meta.width, 64);
    assert.equal(meta.height, 64);

    await page.screenshot({ path: join(ARTIFACTS, 'desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 375, height: 812 });
    const overflow = await inPage<number>('document.documentElement.scrollWidth');
    assert.ok(overflow <= 375, `no horizontal scrolling on a phone (page is ${overflow} px wide)`);
    await page.screenshot({ path: join(ARTIFACTS, 'phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('re-run with the same seed gives the same image', async () => {
    assert.ok(firstJob, 'needs the first run');
    await page.click('#gallery .rerun');
    const again = await finished(firstJob.id);
    assert.notEqual(again.id, firstJob.id);
    assert.equal(again.status, 'succeeded');
    assert.equal(again.params.seed, firstJob.params.seed);
    const bytes = async (job: Job) => Buffer.from(await (await fetch(job.outputs[0]!.url)).arrayBuffer());
    assert.deepEqual(await bytes(again), await bytes(firstJob));
    assert.equal(await page.locator('#history li').count(), 2);
  });

  test('keyboard only: Tab to the button and press Enter', async () => {
    await open(); // the key comes back from sessionStorage
    assert.equal(await page.inputValue('#f-key'), stack.apiKey.token);
    await until(`/Key accepted/.test(${textOf('key-status')})`);
    await page.keyboard.press('Tab');
    assert.equal(await inPage<string>('document.activeElement?.className'), 'skip');
    await page.keyboard.press('Enter'); // the skip link lands on the prompt
    assert.equal(await focused(), 'f-prompt');
    await page.keyboard.type('a paper boat');
    for (let i = 0; i < 40; i++) {
      if ((await focused()) === 'submit') break;
      await page.keyboard.press('Tab');
    }
    assert.equal(await focused(), 'submit');
    // The focused control is visibly marked.
    const outline = await inPage<string>('getComputedStyle(document.activeElement).outlineStyle');
    assert.equal(outline, 'solid');
    await page.keyboard.press('Enter');
    const job = await finished(); // the reloaded page shows no earlier result
    assert.equal(job.status, 'succeeded');
    assert.equal(job.params.prompt, 'a paper boat');
  });

  test('a 400 field error is shown next to its field', async () => {
    await page.selectOption('#f-aspect_ratio', 'custom');
    await page.fill('#f-width', '100');
    await page.fill('#f-height', '64');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/generations') && r.request().method() === 'POST'),
      page.click('#submit'),
    ]);
    assert.equal(response.status(), 400);
    await page.waitForSelector('#err-width:not([hidden])');
    assert.match((await page.textContent('#err-width')) ?? '', /multiple of 16/);
    assert.equal(await page.getAttribute('#f-width', 'aria-invalid'), 'true');
    const summary = (await page.textContent('#error-summary')) ?? '';
    assert.match(summary, /Width: must be a multiple of 16/);
    assert.match(summary, /Invalid request|invalid/i);
    await page.screenshot({ path: join(ARTIFACTS, 'field-error.png'), fullPage: true });
  });

  test('no script errors and no Content-Security-Policy violations on the way', () => {
    assert.deepEqual(pageErrors, []);
  });
});
