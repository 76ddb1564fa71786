import { ConfigError } from '../errors.ts';

/** `90s`, `10m`, `1h`, `7d` or plain milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new ConfigError(`${flag} must be a duration like 90s, 10m, 1h or 7d, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
