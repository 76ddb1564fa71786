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
import { dirname, join, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { KUSTOMIZATION_FILES, outsideReads, REMOTE_RESOURCE } from '../edit/kustomize.ts';
import { items, scalarSite } from '../edit/yaml-scalars.ts';

const KUSTOMIZATION_MAX_BYTES = 5 * 1024 * 1024;

/**
 * The kustomization files a build of `dir` reads, as kustomize follows it: the directory's own, then
 * those of the local resource, base and component directories it lists, transitively (links
 * followed, as kustomize follows them). A directory with several kustomization files gives them all.
 */
export function kustomizationsBuiltFrom(dir: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (d: string) => {
    const real = realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    const present = KUSTOMIZATION_FILES.map((n) => join(d, n)).filter((f) => {
      try {
        lstatSync(f);
        return true;
      } catch {
        return false;
      }
    });
    found.push(...present);
    const file = present[0];
    if (!file || !statSync(file, { throwIfNoEntry: false })?.isFile()) return;
    const text = readFileSync(file, 'utf8');
    const doc = parseDocument(text);
    for (const field of ['resources', 'bases', 'components'])
      for (const node of items(doc.get(field, true) as Parameters<typeof items>[0])) {
        const value = scalarSite(text, node)?.value;
        if (value === undefined || REMOTE_RESOURCE.test(value)) continue;
        const target = resolve(d, value);
        if (existsSync(target) && statSync(target).isDirectory()) visit(target);
      }
  };
  visit(resolve(dir));
  return found;
}

/** Why building `dir` (in the repository at `root`) is not allowed, or undefined. */
export function buildReadRefusal(root: string, dir: string): string | undefined {
  const rootReal = realpathSync(root);
  const problems: string[] = [];
  const files = kustomizationsBuiltFrom(dir);
  const byDir = new Map<string, number>();
  for (const file of files) byDir.set(dirname(file), (byDir.get(dirname(file)) ?? 0) + 1);
  for (const [d, count] of byDir) if (count > 1) problems.push(`${relative(rootReal, d) || '.'} holds more than one kustomization file`);
  for (const file of files) {
    const name = relative(rootReal, file) || file;
    const stat = lstatSync(file);
    if (!stat.isFile()) {
      problems.push(`${name} is not a regular file (a link)`);
      continue;
    }
    if (stat.size > KUSTOMIZATION_MAX_BYTES) {
      problems.push(`${name} is larger than ${KUSTOMIZATION_MAX_BYTES} bytes`);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) {
      problems.push(`${name} is not YAML kustomize and this check read alike (${doc.errors[0]!.code})`);
      continue;
    }
    for (const why of outsideReads(text, doc.contents as Parameters<typeof outsideReads>[1], dirname(file), rootReal)) problems.push(`${name}: ${why}`);
  }
  return problems.length > 0 ? [...new Set(problems)].join('; ') : undefined;
}
