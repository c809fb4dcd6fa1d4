/** zod issues -> one {field, message} per offending field (unknown keys named one by one). */
import type { FieldError } from '@sd3/shared';
import type { z } from 'zod';

export function fieldErrors(error: z.ZodError, rename: Record<string, string> = {}): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  const push = (field: string, message: string) => {
    // Own keys only: a field named __proto__ or constructor must not pick up Object.prototype's.
    const name = Object.hasOwn(rename, field) ? rename[field]! : field;
    const key = `${name}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ field: name, message });
  };
  for (const issue of error.issues) {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) push(path ? `${path}.${k}` : k, 'unknown field');
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      push(path, 'is required');
    } else {
      push(path, issue.message);
    }
  }
  return out;
}
