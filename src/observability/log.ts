/**
 * Structured logs: one JSON object per line on stderr (`time`, `level`, `msg`, then fields), the
 * shape log pipelines parse without configuration. Values are never credentials: callers pass
 * references, digests and counts, and errors through describeError.
 */
import { ConfigError } from '../errors.ts';
import { scrub } from './secrets.ts';
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(options: { level?: Level; write?: (line: string) => void; base?: Record<string, unknown> } = {}): Logger {
  const threshold = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const base = options.base ?? {};
  const emit = (level: Level, msg: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[level] < threshold) return;
    write(`${scrub(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }))}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } }),
  };
}

export function parseLevel(text: string | undefined): Level {
  if (text === undefined) return 'info';
  if (text in ORDER) return text as Level;
  throw new ConfigError(`--log-level must be one of ${Object.keys(ORDER).join(', ')}, got ${JSON.stringify(text)}`);
}
