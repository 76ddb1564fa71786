/**
 * Plans image replacements across a repository tree: every container and init container image of
 * the workload kinds (Deployment, DaemonSet, StatefulSet, ReplicaSet, Job, CronJob, Pod), and every
 * kustomize `images:` entry, matched after normalisation (`nginx:1.25` is
 * `docker.io/library/nginx:1.25`; `nginx` is `nginx:latest`).
 *
 * kustomize's `images:` transformation is taken into account: a resource whose image a
 * kustomization rewrites does not run its literal image, so the edit goes where the running image
 * is decided, the kustomization entry, and a literal that a kustomization overrides is left alone.
 *
 * Helm values are edited where charts split an image into parts: a mapping with `repository` and
 * `tag` (and optionally `registry` and `digest`, the Bitnami convention), in `values*.yaml` files
 * and in a Flux HelmRelease's inline `spec.values`. An image given as one string in values, or a
 * tag left to the chart's appVersion, is not recognised.
 *
 * A file that does not parse is reported with its line and left untouched; every other file is
 * still planned.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { isMap, isSeq, type Node, type YAMLMap } from 'yaml';
import { ConfigError } from '../../errors.ts';
import { imageKey, parseReference, tryParseReference, type ImageReference } from '../../image/reference.ts';
import { podSpecNode, pullSecretEdits, type PullSecretWant } from './pull-secrets.ts';
import { applyTextEdits, columnOf, formatScalar, lineOf, get, items, parseYamlFile, scalarSite, scalarText, stringAt, YamlSyntaxError, type ParsedYaml, type ScalarSite, type TextEdit } from './yaml-scalars.ts';

/** Kinds whose pod template is edited; an Argo Rollout keeps its template where a Deployment does. */
export const MANIFEST_KINDS = ['Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod', 'Rollout'] as const;
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

/** The kustomization file of a directory, if it has one (what makes kustomize build it). */
export function kustomizationIn(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((n) => join(dir, n)).find((f) => {
    try {
      return lstatSync(f).isFile();
    } catch {
      return false;
    }
  });
}
/** A kustomize resource that is not a path in this repository (a Git URL, or a GitHub shorthand). */
const REMOTE_RESOURCE = /^[a-z]+:\/\/|^git@|^github\.com\//;
const MAX_FILE_BYTES = 5 * 1024 * 1024;

export interface Replacement {
  /** The image to replace, normalised. */
  readonly from: ImageReference;
  /** The image to write, as the user wrote it. */
  readonly to: string;
  /** Report where `from` is used, edit nothing (to see whether a change is already applied). */
  readonly detectOnly?: boolean;
}

export interface PlannedChange {
  readonly file: string;
  readonly line: number;
  readonly what: string;
  readonly before: string;
  readonly after: string;
}

export interface RepositoryPlan {
  /** Absolute path → its new text, for files that change. */
  readonly files: Map<string, { before: string; after: string }>;
  readonly changes: readonly PlannedChange[];
  /** Files that could not be read or parsed (left untouched). */
  readonly errors: readonly Error[];
  /** Replacements whose image no file uses (planRepository only). */
  readonly unmatched?: readonly Replacement[];
  /** Uses of a requested image that are not edited, and why (a kind or a file format we do not edit). */
  readonly skipped?: readonly string[];
}

interface ImageUse {
  readonly file: string;
  readonly where: string;
  readonly site: ScalarSite;
  readonly workload: { readonly kind: string; readonly namespace: string | undefined; readonly name: string };
  readonly container: string;
  readonly init: boolean;
  /** The names the pod spec lists in imagePullSecrets. */
  readonly pullSecrets: readonly string[];
}

export interface KustomizeEntry {
  readonly file: string;
  readonly node: Node;
  readonly name: string;
  readonly newName: string | undefined;
  readonly newTag: string | undefined;
  readonly digest: string | undefined;
  readonly line: number;
}

interface Kustomization {
  readonly dir: string;
  readonly images: readonly KustomizeEntry[];
  /** Absolute paths of resource files and directories it lists. */
  readonly resources: readonly string[];
  /** Every file and directory of the repository its build reads: resources, components, patches. */
  readonly reads: readonly string[];
  /** Whether it names anything outside the repository: a Git URL, or a path that leads out of it. */
  readonly remote: boolean;
}

export function parseReplacement(spec: string): Replacement {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new ConfigError(`--set expects OLD=NEW, got ${JSON.stringify(spec)}`);
  const to = spec.slice(eq + 1);
  parseReference(to);
  return { from: parseReference(spec.slice(0, eq)), to };
}

