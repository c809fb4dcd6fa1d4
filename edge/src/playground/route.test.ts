import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type EdgeStack, startEdgeStack } from '../test-support/edge-stack.js';
import { PLAYGROUND_JS } from './client.js';

let s: EdgeStack;
before(async () => {
  s = await startEdgeStack();
});
after(() => s.stop());

function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp.split(';').map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name!, values];
    }),
  );
}

test('GET / is the playground: HTML, a strict CSP, revalidated on every visit', async () => {
  const res = await s.call('GET', '/');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const csp = directives(res.headers.get('content-security-policy') ?? '');
  assert.deepEqual(csp.get('default-src'), ["'none'"]);
  assert.deepEqual(csp.get('script-src'), ["'self'"]);
  assert.deepEqual(csp.get('style-src'), ["'self'"]);
  assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
  // Presigned outputs live on the bucket's origin: images and downloads may come from there only.
  const media = new URL(await s.deps.objects.presignGet('x', 60)).origin;
  assert.deepEqual(csp.get('img-src'), ["'self'", 'data:', 'blob:', media]);
  assert.deepEqual(csp.get('connect-src'), ["'self'", media]);
  const html = await res.text();
  assert.doesNotMatch(html, /<script>|<style|\sstyle=|\son[a-z]+=/i, 'no inline script or style');
  for (const id of ['f-key', 'f-prompt', 'f-negative_prompt', 'f-seed', 'f-n', 'f-image', 'f-strength']) {
    assert.match(html, new RegExp(`<label for="${id}"`), `${id} has a label`);
  }
  // A revalidation answers 304.
  const etag = res.headers.get('etag')!;
  const again = await s.call('GET', '/', { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
});

test('the script and stylesheet are addressed by their hash and cached for good', async () => {
  const html = await (await s.call('GET', '/')).text();
  const script = /<script type="module" src="([^"]+)"/.exec(html)?.[1];
  const style = /<link rel="stylesheet" href="([^"]+)"/.exec(html)?.[1];
  assert.match(script ?? '', /^\/playground\/app\.js\?v=[0-9a-f]{16}$/);
  assert.match(style ?? '', /^\/playground\/app\.css\?v=[0-9a-f]{16}$/);
  const js = await s.call('GET', script!);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(await js.text(), PLAYGROUND_JS);
  const css = await s.call('GET', style!);
  assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
  // Another version is not the one served: not cached for good.
  const stale = await s.call('GET', '/playground/app.js?v=0000000000000000');
  assert.equal(stale.headers.get('cache-control'), 'no-cache');
  const missing = await s.call('GET', '/playground/nope.js');
  assert.equal(missing.status, 404);
  assert.equal((await s.call('GET', '/playground/toString')).status, 404);
});

test('the script parses as JavaScript (it is a string module, not type-checked)', () => {
  assert.doesNotThrow(() => new Function(PLAYGROUND_JS));
  assert.doesNotMatch(
    PLAYGROUND_JS,
    /\bapiKey\b.*localStorage|localStorage/,
    'the key never goes to localStorage',
  );
});
