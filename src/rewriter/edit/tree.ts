/**
 * Reads a repository tree for the planners and the proofs: its YAML files (never through a symbolic
 * link, never larger than 5 MiB), parsed where they may matter, and the graph of its kustomizations
 * (which build reads which files, which builds are roots, which reach outside the repository).
 */
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ConfigError } from '../../errors.ts';
import { escapeRegExp } from '../../util/regexp.ts';
import { isChartTemplate } from './chart-templates.ts';
import { isValuesFile } from './helm-values.ts';
import { isKustomization, kustomizationIn, readKustomization, type Kustomization } from './kustomize.ts';
import { documentSpans, MAX_PARSED_NODES, parseYamlFile, YamlSyntaxError, yamlNodes, type DocumentSpan, type ParsedYaml } from './yaml-scalars.ts';

const MAX_FILE_BYTES = 5 * 1024 * 1024;
/** The YAML read for one plan (a tenant's repository may hold any number of 5 MiB files). */
const MAX_TREE_BYTES = 128 * 1024 * 1024;
/** What a walk of a directory found: the YAML files, those too large to read, and the manifests in formats not edited. */
export interface FoundFiles {
  readonly yaml: string[];
  /** Files over the size limit, named as not read. */
  readonly errors: Error[];
  /** JSON and Jsonnet manifests: not edited, reported when they mention a requested image. */
  readonly others: string[];
}

/**
 * The files under `dir`, never following symbolic links (a link may point outside the repository).
 * With `ownOnly`, a directory below `dir` that holds a kustomization or a chart is left out: its
 * files are that kustomization's or chart's source, not plain manifests of `dir`.
 */
export function yamlFiles(dir: string, root: string, ownOnly = false): FoundFiles {
  const out: string[] = [];
  const errors: Error[] = [];
  const others: string[] = [];
  const walk = (current: string) => {
    // A chart below is rendered by Helm, never applied as files.
    if (ownOnly && current !== dir && (kustomizationIn(current) || existsSync(join(current, 'Chart.yaml')))) return;
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      if (entry.name === '.git' || entry.name === 'node_modules') continue;
      const path = join(current, entry.name);
      if (entry.isSymbolicLink()) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && (/\.ya?ml$/.test(entry.name) || entry.name === 'Kustomization')) {
        if (lstatSync(path).size > MAX_FILE_BYTES)
          errors.push(new YamlSyntaxError(relative(root, path), 0, `larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB; not read`));
        else out.push(path);
      } else if (entry.isFile() && /\.(json|jsonnet|libsonnet)$/.test(entry.name) && lstatSync(path).size <= MAX_FILE_BYTES) {
        others.push(path);
      }
    }
  };
  walk(dir);
  return { yaml: out, errors, others };
}

/** The repository's directory, its links resolved; a clear error when it is not one. */
export function repositoryRoot(root: string): string {
  if (!existsSync(root) || !lstatSync(root).isDirectory()) throw new ConfigError(`the repository ${JSON.stringify(root)} is not a directory`);
  return realpathSync(root);
}

/**
 * Reads the YAML files under `root/subdir` and parses them. Parsing is the cost (10,000 files:
 * 3 s), so with `needles` only files that contain one are parsed: any textual use of an image
 * contains its repository path (`argoproj/argocd`). kustomize may rename images, so kustomizations
 * are always parsed, and the names their entries map onto a needle become needles too. A file is
 * parsed only in the documents that hold a needle. With
 * `followBases`, the directories and files that those kustomizations list from elsewhere in the
 * repository are read too (the bases an overlay path builds on).
 */
