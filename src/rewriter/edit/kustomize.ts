/**
 * kustomization files as the planner reads them: what each lists (resources, components, patches),
 * its `images:` entries and how kustomize applies one to an image, and where a patch's text is.
 * Pure but for resolving symbolic links: parsed text in, facts out.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { isScalar, parse, Scalar, type Node } from 'yaml';
import { get, items, lineOf, scalarSite, scalarText, stringAt, type ParsedYaml, type TextEdit } from './yaml-scalars.ts';

/** The names kustomize reads a directory's kustomization from. */
export const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

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

export const isKustomization = (file: string) => KUSTOMIZATION_FILES.some((n) => file.endsWith(`${sep}${n}`));

/** A kustomize resource that is not a path in this repository (a Git URL, or a GitHub shorthand). */
/** A URL kustomize would fetch: any scheme (any case), a go-getter `word::` prefix, scp-like git, the github shorthand. */
export const REMOTE_RESOURCE = /^[a-z][a-z0-9+.-]*:\/\/|^[a-z0-9]+::|^git@|^github\.com\//i;

export interface KustomizeEntry {
  readonly file: string;
  readonly node: Node;
  readonly name: string;
  readonly newName: string | undefined;
  readonly newTag: string | undefined;
  readonly digest: string | undefined;
  readonly line: number;
}

/** Which objects a patch applies to (kustomize's `target:`); a selector by labels or annotations is not modelled. */
export interface PatchTarget {
  readonly kind: string | undefined;
  readonly name: string | undefined;
  readonly bySelector: boolean;
}

/** A patch a kustomization applies: in a file of the repository, or written inside the kustomization. */
export interface PatchRef {
  readonly file: string | undefined;
  readonly inline: Scalar | undefined;
  readonly target: PatchTarget | undefined;
  /** Listed under `patchesJson6902` (otherwise the content decides: a list of operations is JSON 6902). */
  readonly json6902: boolean;
}

export interface Kustomization {
  readonly file: string;
  readonly dir: string;
  readonly images: readonly KustomizeEntry[];
  /** Absolute paths of resource files and directories it lists. */
  readonly resources: readonly string[];
  /** Absolute paths of the component directories it lists. */
  readonly components: readonly string[];
  /** Its patches, in the order kustomize applies them (strategic merge, `patches`, JSON 6902). */
  readonly patches: readonly PatchRef[];
  readonly namePrefix: string;
  readonly nameSuffix: string;
  /** Every file and directory of the repository its build reads: resources, components, patches. */
  readonly reads: readonly string[];
  /** Whether it names anything outside the repository: a Git URL, or a path that leads out of it. */
  readonly remote: boolean;
  /** What its build would read from outside the repository (a file, through a link, or a URL outside resources), each with its field: never built. */
  readonly outside: readonly string[];
}

export function readKustomization(file: string, yaml: ParsedYaml, root: string): Kustomization {
  const doc = yaml.documents[0]?.contents;
  const dir = dirname(file);
  const inRepository = (p: string) => p === root || p.startsWith(root + sep);
  const local = (nodes: readonly Node[]) =>
    nodes
      .map((n) => scalarSite(yaml.text, n)?.value)
      .filter((v): v is string => v !== undefined && !REMOTE_RESOURCE.test(v))
      .map((v) => resolve(dir, v))
      .filter(inRepository);
  const resources = local([...items(get(doc, 'resources')), ...items(get(doc, 'bases'))]);
  const components = local(items(get(doc, 'components')));
  const target = (node: Node | undefined): PatchTarget | undefined =>
    node === undefined
      ? undefined
      : {
          kind: stringAt(node, 'kind'),
          name: stringAt(node, 'name'),
          bySelector: get(node, 'labelSelector') !== undefined || get(node, 'annotationSelector') !== undefined,
        };
  const patches: PatchRef[] = [];
  const patchFiles: Node[] = [];
  const patchRef = (pathNode: Node | undefined, inline: Node | undefined, targetNode: Node | undefined, json6902: boolean) => {
    const path = scalarSite(yaml.text, pathNode)?.value;
    if (path !== undefined && pathNode) patchFiles.push(pathNode);
    const resolved = path === undefined || REMOTE_RESOURCE.test(path) ? undefined : resolve(dir, path);
    if (resolved !== undefined && inRepository(resolved)) patches.push({ file: resolved, inline: undefined, target: target(targetNode), json6902 });
    else if (isScalar(inline) && typeof inline.value === 'string') patches.push({ file: undefined, inline, target: target(targetNode), json6902 });
  };
  // A `patchesStrategicMerge` item is a file path, or a patch written inline (it then spans lines).
  for (const item of items(get(doc, 'patchesStrategicMerge'))) {
    const value = scalarText(item);
    if (value !== undefined && /\n/.test(value.trim())) patchRef(undefined, item, undefined, false);
    else patchRef(item, undefined, undefined, false);
  }
  for (const item of items(get(doc, 'patches'))) patchRef(get(item, 'path'), get(item, 'patch'), get(item, 'target'), false);
  for (const item of items(get(doc, 'patchesJson6902'))) patchRef(get(item, 'path'), get(item, 'patch'), get(item, 'target'), true);
  const reads = [...resources, ...components, ...patches.flatMap((p) => p.file ?? [])];
  const images = items(get(doc, 'images')).flatMap((node): KustomizeEntry[] => {
    const name = stringAt(node, 'name');
    if (name === undefined) return [];
    const site = scalarSite(yaml.text, get(node, 'name'))!;
    return [
      { file, node, name, newName: stringAt(node, 'newName'), newTag: scalarText(get(node, 'newTag')), digest: stringAt(node, 'digest'), line: site.line },
    ];
  });
  const remote = [...items(get(doc, 'resources')), ...items(get(doc, 'bases')), ...items(get(doc, 'components'))].some((n) =>
    REMOTE_RESOURCE.test(scalarSite(yaml.text, n)?.value ?? ''),
  );
  // Any file it names that a build would read from outside the repository (this machine's files,
  // the rewriter's mounted credentials), by its path or through a symbolic link, or any URL outside
  // resources/bases/components (kustomize would fetch it from the rewriter's network position).
  const outside = outsideReads(yaml.text, doc, dir, root).map((why) => `${relativeTo(root, file)}: ${why}`);
  return {
    file,
    dir,
    images,
    resources,
    components,
    patches,
    namePrefix: stringAt(doc, 'namePrefix') ?? '',
    nameSuffix: stringAt(doc, 'nameSuffix') ?? '',
    reads,
    remote: remote || outside.length > 0,
    outside,
  };
}

