/**
 * The reference pages' generated parts: each command's flag table, written from the CLI's own flag
 * tables into docs/<command>.md between `<!-- flags:COMMAND -->` and `<!-- /flags -->`, so a page
 * cannot drift from what the command parses (test/unit/docs.test.ts checks it).
 *
 * Usage: npm run docs   (rewrites the tables in place)
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMAND_FLAGS } from '../src/cli.ts';
import { flagsMarkdown } from '../src/flags.ts';

export const DOCS_DIR = join(import.meta.dirname, '../docs');
const BLOCK = /(<!-- flags:([a-z-]+) -->\n)[\s\S]*?(<!-- \/flags -->)/g;

/** The page's text with every flag block as the code has it; an unknown command is an error. */
export function withFlagTables(text: string, page: string): string {
  return text.replace(BLOCK, (_, open: string, command: string, close: string) => {
    const table = COMMAND_FLAGS[command as keyof typeof COMMAND_FLAGS];
    if (!table) throw new Error(`${page}: no command ${JSON.stringify(command)} has flags`);
    return `${open}${flagsMarkdown(table)}\n${close}`;
  });
}

export const docPages = (): string[] => readdirSync(DOCS_DIR).filter((f) => f.endsWith('.md'));

if (import.meta.filename === process.argv[1]) {
  for (const page of docPages()) {
    const file = join(DOCS_DIR, page);
    const text = readFileSync(file, 'utf8');
    const updated = withFlagTables(text, page);
    if (updated !== text) {
      writeFileSync(file, updated);
      process.stdout.write(`updated ${page}\n`);
    }
  }
}