export interface PlanOptions {
  /**
   * Parse every YAML file, so that each broken one is reported (the `rewrite` command's contract).
   * Without it only files that can mention a wanted image are parsed: 10,000 files cost 0.4 s
   * instead of 3 s, and a broken file that cannot concern the change is not looked at.
   */
  readonly reportEveryBrokenFile?: boolean;
}

/** Plans every replacement under `root/subdir`; reads files, writes nothing. */
export function planRepository(root: string, subdir: string | undefined, replacements: readonly Replacement[], options: PlanOptions = {}): RepositoryPlan {
  const needles = options.reportEveryBrokenFile ? undefined : replacements.map((r) => r.from.repository.split('/').pop()!);
  const { rootReal, parsed, errors, others } = loadTree(root, subdir, needles);
  const kustomizations = [...parsed].filter(([file]) => isKustomization(file)).map(([file, yaml]) => readKustomization(file, yaml, rootReal));
  const including = kustomizationsIncluding(kustomizations);
  const uses = [...parsed].flatMap(([file, yaml]) => imageUses(file, yaml));
  const edits = new Map<string, TextEdit[]>();
  const changes: PlannedChange[] = [];
  const byImage = new Map(replacements.map((r) => [imageKey(r.from), r]));
  const matched = new Set<Replacement>();
  const matches = (image: string) => {
    const parsedImage = tryParseReference(image);
    const replacement = parsedImage === undefined ? undefined : byImage.get(imageKey(parsedImage));
    if (replacement) matched.add(replacement);
    return replacement;
  };
  const handledEntries = new Set<KustomizeEntry>();

  // kustomize entries that pin the whole output image (newTag or digest): their output is known.
  for (const k of kustomizations) {
    for (const entry of k.images) {
      if (entry.newTag === undefined && entry.digest === undefined) continue;
      const output = entryOutput(entry, undefined);
      const replacement = output === undefined ? undefined : matches(output);
      if (!replacement) continue;
      handledEntries.add(entry);
      planEntryEdit(entry, replacement, parsed.get(entry.file)!.text, edits, changes, rootReal, output!);
    }
  }

  // Literal images, through the kustomizations that include their file.
  for (const use of uses) {
    const chain = including(use.file);
    const entry = chain.flatMap((k) => k.images).find((e) => kustomizeMatches(use.site.value, e.name));
    if (entry === undefined) {
      const replacement = matches(use.site.value);
      if (replacement) {
        if (!replacement.detectOnly) addEdits(edits, use.file, [{ start: use.site.start, end: use.site.end, text: formatScalar(replacement.to, use.site) }]);
        changes.push({ file: relative(rootReal, use.file), line: use.site.line, what: use.where, before: use.site.value, after: replacement.to });
      }
      continue;
    }
    if (handledEntries.has(entry)) continue;
    const output = entryOutput(entry, use.site.value);
    const replacement = output === undefined ? undefined : matches(output);
    if (!replacement) continue;
    handledEntries.add(entry);
    planEntryEdit(entry, replacement, parsed.get(entry.file)!.text, edits, changes, rootReal, output!);
  }

  // Helm values: image mappings split into registry/repository/tag/digest.
  for (const [file, yaml] of parsed) {
    for (const { map, where } of helmImageMaps(file, yaml)) {
      const image = helmImage(map);
      const replacement = image === undefined ? undefined : matches(image);
      if (!replacement) continue;
      planHelmValuesEdit(file, yaml.text, map, where, image!, replacement, edits, changes, rootReal);
    }
  }

  const files = new Map<string, { before: string; after: string }>();
  for (const [file, fileEdits] of edits) {
    const before = parsed.get(file)!.text;
    const after = applyTextEdits(before, fileEdits);
    if (after !== before) files.set(file, { before, after });
  }
  const wanted = replacements.filter((r) => !r.detectOnly);
  return { files, changes, errors, unmatched: replacements.filter((r) => !matched.has(r)), skipped: [...skippedKinds(parsed, rootReal, wanted), ...skippedFormats(others, rootReal, wanted)] };
}

/** Objects of kinds the planner does not edit whose `image` fields name a requested image. */
function skippedKinds(parsed: ReadonlyMap<string, ParsedYaml>, root: string, replacements: readonly Replacement[]): string[] {
  if (replacements.length === 0) return [];
  const keys = new Set(replacements.map((r) => imageKey(r.from)));
  const out: string[] = [];
  for (const [file, yaml] of parsed) {
    for (const object of objectsOf(yaml)) {
      const kind = stringAt(object, 'kind');
      if (!kind || (MANIFEST_KINDS as readonly string[]).includes(kind) || kind === 'HelmRelease' || kind === 'Kustomization') continue;
      const walk = (node: unknown) => {
        if (isMap(node)) {
          for (const pair of node.items) {
            const site = (pair.key as { value?: unknown })?.value === 'image' ? scalarSite(yaml.text, pair.value as Node) : undefined;
            const ref = site ? tryParseReference(site.value) : undefined;
            if (site && ref && keys.has(imageKey(ref))) out.push(`${relative(root, file)}:${site.line} ${kind}/${stringAt(get(object, 'metadata'), 'name') ?? '?'} uses ${site.value}; ${kind} is not a kind this edits (see the README's list)`);
            else walk(pair.value);
          }
        } else if (isSeq(node)) node.items.forEach(walk);
      };
      walk(object);
    }
  }
  return out;
}

