/** What a `sd3-admin` command is: its flags, help, and a run that the flags were checked for. */
import type { ParseArgsConfig } from 'node:util';
import type { AdminStore } from './store.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface AdminIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** Bad flags or arguments: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CommandResult {
  text: string;
  json: unknown;
}

export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface AdminCommand {
  /** `<group> <verb>`. */
  name: string;
  summary: string;
  /** After `sd3-admin`: the command, its positionals and flags. */
  usage: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals: string[];
  /** Validates the input (throwing UsageError) and returns the work to do. */
  prepare(values: Values, positionals: string[]): (store: AdminStore, now: number) => Promise<CommandResult>;
}

export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function requiredFlag(values: Values, name: string): string {
  const v = stringFlag(values, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** A table of rows with aligned columns. */
export function table(header: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)';
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export const iso = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString());