function relativeTo(root: string, file: string): string {
  return file.startsWith(root + sep) ? file.slice(root.length + 1) : file;
}

/** Every field of a kustomization that names a file a build reads (beyond resources, bases and components). */
const FILE_FIELDS = ['crds', 'configurations', 'transformers', 'generators', 'validators'] as const;

/**
 * What a build of this kustomization would read from outside the repository: for each, the field
 * and why (never the file's content). Paths are resolved as kustomize resolves them, then through
 * symbolic links; URLs are allowed only where kustomize takes a remote base.
 */
export function outsideReads(text: string, doc: Node | null | undefined, dir: string, root: string): string[] {
  const rootReal = realpathOrSelf(root);
  const found: string[] = [];
  const check = (field: string, value: string | undefined, urlAllowed: boolean) => {
    if (value === undefined || value === '') return;
    if (REMOTE_RESOURCE.test(value) || /^https?:/i.test(value)) {
      if (!urlAllowed) found.push(`${field} names a URL, which kustomize would fetch`);
      return;
    }
    const path = resolve(dir, value);
    const real = realpathOrSelf(path);
    if (!isInside(rootReal, path) || !isInside(rootReal, real))
      found.push(`${field} names a file outside the repository${real !== path ? ' (through a symbolic link)' : ''}`);
  };
  const values = (node: Node | undefined) => items(node).map((n) => scalarSite(text, n)?.value);
  for (const field of ['resources', 'bases', 'components']) for (const v of values(get(doc, field))) check(field, v, true);
  for (const item of items(get(doc, 'patchesStrategicMerge'))) {
    const v = scalarText(item);
    if (v !== undefined && !/\n/.test(v.trim())) check('patchesStrategicMerge', v, false);
  }
  for (const field of ['patches', 'patchesJson6902', 'replacements'])
    for (const item of items(get(doc, field))) check(`${field}[].path`, scalarSite(text, get(item, 'path'))?.value, false);
  check('openapi.path', scalarSite(text, get(get(doc, 'openapi'), 'path'))?.value, false);
  for (const field of ['configMapGenerator', 'secretGenerator'])
    for (const g of items(get(doc, field))) {
      for (const v of [...values(get(g, 'files')), ...values(get(g, 'envs')), scalarSite(text, get(g, 'env'))?.value])
        check(`${field}[] files`, v?.includes('=') ? v.slice(v.indexOf('=') + 1) : v, false);
    }
  for (const field of FILE_FIELDS)
    for (const item of items(get(doc, field))) {
      const v = scalarText(item);
      if (v === undefined) continue;
      if (!/\n/.test(v.trim())) check(field, v, false);
      // A configuration written inline: every path-like value in it (files, envs, path) is a read too.
      else for (const [key, inner] of inlinePaths(v)) check(`${field} (inline ${key})`, inner, false);
    }
  return found;
}