/** Files in formats the planner does not edit (JSON, Jsonnet), found by the tree's walk, that mention a requested image. */
function skippedFormats(files: readonly string[], rootReal: string, replacements: readonly Replacement[]): string[] {
  if (replacements.length === 0) return [];
  return files.flatMap((path) => {
    const text = readFileSync(path, 'utf8');
    const kind = path.endsWith('.json') ? 'JSON' : 'Jsonnet';
    return replacements.filter((r) => text.includes(formatShort(r))).map((r) => `${relative(rootReal, path)} mentions ${formatShort(r)}; ${kind} manifests are not edited`);
  });
}

/** A requested image as manifests usually write it: `nginx:1.25` rather than `docker.io/library/nginx:1.25`. */
function formatShort(r: Replacement): string {
  const name = r.from.registry === 'docker.io' ? r.from.repository.replace(/^library\//, '') : `${r.from.registry}/${r.from.repository}`;
  return `${name}${r.from.tag ? `:${r.from.tag}` : ''}${r.from.digest ? `@${r.from.digest}` : ''}`;
}

/** Rewrites a Helm image mapping (registry/repository/tag/digest) so that it composes `replacement.to`. */
export function planHelmValuesEdit(file: string, text: string, map: Node, where: string, before: string, replacement: Replacement, edits: Map<string, TextEdit[]>, changes: PlannedChange[], root: string): void {
  const to = parseReference(replacement.to);
  const fileEdits: TextEdit[] = [];
  if (get(map, 'registry') !== undefined) {
    setKey(map, 'registry', to.registry, text, fileEdits);
    setKey(map, 'repository', to.repository, text, fileEdits);
  } else {
    setKey(map, 'repository', `${to.registry}/${to.repository}`, text, fileEdits);
  }
  if (to.tag !== undefined) setKey(map, 'tag', to.tag, text, fileEdits);
  if (get(map, 'digest') !== undefined) setKey(map, 'digest', to.digest ?? '', text, fileEdits);
  if (!replacement.detectOnly) addEdits(edits, file, fileEdits);
  const line = scalarSite(text, get(map, 'repository'))!.line;
  changes.push({ file: relative(root, file), line, what: `Helm values ${where}`, before, after: replacement.to });
}

/** kustomize matches an entry's `name` against the image as written, up to its tag or digest. */
export function kustomizeMatches(image: string, name: string): boolean {
  return image === name || image.startsWith(`${name}:`) || image.startsWith(`${name}@`);
}

/** The image an entry makes of `literal` (or, with no literal, of itself when it pins tag or digest). */
export function entryOutput(entry: KustomizeEntry, literal: string | undefined): string | undefined {
  const name = entry.newName ?? entry.name;
  if (entry.digest !== undefined) return `${name}@${entry.digest}`;
  if (entry.newTag !== undefined) return `${name}:${entry.newTag}`;
  if (literal === undefined) return undefined;
  return name + literal.slice(entry.name.length);
}

/** Rewrites a kustomize entry so that it produces `to`: newName, then newTag or digest. */
export function planEntryEdit(entry: KustomizeEntry, replacement: Replacement, text: string, edits: Map<string, TextEdit[]>, changes: PlannedChange[], root: string, before: string, what = `kustomize images entry "${entry.name}"`): void {
  const after = replacement.to;
  const to = parseReference(after);
  const fileEdits: TextEdit[] = [];
  setKey(entry.node, 'newName', nameOf(after), text, fileEdits);
  if (to.digest !== undefined) setKey(entry.node, 'digest', to.digest, text, fileEdits);
  else if (to.tag !== undefined) setKey(entry.node, 'newTag', to.tag, text, fileEdits);
  if (!replacement.detectOnly) addEdits(edits, entry.file, fileEdits);
  changes.push({ file: relative(root, entry.file), line: entry.line, what, before, after });
}

/** The name part of an image as written (without tag or digest). */
export function nameOf(image: string): string {
  const at = image.indexOf('@');
  const withoutDigest = at >= 0 ? image.slice(0, at) : image;
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

/**
 * Sets `key` in a mapping: edits its scalar in place if present, else appends `key: value` after
 * the mapping's last entry (block style: a new line at the column of its keys; flow style: `, key: value`).
 */
function setKey(node: Node, key: string, value: string, text: string, out: TextEdit[]): void {
  const existing = scalarSite(text, get(node, key));
  if (existing) {
    if (existing.value !== value) out.push({ start: existing.start, end: existing.end, text: formatScalar(value, existing) });
    return;
  }
  const map = node as YAMLMap;
  const firstKey = map.items[0]?.key as Node | undefined;
  const lastValue = map.items.at(-1)?.value as Node | undefined;
  const lastEnd = lastValue?.range?.[1] ?? firstKey?.range?.[1] ?? 0;
  const quoted = formatScalar(value);
  if (map.flow) {
    out.push({ start: lastEnd, end: lastEnd, text: `, ${key}: ${quoted}` });
    return;
  }
  const keyStart = firstKey?.range?.[0] ?? 0;
  const column = columnOf(text, keyStart);
  const lineEnd = text.indexOf('\n', lastEnd);
  const at = lineEnd === -1 ? text.length : lineEnd;
  out.push({ start: at, end: at, text: `\n${' '.repeat(column)}${key}: ${quoted}` });
}

export function addEdits(edits: Map<string, TextEdit[]>, file: string, more: readonly TextEdit[]): void {
  edits.set(file, [...(edits.get(file) ?? []), ...more]);
}

/**
 * For each file, the kustomizations that include it, directly or through nested kustomization
 * directories: each kustomization's closure computed once, so a tree of many overlays and files
 * costs one pass over their resources rather than one per image use.
 */
function kustomizationsIncluding(all: readonly Kustomization[]): (file: string) => readonly Kustomization[] {
  const byDir = new Map(all.map((k) => [k.dir, k]));
  const closures = new Map<Kustomization, Set<string>>();
  const closure = (k: Kustomization, seen: Set<Kustomization>): Set<string> => {
    const known = closures.get(k);
    if (known) return known;
    const files = new Set<string>();
    if (seen.has(k)) return files;
    seen.add(k);
    for (const resource of k.resources) {
      files.add(resource);
      const nested = byDir.get(resource);
      if (nested) for (const f of closure(nested, seen)) files.add(f);
    }
    closures.set(k, files);
    return files;
  };
  const index = new Map<string, Kustomization[]>();
  for (const k of all) for (const f of closure(k, new Set())) index.set(f, [...(index.get(f) ?? []), k]);
  return (file) => index.get(file) ?? [];
}

function readKustomization(file: string, yaml: ParsedYaml, root: string): Kustomization {
  const doc = yaml.documents[0]?.contents;
  const dir = dirname(file);
  const local = (nodes: readonly Node[]) => nodes
    .map((n) => scalarSite(yaml.text, n)?.value)
    .filter((v): v is string => v !== undefined && !REMOTE_RESOURCE.test(v))
    .map((v) => resolve(dir, v))
    .filter((p) => p === root || p.startsWith(root + sep));
  const resources = local([...items(get(doc, 'resources')), ...items(get(doc, 'bases'))]);
  const patches = [...items(get(doc, 'patches')), ...items(get(doc, 'patchesJson6902'))].map((p) => get(p, 'path')).filter((n): n is Node => n !== undefined);
  const reads = [...resources, ...local(items(get(doc, 'components'))), ...local([...patches, ...items(get(doc, 'patchesStrategicMerge'))])];
  const images = items(get(doc, 'images')).flatMap((node): KustomizeEntry[] => {
    const name = stringAt(node, 'name');
    if (name === undefined) return [];
    const site = scalarSite(yaml.text, get(node, 'name'))!;
    return [{ file, node, name, newName: stringAt(node, 'newName'), newTag: scalarText(get(node, 'newTag')), digest: stringAt(node, 'digest'), line: site.line }];
  });
  const remote = [...items(get(doc, 'resources')), ...items(get(doc, 'bases')), ...items(get(doc, 'components'))].some((n) => REMOTE_RESOURCE.test(scalarSite(yaml.text, n)?.value ?? ''));
  // Any path it names that leads out of the repository (a build would read the machine's files).
  const generated = [...items(get(doc, 'configMapGenerator')), ...items(get(doc, 'secretGenerator'))].flatMap((g) => [...items(get(g, 'files')), ...items(get(g, 'envs')), ...(get(g, 'env') ? [get(g, 'env')!] : [])]);
  const named = [...items(get(doc, 'resources')), ...items(get(doc, 'bases')), ...items(get(doc, 'components')), ...patches, ...items(get(doc, 'patchesStrategicMerge')), ...generated, ...items(get(doc, 'crds')), ...items(get(doc, 'configurations'))];
  const escapes = named.map((n) => scalarSite(yaml.text, n)?.value).some((v) => v !== undefined && !REMOTE_RESOURCE.test(v) && (() => {
    const path = resolve(dir, v.includes('=') ? v.slice(v.indexOf('=') + 1) : v);
    return path !== root && !path.startsWith(root + sep);
  })());
  return { dir, images, resources, reads, remote: remote || escapes };
}

/** Image mappings in Helm values: whole `values*.yaml` documents, and HelmRelease `spec.values`. */
function helmImageMaps(file: string, yaml: ParsedYaml): Array<{ map: Node; where: string }> {
  const roots: Array<{ node: Node; where: string }> = [];
  const valuesFile = /^values[^/]*\.ya?ml$/.test(file.slice(file.lastIndexOf(sep) + 1));
  for (const doc of yaml.documents) {
    const contents = doc.contents as Node | null;
    if (!contents) continue;
    if (valuesFile) roots.push({ node: contents, where: '' });
    else if (stringAt(contents, 'kind') === 'HelmRelease') {
      const values = get(get(contents, 'spec'), 'values');
      if (values) roots.push({ node: values, where: `HelmRelease/${stringAt(get(contents, 'metadata'), 'name') ?? '?'} spec.values` });
    }
  }
  return roots.flatMap((root) => helmImageMapsIn(root.node, root.where));
}

/** Image mappings (`repository` and `tag`, optionally `registry` and `digest`) anywhere under a values node. */
export function helmImageMapsIn(values: Node | undefined, where: string): Array<{ map: Node; where: string }> {
  const found: Array<{ map: Node; where: string }> = [];
  const walk = (node: Node | undefined, path: string) => {
    if (isMap(node)) {
      if (stringAt(node, 'repository') !== undefined && get(node, 'tag') !== undefined) found.push({ map: node, where: `${where}${where && path ? ' ' : ''}${path}` });
      for (const pair of node.items) walk(pair.value as Node | undefined, `${path}${path ? '.' : ''}${String((pair.key as { value?: unknown })?.value ?? '?')}`);
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item as Node, `${path}[${i}]`));
    }
  };
  walk(values, '');
  return found;
}

