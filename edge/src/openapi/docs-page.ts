/**
 * GET /docs: a self-contained reference page rendered on the server from the OpenAPI document:
 * routes with their parameters, bodies and responses, the schemas, the error codes. No scripts
 * or stylesheets from elsewhere, so it works offline and under a strict CSP.
 */
type Json = Record<string, unknown>;

const escapeHtml = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

const refName = (v: unknown): string | undefined => {
  const r = (v as { $ref?: unknown } | undefined)?.$ref;
  return typeof r === 'string' ? r.split('/').pop() : undefined;
};

function schemaLink(schema: unknown): string {
  const name = refName(schema);
  return name ? `<a href="#schema-${escapeHtml(name)}">${escapeHtml(name)}</a>` : '';
}

function contentList(content: unknown): string {
  if (!content || typeof content !== 'object') return '';
  return Object.entries(content as Json)
    .map(([type, v]) => `<code>${escapeHtml(type)}</code> ${schemaLink((v as Json)['schema'])}`)
    .join(', ');
}

function operation(method: string, path: string, op: Json): string {
  const params = (op['parameters'] as Json[] | undefined) ?? [];
  const body = op['requestBody'] as Json | undefined;
  const responses = (op['responses'] as Json | undefined) ?? {};
  const security = op['security'] as unknown[] | undefined;
  const rows = params
    .map(
      (p) =>
        `<tr><td><code>${escapeHtml(String(p['name']))}</code></td><td>${escapeHtml(String(p['in']))}</td>` +
        `<td>${p['required'] ? 'yes' : ''}</td><td>${escapeHtml(String(p['description'] ?? ''))}</td></tr>`,
    )
    .join('');
  const responseRows = Object.entries(responses)
    .map(
      ([status, r]) =>
        `<tr><td>${escapeHtml(status)}</td><td>${escapeHtml(String((r as Json)['description'] ?? ''))}</td>` +
        `<td>${contentList((r as Json)['content'])}</td></tr>`,
    )
    .join('');
  const id = `op-${method}-${path.replace(/[^a-z0-9]+/gi, '-')}`;
  return `<section class="op" id="${escapeHtml(id)}">
<h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
<p>${escapeHtml(String(op['summary'] ?? ''))}${security && security.length === 0 ? ' <em>(no API key)</em>' : ''}</p>
${op['description'] ? `<p>${escapeHtml(String(op['description']))}</p>` : ''}
${rows ? `<table><tr><th>parameter</th><th>in</th><th>required</th><th></th></tr>${rows}</table>` : ''}
${body ? `<p>Body: ${contentList(body['content'])}</p>` : ''}
<table><tr><th>status</th><th>meaning</th><th>body</th></tr>${responseRows}</table>
</section>`;
}

export function renderDocsPage(doc: Json): string {
  const info = doc['info'] as Json;
  const paths = doc['paths'] as Record<string, Record<string, Json>>;
  const schemas = ((doc['components'] as Json)['schemas'] as Json) ?? {};
  const errors = (doc['x-error-codes'] as Record<string, { status: number; title: string }>) ?? {};
  const ops = Object.entries(paths)
    .flatMap(([path, methods]) => Object.entries(methods).map(([m, op]) => operation(m, path, op)))
    .join('\n');
  const toc = Object.entries(paths)
    .flatMap(([path, methods]) =>
      Object.keys(methods).map(
        (m) =>
          `<li><a href="#op-${m}-${escapeHtml(path.replace(/[^a-z0-9]+/gi, '-'))}">${m.toUpperCase()} ${escapeHtml(path)}</a></li>`,
      ),
    )
    .join('');
  const schemaBlocks = Object.entries(schemas)
    .map(
      ([name, s]) =>
        `<details id="schema-${escapeHtml(name)}"><summary>${escapeHtml(name)}</summary><pre>${escapeHtml(JSON.stringify(s, null, 2))}</pre></details>`,
    )
    .join('\n');
  const errorRows = Object.entries(errors)
    .map(
      ([code, e]) =>
        `<tr id="error-${escapeHtml(code)}"><td><code>${escapeHtml(code)}</code></td><td>${e.status}</td><td>${escapeHtml(e.title)}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(String(info['title']))} reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f5f5f5;padding:.75rem;overflow:auto}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
.op{border-top:1px solid #ccc;padding-top:.5rem}.m{font-weight:700;padding:0 .3rem;border-radius:3px;color:#fff}
.get{background:#2b7a3d}.post{background:#1f5fa8}summary{cursor:pointer;font-family:ui-monospace,monospace}
</style></head><body>
<h1>${escapeHtml(String(info['title']))} <small>${escapeHtml(String(info['version']))}</small></h1>
<p>${escapeHtml(String(info['description'] ?? ''))}</p>
<p>Authenticate with <code>Authorization: Bearer sk_…</code>. The machine-readable document is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<h2>Routes</h2><ul>${toc}</ul>
${ops}
<h2>Schemas</h2>
${schemaBlocks}
<h2 id="errors">Error codes</h2>
<p>Errors are <code>application/problem+json</code> (RFC 9457) with <code>code</code>, <code>detail</code>, <code>errors[]</code> (field, message) and <code>request_id</code>.</p>
<table><tr><th>code</th><th>status</th><th>meaning</th></tr>${errorRows}</table>
</body></html>`;
}