/** The path-like values of an inline kustomize plugin configuration (`files`, `envs`, `env`, `path`, `paths`), at any depth. */
function inlinePaths(config: string): Array<[string, string]> {
  let value: unknown;
  try {
    value = parse(config);
  } catch {
    return [['configuration', '/']]; // unreadable: taken as reading anything
  }
  const found: Array<[string, string]> = [];
  const walk = (node: unknown, key: string) => {
    if (typeof node === 'string' && /^(files|envs|env|path|paths)$/.test(key)) found.push([key, node.includes('=') ? node.slice(node.indexOf('=') + 1) : node]);
    else if (Array.isArray(node)) for (const item of node) walk(item, key);
    else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, k);
  };
  walk(value, '');
  return found;
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path; // not there: kustomize fails on it, reading nothing
  }
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root + sep);
}

/** An image split as kustomize splits it: name, then `:tag`, then `@digest`. */
export function splitImage(image: string): { name: string; tag: string | undefined; digest: string | undefined } {
  const at = image.indexOf('@');
  const digest = at >= 0 ? image.slice(at + 1) : undefined;
  const withoutDigest = at >= 0 ? image.slice(0, at) : image;
  const colon = withoutDigest.lastIndexOf(':');
  const tagged = colon > withoutDigest.lastIndexOf('/');
  return { name: tagged ? withoutDigest.slice(0, colon) : withoutDigest, tag: tagged ? withoutDigest.slice(colon + 1) : undefined, digest };
}

/** The name part of an image as written (without tag or digest). */
export function nameOf(image: string): string {
  return splitImage(image).name;
}

export function joinImage(name: string, tag: string | undefined, digest: string | undefined): string {
  return `${name}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
}

/** kustomize matches an entry's `name` against the image as written, up to its tag or digest. */
export function kustomizeMatches(image: string, name: string): boolean {
  return image === name || image.startsWith(`${name}:`) || image.startsWith(`${name}@`);
}

/**
 * The image an entry makes of `literal`, as kustomize makes it: `newName` replaces the name; a
 * `newTag` or `digest` replaces both tag and digest (both given: `name:tag@digest`). With no
 * literal: the entry's output when it pins tag or digest, else undefined.
 */
export function entryOutput(entry: KustomizeEntry, literal: string | undefined): string | undefined {
  const name = entry.newName ?? entry.name;
  if (entry.newTag !== undefined || entry.digest !== undefined) return joinImage(name, entry.newTag, entry.digest);
  if (literal === undefined) return undefined;
  const { tag, digest } = splitImage(literal);
  return joinImage(name, tag, digest);
}

/**
 * Text whose nodes the planner reads and edits: a whole file, or a patch written inside a
 * kustomization as a block scalar (`patch: |`). Edits of the text become edits of the file;
 * a patch written as a quoted or folded string cannot be edited in place (`toFile` undefined).
 */
export interface Source {
  readonly file: string;
  readonly text: string;
  /** The file's line of an offset in `text`. */
  readonly line: (offset: number) => number;
  readonly toFile: ((edit: TextEdit) => TextEdit) | undefined;
}

export function fileSource(file: string, text: string): Source {
  return { file, text, line: (offset) => lineOf(text, offset), toFile: (edit) => edit };
}

/** The text of a patch written inside `file`, mapped back onto the file when it is a literal block (`|`). */
export function inlineSource(file: string, fileText: string, node: Scalar): Source {
  const text = String(node.value);
  const firstLine = lineOf(fileText, node.range![0]);
  const readOnly: Source = { file, text, line: () => firstLine, toFile: undefined };
  if (node.type !== Scalar.BLOCK_LITERAL) return readOnly;
  const raw = fileText.slice(node.range![0], node.range![1]);
  const headerEnd = raw.indexOf('\n');
  if (headerEnd < 0) return readOnly;
  // Where each content line starts in the file, past the block's indentation.
  const contentStart = node.range![0] + headerEnd + 1;
  const lines = fileText.slice(contentStart, node.range![1]).split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  const starts: number[] = [];
  let offset = contentStart;
  for (const line of lines) {
    starts.push(offset + Math.min(indent, line.length));
    offset += line.length + 1;
  }
  const innerLines = text.split('\n');
  const stripped = lines.map((l) => l.slice(Math.min(indent, l.length)).replace(/\r$/, ''));
  if (innerLines.some((l, i) => l !== '' && l !== stripped[i])) return readOnly;
  const eol = fileText.includes('\r\n') ? '\r\n' : '\n';
  const map = (inner: number) => {
    let line = 0;
    let lineStart = 0;
    while (line < innerLines.length - 1 && lineStart + innerLines[line]!.length < inner) {
      lineStart += innerLines[line]!.length + 1;
      line++;
    }
    return starts[line]! + (inner - lineStart);
  };
  return {
    file,
    text,
    line: (inner) => firstLine + lineOf(text, inner),
    toFile: (edit) => ({ start: map(edit.start), end: map(edit.end), text: edit.text.replace(/\n/g, `${eol}${' '.repeat(indent)}`) }),
  };
}