export function loadTree(
  root: string,
  subdir: string | undefined,
  needles: readonly string[] | undefined,
  followBases = false,
  checkEveryFile = false,
  /** The text a file holds for this plan (an edit planned before it, not yet written), else what is on disk. */
  textOf: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): {
  rootReal: string;
  parsed: Map<string, ParsedYaml>;
  kustomizations: Kustomization[];
  errors: Error[];
  others: string[];
  /** Chart templates with template actions (./chart-templates.ts): read as text, never parsed. */
  templates: Map<string, string>;
  loaded: (path: string) => boolean;
} {
  const rootReal = repositoryRoot(root);
  const inside = (path: string) => path === rootReal || path.startsWith(rootReal + sep);
  const lexical = resolve(rootReal, subdir ?? '.');
  if (!inside(lexical)) throw new ConfigError(`the path ${JSON.stringify(subdir)} leads outside the repository`);
  if (!existsSync(lexical)) throw new ConfigError(`the path ${JSON.stringify(subdir)} does not exist in the repository`);
  // A directory that is a symbolic link is followed only if it stays inside the clone.
  const scope = realpathSync(lexical);
  if (!inside(scope)) throw new ConfigError(`the path ${JSON.stringify(subdir)} leads outside the repository through a symbolic link`);
  const errors: Error[] = [];
  const parsed = new Map<string, ParsedYaml>();
  let nodes = 0;
  const parse = (file: string, text: string, spans?: readonly DocumentSpan[]) => {
    const size = spans === undefined ? yamlNodes(text) : spans.reduce((n, s) => n + yamlNodes(text.slice(s.start, s.end)), 0);
    if (nodes + size > MAX_PARSED_NODES) {
      errors.push(
        new YamlSyntaxError(
          relative(rootReal, file),
          0,
          `not parsed: the files to plan hold more than ${MAX_PARSED_NODES} YAML lines and flow items, more than the rewriter holds within its memory limit`,
        ),
      );
      return;
    }
    nodes += size;
    try {
      const yaml = parseYamlFile(relative(rootReal, file), text, spans, checkEveryFile, MAX_PARSED_NODES - nodes + size);
      // Parsed whole after all (a bare document after `...`): the whole file counts.
      if (spans !== undefined && !yaml.partial) nodes += yamlNodes(text) - size;
      // A file none of whose documents can matter was only checked: it is not the model's to read.
      if (spans === undefined || spans.length > 0) parsed.set(file, yaml);
    } catch (error) {
      errors.push(error as Error);
    }
  };
  const texts = new Map<string, string>();
  // No needles: only the kustomizations are wanted, so no other file is read.
  const kustomizationsOnly = needles !== undefined && needles.length === 0;
  let bytes = 0;
  const read = (files: readonly string[]) => {
    for (const file of files) {
      if (texts.has(file) || (kustomizationsOnly && !isKustomization(file))) continue;
      let text: string;
      try {
        text = textOf(file);
      } catch (error) {
        errors.push(error as Error);
        continue;
      }
      bytes += text.length;
      if (bytes > MAX_TREE_BYTES)
        throw new ConfigError(
          `${subdir ?? 'the repository'} holds more than ${MAX_TREE_BYTES / 1024 / 1024} MiB of YAML; not planned (the rewriter reads at most that for one change)`,
        );
      texts.set(file, text);
    }
    for (const [file, text] of texts) if (isKustomization(file) && !parsed.has(file)) parse(file, text);
  };
  const found = yamlFiles(scope, rootReal);
  const others = found.others;
  errors.push(...found.errors);
  read(found.yaml);
  const scopes = [scope];
  const within = (path: string) => scopes.some((s) => path === s || path.startsWith(s + sep));
  if (followBases) {
    // The bases and resources the kustomizations list from elsewhere in the repository, until none is new.
    for (let more = true; more; ) {
      more = false;
      for (const [file, yaml] of [...parsed]) {
        if (!isKustomization(file)) continue;
        for (const resource of readKustomization(file, yaml, rootReal).resources) {
          if (within(resource) || texts.has(resource) || !existsSync(resource)) continue;
          const real = realpathSync(resource);
          if (!inside(real)) continue;
          more = true;
          if (lstatSync(real).isDirectory()) {
            scopes.push(real);
            const base = yamlFiles(real, rootReal);
            errors.push(...base.errors);
            read(base.yaml);
          } else {
            read([real]);
          }
        }
      }
    }
  }
  const kustomizations = [...parsed].map(([file, yaml]) => readKustomization(file, yaml, rootReal));
  // A patch may set part of an image (a values tag) without naming it: every patch file is read.
  const patchFiles = new Set(kustomizations.flatMap((k) => k.patches.flatMap((p) => p.file ?? [])));
  const wanted = needles === undefined ? undefined : new Set(needles);
  if (wanted) {
    for (const k of kustomizations) {
      for (const entry of k.images) {
        if ([...wanted].some((n) => (entry.newName ?? entry.name).includes(n))) wanted.add(entry.name);
      }
    }
  }
  // One pattern for every needle: one scan of each file rather than one per needle.
  const mentions = wanted === undefined ? undefined : new RegExp([...wanted].map(escapeRegExp).join('|') || '(?!)');
  const templates = new Map<string, string>();
  for (const [file, text] of texts) {
    if (isKustomization(file)) continue;
    // A values file may set part of an image (an environment's tag) without naming it: every one is read, as every patch is.
    const whole = mentions === undefined || patchFiles.has(file) || isValuesFile(file);
    const wantedHere = whole || mentions.test(text);
    // A chart's template is never YAML to parse, whether or not it can matter.
    if (isChartTemplate(file, text, rootReal)) {
      if (wantedHere) templates.set(file, text);
    } else if (whole) parse(file, text);
    // Only the documents that can mention a wanted image are kept; the others are checked, if asked, and dropped.
    else if (wantedHere || checkEveryFile)
      parse(
        file,
        text,
        documentSpans(text).filter((s) => mentions.test(text.slice(s.start, s.end))),
      );
  }
  return { rootReal, parsed, kustomizations, errors, others, templates, loaded: (path) => texts.has(path) || within(path) };
}

