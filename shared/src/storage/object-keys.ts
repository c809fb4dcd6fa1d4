/** The S3 key layout: inputs/{tenant}/{job}/… and outputs/{tenant}/{job}/{i}.{ext}. */
import type { OutputFormat } from '../contracts/generation-request.js';

const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

function checkId(kind: string, id: string): string {
  // Ids go into object keys: refuse anything that could escape the tenant's prefix.
  if (!SAFE_ID.test(id)) throw new Error(`${kind} id ${JSON.stringify(id)} is not a safe key segment`);
  return id;
}

export const EXTENSIONS: Record<OutputFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

export function inputImageKey(tenantId: string, jobId: string, ext: string): string {
  return `inputs/${checkId('tenant', tenantId)}/${checkId('job', jobId)}/image.${ext}`;
}

export function outputPrefix(tenantId: string, jobId: string): string {
  return `outputs/${checkId('tenant', tenantId)}/${checkId('job', jobId)}/`;
}

export function outputKey(tenantId: string, jobId: string, index: number, format: OutputFormat): string {
  return `${outputPrefix(tenantId, jobId)}${index}.${EXTENSIONS[format]}`;
}
