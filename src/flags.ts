/**
 * Command-line flags as one declarative table per command: each flag's value placeholder, default
 * and help, from which both the parser and the usage text are made, so a flag's default is written
 * once and its help cannot drift from what is parsed.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

export interface FlagSpec {
  /** The value's placeholder in the usage (`PATH`); a flag without one is a switch. */
  readonly arg?: string;
  /** May be given more than once (its values are collected in order). */
  readonly multiple?: boolean;
  readonly default?: string;
  readonly short?: string;
  /** One paragraph; the usage text wraps it. */
  readonly help: string;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

/** What parsing a table gives: a string (or strings) for a flag with a value, a boolean for a switch. */
export type FlagValues<T extends FlagTable> = {
  readonly [K in keyof T]?: T[K] extends { readonly multiple: true } ? string[] : T[K] extends { readonly arg: string } ? string : boolean;
};

export function parseFlags<T extends FlagTable>(table: T, args: readonly string[], allowPositionals = false): { values: FlagValues<T>; positionals: string[] } {
  const options: ParseArgsOptionsConfig = {};
  for (const [name, spec] of Object.entries(table)) {
    options[name] = {
      type: spec.arg === undefined ? 'boolean' : 'string',
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.default !== undefined ? { default: spec.default } : {}),
      ...(spec.short !== undefined ? { short: spec.short } : {}),
    };
  }
  const { values, positionals } = parseArgs({ args: [...args], options, allowPositionals, strict: true });
  return { values: values as FlagValues<T>, positionals };
}

const FLAG_COLUMN = 30;
const WIDTH = 100;

/** The "Options:" lines of a table: each flag, its placeholder, its help wrapped, and its default in brackets. */
export function optionsUsage(table: FlagTable): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(table)) {
    const flag = `  ${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.arg ? ` ${spec.arg}` : ''}`;
    const words = `${spec.help}${spec.default ? ` [${spec.default}]` : ''}`.split(' ');
    // The help starts at the column, on the flag's line when the flag leaves room.
    if (flag.length >= FLAG_COLUMN) lines.push(flag);
    let line = flag.length >= FLAG_COLUMN ? '' : flag;
    for (const word of words) {
      if (line.length > FLAG_COLUMN && line.length + 1 + word.length > WIDTH) {
        lines.push(line);
        line = '';
      }
      line = line.length < FLAG_COLUMN ? `${line.padEnd(FLAG_COLUMN - 1)} ${word}` : `${line} ${word}`;
    }
    lines.push(line);
  }
  return `Options:\n${lines.join('\n')}`;
}

/** A table as the reference pages show it (docs/<command>.md): one row per flag, its default, its help. */
export function flagsMarkdown(table: FlagTable): string {
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  const rows = Object.entries(table).map(([name, spec]) => {
    const flag = `\`${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.arg ? ` ${spec.arg}` : ''}\``;
    // A pipe splits a table cell even inside a code span (GitHub's tables): escaped there too.
    return `| ${flag.replaceAll('|', '\\|')} | ${spec.default !== undefined ? `\`${cell(spec.default)}\`` : ''} | ${cell(spec.help)} |`;
  });
  return ['| option | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
