/**
 * Python transformers' `padding="max_length", truncation=True` for one sequence: content is cut first so
 * the special tokens always survive (transformers.js instead cuts after adding them and loses the EOS).
 */
export function toFixedLength(
  content: readonly number[],
  specials: { prefix: readonly number[]; suffix: readonly number[] },
  maxLength: number,
  padId: number,
): number[] {
  const room = maxLength - specials.prefix.length - specials.suffix.length;
  if (!Number.isInteger(room) || room < 0) {
    throw new RangeError(`max length ${maxLength} leaves no room for the special tokens`);
  }
  const ids = [...specials.prefix, ...content.slice(0, room), ...specials.suffix];
  while (ids.length < maxLength) ids.push(padId);
  return ids;
}
