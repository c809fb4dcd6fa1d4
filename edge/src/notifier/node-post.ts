/**
 * The Node side of the notifier: name resolution with node:dns (every address) and a POST over
 * node:http(s) that connects to the address the SSRF check approved (its `lookup` returns only
 * that address), so DNS cannot change the target after the check; TLS still verifies the
 * certificate against the URL's host name. node:http never follows redirects.
 */
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { PostWebhook } from './notifier.js';
import type { ResolveHost } from './ssrf.js';

export const resolveWithDns: ResolveHost = async (host) => {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export const postWithNode: PostWebhook = (req) =>
  new Promise((resolve, reject) => {
    const pinned: LookupFunction = (_host, options, callback) => {
      if ((options as { all?: boolean }).all) {
        (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
          { address: req.address.address, family: req.address.family },
        ]);
      } else callback(null, req.address.address, req.address.family);
    };
    const send = req.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const body = Buffer.from(req.body);
    const r = send(
      req.url,
      {
        method: 'POST',
        headers: { ...req.headers, 'content-length': String(body.length) },
        lookup: pinned,
        timeout: req.timeoutMs,
        agent: false,
      },
      (res) => {
        // Only the status matters; drain the body so the socket closes.
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        res.on('error', reject);
      },
    );
    const timer = setTimeout(
      () => r.destroy(new Error(`timed out after ${req.timeoutMs} ms`)),
      req.timeoutMs,
    );
    r.on('timeout', () => r.destroy(new Error(`timed out after ${req.timeoutMs} ms`)));
    r.on('error', reject);
    r.on('close', () => clearTimeout(timer));
    r.end(body);
  });
