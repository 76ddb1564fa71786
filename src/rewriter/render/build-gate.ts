/**
 * The gate before any kustomize build: what that build would read, found by following it the way
 * kustomize does (the directory's kustomization, then each local resource, base and component
 * directory, transitively), independently of the planner's model of the tree, and held to one rule:
 * every kustomization it reads is a regular file (no link), at most 5 MiB, with no key written twice
 * (kustomize takes the last, a reader the first), and names nothing outside the repository and no
 * URL but a base (edit/kustomize.ts#outsideReads). A kustomization that cannot be read so is a
 * refusal, never skipped.
 */
import { existsSync, lstatSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { outsideReads, REMOTE_RESOURCE } from '../edit/kustomize.ts';
import { items, scalarSite } from '../edit/yaml-scalars.ts';

const KUSTOMIZATION_NAMES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const KUSTOMIZATION_MAX_BYTES = 5 * 1024 * 1024;

/** Why building `dir` (in the repository at `root`) is not allowed, or undefined. */
export function buildReadRefusal(root: string, dir: string): string | undefined {
  const rootReal = realpathSync(root);
  const seen = new Set<string>();
  const problems: string[] = [];
  const visit = (d: string) => {
    const real = realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    const present = KUSTOMIZATION_NAMES.map((n) => join(d, n)).filter((f) => {
      try {
        lstatSync(f);
        return true;
      } catch {
        return false;
      }
    });
    if (present.length === 0) return;
    const file = present[0]!;
    const name = relative(rootReal, file) || file;
    if (present.length > 1) return void problems.push(`${relative(rootReal, d) || '.'} holds more than one kustomization file`);
    const stat = lstatSync(file);
    if (!stat.isFile()) return void problems.push(`${name} is not a regular file (a link)`);
    if (stat.size > KUSTOMIZATION_MAX_BYTES) return void problems.push(`${name} is larger than ${KUSTOMIZATION_MAX_BYTES} bytes`);
    const text = readFileSync(file, 'utf8');
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) return void problems.push(`${name} is not YAML kustomize and this check read alike (${doc.errors[0]!.code})`);
    const outside = outsideReads(text, doc.contents as Parameters<typeof outsideReads>[1], d, rootReal);
    for (const why of outside) problems.push(`${name}: ${why}`);
    for (const field of ['resources', 'bases', 'components'])
      for (const node of items(doc.get(field, true) as Parameters<typeof items>[0])) {
        const value = scalarSite(text, node)?.value;
        if (value === undefined || REMOTE_RESOURCE.test(value)) continue;
        const target = resolve(d, value);
        if (existsSync(target) && statSync(target).isDirectory()) visit(target);
      }
  };
  visit(resolve(dir));
  return problems.length > 0 ? [...new Set(problems)].join('; ') : undefined;
}