/** Every kustomization of the repository, and whether one's build (through the ones it lists) reaches one that passes `test`. */
function kustomizationGraph(root: string): {
  rootReal: string;
  all: Kustomization[];
  reaches: (k: Kustomization, test: (k: Kustomization) => boolean) => boolean;
} {
  const { rootReal, kustomizations: all } = loadTree(root, undefined, []);
  const reaches = (k: Kustomization, test: (k: Kustomization) => boolean, seen = new Set<Kustomization>()): boolean => {
    if (seen.has(k)) return false;
    seen.add(k);
    return test(k) || all.filter((other) => k.reads.includes(other.dir)).some((other) => reaches(other, test, seen));
  };
  return { rootReal, all, reaches };
}

/**
 * The kustomization directories whose build reads any of `files` (directly, or through the
 * kustomizations they list), keeping those no other kustomization lists (what Argo CD or Flux
 * builds) and `also` when it is one of them; `remote` when the build reads from outside the
 * repository.
 */
export function kustomizeRoots(root: string, files: readonly string[], also?: string): Array<{ dir: string; remote: boolean; outside: string[] }> {
  const { all, reaches } = kustomizationGraph(root);
  const listed = new Set(all.flatMap((k) => k.reads));
  return all
    .filter(
      (k) =>
        reaches(k, (x) => files.some((f) => x.reads.includes(f) || (isKustomization(f) && dirname(f) === x.dir))) && (!listed.has(k.dir) || k.dir === also),
    )
    .map((k) => ({ dir: k.dir, remote: reaches(k, (x) => x.remote), outside: readsOutside(all, reaches, k) }));
}

/** What a build of `k` (through the kustomizations it lists) would read from outside the repository. */
function readsOutside(all: readonly Kustomization[], reaches: (k: Kustomization, test: (k: Kustomization) => boolean) => boolean, k: Kustomization): string[] {
  return all.filter((x) => x.outside.length > 0 && reaches(k, (y) => y === x)).flatMap((x) => x.outside);
}

/** What building the kustomization in `dir` would read from outside the repository (none: it may be built). */
export function outsideReadsOf(root: string, dir: string): string[] {
  const { rootReal, all, reaches } = kustomizationGraph(root);
  const start = all.find((k) => k.dir === resolve(rootReal, relative(realpathSync(root), dir)));
  return start === undefined ? [] : readsOutside(all, reaches, start);
}

/** Whether building the kustomization in `dir` would read from outside the repository (a Git URL, or a path that leads out). */
export function buildsOutside(root: string, dir: string): boolean {
  const { rootReal, all, reaches } = kustomizationGraph(root);
  const start = all.find((k) => k.dir === resolve(rootReal, relative(realpathSync(root), dir)));
  return start !== undefined && reaches(start, (x) => x.remote);
}
