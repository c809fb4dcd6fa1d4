import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveWithDns } from './node-post.js';
import { checkWebhookTarget, forbiddenAddressReason, type ResolveHost } from './ssrf.js';

test('private, loopback, link-local, CGNAT, unspecified and mapped addresses are forbidden', () => {
  for (const ip of [
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.254',
    '192.168.1.1',
    '127.0.0.1',
    '127.8.9.10',
    '169.254.169.254',
    '169.254.0.1',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '::',
    '::1',
    'fc00::1',
    'fdff:ffff::1',
    'fe80::1',
    'febf::1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    '::ffff:127.0.0.1',
    '::ffff:a9fe:a9fe',
    '0:0:0:0:0:ffff:7f00:1',
    '64:ff9b::10.0.0.1',
    'ff02::1',
  ]) {
    assert.ok(forbiddenAddressReason(ip), `${ip} must be refused`);
  }
  for (const ip of [
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '169.253.1.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
  ]) {
    assert.equal(forbiddenAddressReason(ip), null, `${ip} is public`);
  }
  assert.equal(forbiddenAddressReason('not-an-ip'), 'not an IP address');
});

const fakeDns =
  (answers: Record<string, string[]>): ResolveHost =>
  async (host) => {
    const a = answers[host];
    if (!a) throw new Error('ENOTFOUND');
    return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

test('targets: https only, every resolved address public, local mode allows only http://127.0.0.1', async () => {
  const resolve = fakeDns({
    'hooks.example.com': ['93.184.216.34'],
    'mixed.example.com': ['93.184.216.34', '10.1.2.3'],
    'v6.example.com': ['2606:4700::1111'],
    'rebind.example.com': ['::ffff:192.168.0.1'],
  });
  const ok = await checkWebhookTarget('https://hooks.example.com/x', { resolve });
  assert.ok(ok.ok);
  assert.deepEqual(ok.ok && ok.address, { address: '93.184.216.34', family: 4 });
  assert.ok((await checkWebhookTarget('https://v6.example.com/x', { resolve })).ok);

  const refused = async (url: string, allowLocalHttp = false) => {
    const r = await checkWebhookTarget(url, { resolve, allowLocalHttp });
    assert.equal(r.ok, false, url);
    return r.ok ? '' : r.reason;
  };
  assert.match(await refused('http://hooks.example.com/x'), /https/);
  assert.match(await refused('ftp://hooks.example.com/x'), /https/);
  assert.match(await refused('https://mixed.example.com/x'), /10\.1\.2\.3/);
  assert.match(await refused('https://rebind.example.com/x'), /IPv4-mapped private/);
  assert.match(await refused('https://10.0.0.1/x'), /private/);
  assert.match(await refused('https://169.254.169.254/latest'), /metadata/);
  assert.match(await refused('https://[::1]/x'), /loopback/);
  assert.match(await refused('https://[::ffff:127.0.0.1]/x'), /loopback/);
  assert.match(await refused('https://nowhere.example.com/x'), /could not resolve/);
  assert.match(await refused('https://user:pw@hooks.example.com/x'), /credentials/);
  assert.match(await refused('http://127.0.0.1:8080/x'), /https/);
  assert.match(await refused('https://127.0.0.1/x'), /loopback/);
  // Local mode opens exactly http(s)://127.0.0.1, not other loopback names or private hosts.
  const local = await checkWebhookTarget('http://127.0.0.1:8080/x', { resolve, allowLocalHttp: true });
  assert.ok(local.ok);
  assert.match(await refused('http://localhost:8080/x', true), /https/);
  assert.match(await refused('https://10.0.0.1/x', true), /private/);
});

test('a host name resolving to loopback through the real resolver (localhost) is refused', async () => {
  const r = await checkWebhookTarget('https://localhost/hook', { resolve: resolveWithDns });
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /loopback/);
});
