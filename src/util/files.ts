/** Replacing a file whole: a temp file beside it (same mode), then a rename, so a crash never leaves half of it. */
import { renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function replaceFileAtomically(file: string, text: string): void {
  const temp = join(dirname(file), `.${basename(file)}.image-clone.tmp`);
  writeFileSync(temp, text, { mode: statSync(file).mode & 0o777 });
  renameSync(temp, file);
}