/** The image a Helm image mapping names: `[registry/]repository[:tag][@digest]`. */
export function helmImage(map: Node): string | undefined {
  const registry = stringAt(map, 'registry');
  const repository = stringAt(map, 'repository');
  const tag = scalarText(get(map, 'tag'));
  const digest = stringAt(map, 'digest');
  if (!repository) return undefined;
  return `${registry ? `${registry}/` : ''}${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
}

/** The objects of a file's documents: each document, and each item of a `kind: List`. */
function objectsOf(yaml: ParsedYaml): Node[] {
  return yaml.documents.flatMap((doc) => {
    const root = doc.contents as Node | null;
    if (!root) return [];
    return stringAt(root, 'kind') === 'List' ? items(get(root, 'items')) : [root];
  });
}

/** Every container and init container image of the workload objects in a file. */
function imageUses(file: string, yaml: ParsedYaml): ImageUse[] {
  const uses: ImageUse[] = [];
  // A literal in a chart's template is edited like any manifest, and said to be one.
  const template = /(^|\/)templates\/[^/]+\.ya?ml$/.test(file.split(sep).join('/')) ? 'Helm chart template: ' : '';
  for (const root of objectsOf(yaml)) {
    const kind = stringAt(root, 'kind');
    if (!kind || !(MANIFEST_KINDS as readonly string[]).includes(kind)) continue;
    const generated = stringAt(get(root, 'metadata'), 'generateName');
    const name = stringAt(get(root, 'metadata'), 'name') ?? (generated ? `${generated}*` : '(no name)');
    const podSpec = podSpecNode(kind, root);
    const pullSecrets = items(get(podSpec, 'imagePullSecrets')).flatMap((r) => stringAt(r, 'name') ?? []);
    for (const list of ['initContainers', 'containers'] as const) {
      for (const container of items(get(podSpec, list))) {
        const site = scalarSite(yaml.text, get(container, 'image'));
        const containerName = stringAt(container, 'name') ?? '?';
        const workload = { kind, namespace: stringAt(get(root, 'metadata'), 'namespace'), name };
        if (site) uses.push({ file, where: `${template}${kind}/${name} ${list === 'initContainers' ? 'init container' : 'container'} ${containerName}`, site, workload, container: containerName, init: list === 'initContainers', pullSecrets });
      }
    }
  }
  return uses;
}

/**
 * YAML files under `dir`, never following symbolic links (a link may point outside the repository);
 * JSON and Jsonnet manifests, which are not edited, go to `others` (to be reported).
 */
function yamlFiles(dir: string, root: string, errors: Error[], others: string[] = []): string[] {
  const out: string[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      if (entry.name === '.git' || entry.name === 'node_modules') continue;
      const path = join(current, entry.name);
      if (entry.isSymbolicLink()) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && (/\.ya?ml$/.test(entry.name) || entry.name === 'Kustomization')) {
        if (lstatSync(path).size > MAX_FILE_BYTES) errors.push(new YamlSyntaxError(relative(root, path), 0, `larger than ${MAX_FILE_BYTES} bytes; skipped`));
        else out.push(path);
      } else if (entry.isFile() && /\.(json|jsonnet|libsonnet)$/.test(entry.name) && lstatSync(path).size <= MAX_FILE_BYTES) {
        others.push(path);
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * For images that no manifest under `root/subdir` names because the resource comes from a base
 * outside it: an `images:` entry in the kustomization at `root/subdir` that maps the image's name,
 * as the base renders it, to the new one. kustomize applies it to this overlay only, so sibling
 * overlays of a shared base keep what they render. A base in the repository is read to find how
 * it writes the image (and is left alone); a remote base cannot be read, so the name is the image
 * as the workload names it (`asWritten`). Without such a base there is nothing to add.
 */
export function planOverlayEntries(root: string, subdir: string | undefined, additions: readonly { readonly from: ImageReference; readonly asWritten: string; readonly to: string }[], textOf: (file: string) => string = (file) => readFileSync(file, 'utf8')): RepositoryPlan {
  const rootReal = realpathSync(root);
  const dir = resolve(rootReal, subdir ?? '.');
  const file = kustomizationIn(dir);
  const none: RepositoryPlan = { files: new Map(), changes: [], errors: [] };
  if (!file || additions.length === 0) return none;
  const text = textOf(file);
  let yaml: ParsedYaml;
  try {
    yaml = parseYamlFile(relative(rootReal, file), text);
  } catch (error) {
    return { ...none, errors: [error as Error] };
  }
  const doc = yaml.documents[0]?.contents as Node | undefined;
  const listed = [...items(get(doc, 'resources')), ...items(get(doc, 'bases')), ...items(get(doc, 'components'))].map((n) => scalarSite(text, n)?.value).filter((v): v is string => v !== undefined);
  const remote = listed.some((v) => REMOTE_RESOURCE.test(v));
  const inside = (path: string) => path === rootReal || path.startsWith(rootReal + sep);
  const within = (path: string) => path === dir || path.startsWith(dir + sep);
  const localBases = listed.filter((v) => !REMOTE_RESOURCE.test(v)).map((v) => resolve(dir, v)).filter((p) => inside(p) && !within(p) && existsSync(p) && lstatSync(p).isDirectory());
  // How each base outside the path writes the image, after its own kustomizations.
  const renderedName = new Map<ImageReference, string>();
  for (const base of localBases) {
    const found = planRepository(rootReal, relative(rootReal, base), additions.map((a) => ({ from: a.from, to: a.to, detectOnly: true })));
    for (const change of found.changes) {
      const addition = additions.find((a) => a.to === change.after);
      if (addition && !renderedName.has(addition.from)) renderedName.set(addition.from, nameOf(change.before));
    }
  }
  const wanted = additions.flatMap((a) => {
    const name = renderedName.get(a.from) ?? (remote ? nameOf(a.asWritten) : undefined);
    return name === undefined ? [] : [{ ...a, name }];
  });
  if (wanted.length === 0) return none;
  const entries = wanted.map(({ name, to }) => {
    const target = parseReference(to);
    const lines = [`name: ${formatScalar(name)}`, `newName: ${formatScalar(`${target.registry}/${target.repository}`)}`];
    if (target.tag !== undefined) lines.push(`newTag: ${formatScalar(target.tag)}`);
    if (target.digest !== undefined) lines.push(`digest: ${formatScalar(target.digest)}`);
    return lines;
  });
  const images = get(doc, 'images');
  if (isSeq(images) && images.flow) {
    return { ...none, errors: [new YamlSyntaxError(relative(rootReal, file), scalarSite(text, get(doc, 'images'))?.line ?? 0, 'cannot add an entry to a flow-style images: list; write it as a block list')] };
  }
  const first = items(images)[0];
  let after: string;
  if (first?.range) {
    // Append to the existing block sequence, at the column of its "-".
    const column = columnOf(text, text.lastIndexOf('-', first.range[0]));
    const end = (images as Node).range![1];
    const at = text.lastIndexOf('\n', end - 1) === end - 1 ? end - 1 : end;
    const block = entries.map((lines) => lines.map((l, i) => `${' '.repeat(column)}${i === 0 ? '- ' : '  '}${l}`).join('\n')).join('\n');
    after = `${text.slice(0, at)}\n${block}${text.slice(at)}`;
  } else {
    const block = entries.map((lines) => lines.map((l, i) => `${i === 0 ? '  - ' : '    '}${l}`).join('\n')).join('\n');
    after = `${text}${text.endsWith('\n') ? '' : '\n'}images:\n${block}\n`;
  }
  return {
    files: new Map([[file, { before: text, after }]]),
    changes: wanted.map(({ name, to }) => ({ file: relative(rootReal, file), line: 0, what: 'kustomize images entry added for a base outside the path', before: name, after: to })),
    errors: [],
  };
}

/**
 * `imagePullSecrets` for each wanted workload, in every document under `root/subdir` that declares
 * its pod template. A workload that no document declares (its pod template comes from a remote
 * base or a chart) or whose list cannot be extended is refused, with the reason: its image must not
 * move without the Secret.
 */
export function planPullSecrets<W extends PullSecretWant>(root: string, subdir: string | undefined, wants: readonly W[]): RepositoryPlan & { refused: Array<{ want: W; reason: string }> } {
  const refused: Array<{ want: W; reason: string }> = [];
  if (wants.length === 0) return { files: new Map(), changes: [], errors: [], refused };
  const { rootReal, parsed, errors } = loadTree(root, subdir, wants.map((w) => w.workload.name));
  const edits = new Map<string, TextEdit[]>();
  const changes: PlannedChange[] = [];
  for (const want of wants) {
    const { kind, namespace, name } = want.workload;
    const found: Array<{ file: string; edits: TextEdit[] }> = [];
    let problem: string | undefined;
    for (const [file, yaml] of parsed) {
      const result = pullSecretEdits(yaml, want);
      if (result.error) problem ??= `${relative(rootReal, file)}: ${result.error}`;
      if (result.declared > 0) found.push({ file, edits: result.edits });
    }
    if (problem || found.length === 0) {
      refused.push({ want, reason: `cannot add imagePullSecrets ${want.secret} to ${kind} ${namespace}/${name}: ${problem ?? `no manifest under ${subdir ?? 'the repository root'} declares its pod template (it may come from a remote base or a chart); list the Secret in its service account, or in the manifest`}` });
      continue;
    }
    for (const { file, edits: fileEdits } of found) {
      if (fileEdits.length === 0) continue;
      addEdits(edits, file, fileEdits);
      changes.push({ file: relative(rootReal, file), line: lineOf(parsed.get(file)!.text, fileEdits[0]!.start), what: `${kind}/${name} imagePullSecrets`, before: '', after: want.secret });
    }
  }
  const files = new Map<string, { before: string; after: string }>();
  for (const [file, fileEdits] of edits) {
    const before = parsed.get(file)!.text;
    files.set(file, { before, after: applyTextEdits(before, fileEdits) });
  }
  return { files, changes, errors, refused };
}

const isKustomization = (file: string) => KUSTOMIZATION_FILES.some((n) => file.endsWith(`${sep}${n}`));

/**
 * Reads the YAML files under `root/subdir` and parses them. Parsing is the cost (10,000 files:
 * 3 s), so with `needles` only files that contain one are parsed: any textual use of an image
 * contains its repository's last path component. kustomize may rename images, so kustomizations
 * are always parsed, and the names their entries map onto a needle become needles too. With
 * `followBases`, the directories and files that those kustomizations list from elsewhere in the
 * repository are read too (the bases an overlay path builds on).
 */
export function loadTree(root: string, subdir: string | undefined, needles: readonly string[] | undefined, followBases = false): { rootReal: string; parsed: Map<string, ParsedYaml>; errors: Error[]; others: string[] } {
  if (!existsSync(root) || !lstatSync(root).isDirectory()) throw new ConfigError(`the repository ${JSON.stringify(root)} is not a directory`);
  const rootReal = realpathSync(root);
  const inside = (path: string) => path === rootReal || path.startsWith(rootReal + sep);
  const lexical = resolve(rootReal, subdir ?? '.');
  if (!inside(lexical)) throw new ConfigError(`the path ${JSON.stringify(subdir)} leads outside the repository`);
  if (!existsSync(lexical)) throw new ConfigError(`the path ${JSON.stringify(subdir)} does not exist in the repository`);
  // A directory that is a symbolic link is followed only if it stays inside the clone.
  const scope = realpathSync(lexical);
  if (!inside(scope)) throw new ConfigError(`the path ${JSON.stringify(subdir)} leads outside the repository through a symbolic link`);
  const errors: Error[] = [];
  const parsed = new Map<string, ParsedYaml>();
  const parse = (file: string, text: string) => {
    try {
      parsed.set(file, parseYamlFile(relative(rootReal, file), text));
    } catch (error) {
      errors.push(error as Error);
    }
  };
  const texts = new Map<string, string>();
  // No needles: only the kustomizations are wanted, so no other file is read.
  const kustomizationsOnly = needles !== undefined && needles.length === 0;
  const read = (files: readonly string[]) => {
    for (const file of files) {
      if (texts.has(file) || (kustomizationsOnly && !isKustomization(file))) continue;
      try {
        texts.set(file, readFileSync(file, 'utf8'));
      } catch (error) {
        errors.push(error as Error);
      }
    }
    for (const [file, text] of texts) if (isKustomization(file) && !parsed.has(file)) parse(file, text);
  };
  const others: string[] = [];
  read(yamlFiles(scope, rootReal, errors, others));
  if (followBases) {
    // The bases and resources the kustomizations list from elsewhere in the repository, until none is new.
    const scopes = [scope];
    const within = (path: string) => scopes.some((s) => path === s || path.startsWith(s + sep));
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
            read(yamlFiles(real, rootReal, errors));
          } else {
            read([real]);
          }
        }
      }
    }
  }
  const wanted = needles === undefined ? undefined : new Set(needles);
  if (wanted) {
    for (const [file, yaml] of parsed) {
      for (const entry of readKustomization(file, yaml, rootReal).images) {
        if ([...wanted].some((n) => (entry.newName ?? entry.name).includes(n))) wanted.add(entry.name.split('/').pop()!);
      }
    }
  }
  for (const [file, text] of texts) {
    if (!isKustomization(file) && (wanted === undefined || [...wanted].some((n) => text.includes(n)))) parse(file, text);
  }
  return { rootReal, parsed, errors, others };
}

/** Every kustomization of the repository, and whether one's build (through the ones it lists) reaches one that passes `test`. */
function kustomizationGraph(root: string): { rootReal: string; all: Kustomization[]; reaches: (k: Kustomization, test: (k: Kustomization) => boolean) => boolean } {
  const { rootReal, parsed } = loadTree(root, undefined, []);
  const all = [...parsed].filter(([file]) => isKustomization(file)).map(([file, yaml]) => readKustomization(file, yaml, rootReal));
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
export function kustomizeRoots(root: string, files: readonly string[], also?: string): Array<{ dir: string; remote: boolean }> {
  const { all, reaches } = kustomizationGraph(root);
  const listed = new Set(all.flatMap((k) => k.reads));
  return all
    .filter((k) => reaches(k, (x) => files.some((f) => x.reads.includes(f) || (isKustomization(f) && dirname(f) === x.dir))) && (!listed.has(k.dir) || k.dir === also))
    .map((k) => ({ dir: k.dir, remote: reaches(k, (x) => x.remote) }));
}

/** Whether building the kustomization in `dir` would read from outside the repository (a Git URL, or a path that leads out). */
export function buildsOutside(root: string, dir: string): boolean {
  const { rootReal, all, reaches } = kustomizationGraph(root);
  const start = all.find((k) => k.dir === resolve(rootReal, relative(realpathSync(root), dir)));
  return start !== undefined && reaches(start, (x) => x.remote);
}

export interface ScannedImage {
  readonly file: string;
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly container: string;
  readonly init: boolean;
  /** The image the container really runs: its literal, or what a kustomization makes of it. */
  readonly image: string;
  /** The names its pod spec lists in imagePullSecrets. */
  readonly pullSecrets: readonly string[];
}

/** Every container and init container image of the workloads under `root/subdir`, as they run. */
export function scanImages(root: string, subdir: string | undefined): { images: ScannedImage[]; errors: readonly Error[] } {
  const { rootReal, parsed, errors } = loadTree(root, subdir, undefined);
  const kustomizations = [...parsed].filter(([file]) => isKustomization(file)).map(([file, yaml]) => readKustomization(file, yaml, rootReal));
  const including = kustomizationsIncluding(kustomizations);
  const images = [...parsed].flatMap(([file, yaml]) => imageUses(file, yaml)).map((use) => {
    const chain = including(use.file);
    const entry = chain.flatMap((k) => k.images).find((e) => kustomizeMatches(use.site.value, e.name));
    return { file: relative(rootReal, use.file), ...use.workload, container: use.container, init: use.init, image: (entry && entryOutput(entry, use.site.value)) ?? use.site.value, pullSecrets: use.pullSecrets };
  });
  return { images, errors };
}
