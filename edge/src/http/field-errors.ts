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
    } else if (issue.code === 'invalid_type') {
      // zod 4 leaves the input off its issues; its message ends "received <type>".
      push(path, / received undefined$/.test(issue.message) ? 'is required' : wrongType(issue.message));
    } else {
      push(path, issue.message);
    }
  }
  return out;
}

/** "Invalid input: expected boolean, received string" -> "expected boolean, received string". */
function wrongType(message: string): string {
  return message.replace(/^Invalid input: /, '');
}
