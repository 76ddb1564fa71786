/**
 * Moves the images of an Argo CD Application whose source is a chart from a chart repository. Argo
 * CD has no post-renderer, so the change is a values override in the file that declares the
 * Application (in its parent's path, in an app of apps), and the key must come from the chart:
 * among the chart's default values, with the Application's own overrides applied as Argo CD applies
 * them (`values`, then `valuesObject`, then `parameters`), the mapping whose composed image is the
 * one the workload runs. The conventions real charts use:
 *  - `repository` + `tag`, optionally `registry` and `digest` (Bitnami), the tag defaulting to the
 *    chart's appVersion when empty;
 *  - `registry` + `image` + `tag` + `digest` (ingress-nginx);
 *  - one `image` string.
 * The override is written in the form the file already uses: a parameter that sets the key already,
 * else `helm.valuesObject`, else inside the `helm.values` block, else new `helm.parameters` entries
 * where the Application lists only parameters, else a new `helm.valuesObject`. Byte-minimal, like
 * every other edit; pure apart from reading the tree.
 */
import { existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { isMap, isSeq, parse, Scalar, type Node, type YAMLMap } from 'yaml';
import { pinnedBackup, type DeclaredObject } from '../../handoff/schema.ts';
import { runsBackup } from '../../image/backup.ts';
import { parseReference, runsSameImage } from '../../image/reference.ts';
import { setPath, SUBSTITUTION_GUARD, valueAt, type ValueOverride } from '../proof/image-values.ts';
import type { PlannedChange, RepositoryPlan } from './planned-edits.ts';
import { loadTree } from './tree.ts';
import { declarationsOf } from './helm-release.ts';
import { addToMap, addToSeq, type Block } from './yaml-insert.ts';
import { applyTextEdits, formatScalar, get, items, parseYamlFile, scalarSite, stringAt, type ParsedYaml, type TextEdit } from './yaml-scalars.ts';

export interface ChartDefaults {
  /** The chart's values.yaml, parsed. */
  readonly values: unknown;
  readonly appVersion?: string;
}

export interface ApplicationReplacement {
  /** The image the workload runs, as written. */
  readonly source: string;
  /** The backup reference (tag, no digest) and its digest. */
  readonly backup: string;
  readonly digest: string;
}

export interface ApplicationPlan extends RepositoryPlan {
  readonly refused?: string;
  /** Where no convention found the value that composes an image: the values the chart is given, to find it by rendering (proof/image-values.ts). */
  readonly byRendering?: { readonly values: unknown; readonly sources: readonly string[] };
  /** For the pull request: what the edit sets beyond the images, and why. */
  readonly explained?: readonly string[];
}

/** Overrides found by rendering the chart, by source image (proof/image-values.ts): used where the conventions find none. */
export type DerivedOverrides = ReadonlyMap<string, readonly ValueOverride[]>;

type Override = ValueOverride;

type Json = Record<string, unknown>;

export function planApplicationValues(
  root: string,
  subdir: string | undefined,
  app: DeclaredObject,
  chart: ChartDefaults,
  replacements: readonly ApplicationReplacement[],
  derived: DerivedOverrides = new Map(),
): ApplicationPlan {
  const { rootReal, parsed, errors } = loadTree(root, subdir, [app.name], true);
  const where = `Application ${app.namespace}/${app.name}`;
  const none = { files: new Map(), changes: [], errors };
  const declarations = declarationsOf(parsed, app).filter((d) => get(get(d.root, 'spec'), 'source') !== undefined);
  const under = `${subdir ?? 'the repository root'} (or the bases it builds on)`;
  if (declarations.length === 0) return { ...none, refused: `no file under ${under} declares ${where} with a source` };
  if (declarations.length > 1)
    return { ...none, refused: `${declarations.length} files under ${under} declare ${where} with a source; which one Argo CD applies is ambiguous` };
  const { file, yaml, root: doc } = declarations[0]!;
  const text = yaml.text;
  const source = get(get(doc, 'spec'), 'source');
  const helm = get(source, 'helm');
  if (items(get(helm, 'valueFiles')).length > 0) return { ...none, refused: `${where} reads valueFiles from its chart; those are not followed yet` };

  // The values as Argo CD hands them to Helm, to find which key composes each running image.
  const valuesText = stringAt(helm, 'values');
  const valuesObject = get(helm, 'valuesObject');
  const parameters = items(get(helm, 'parameters'));
  let effective = merge(chart.values, valuesText ? parse(valuesText) : undefined);
  effective = merge(effective, isMap(valuesObject) ? valuesObject.toJSON() : undefined);
  for (const p of parameters) {
    const name = stringAt(p, 'name');
    const value = scalarSite(text, get(p, 'value'))?.value;
    if (name !== undefined && value !== undefined) effective = setPath(effective, name.split('.'), value);
  }

  const line = scalarSite(text, get(get(doc, 'metadata'), 'name'))?.line ?? 0;
  const found = overridesFor(effective, chart.appVersion, replacements, where, relative(rootReal, file), line, derived);
  if (typeof found === 'string') return { ...none, refused: found };
  if ('unmatched' in found)
    return { ...none, refused: found.reason, ...(found.unmatched.length ? { byRendering: { values: effective, sources: found.unmatched } } : {}) };
  const { overrides, changes, explained } = found;

  const edits = writeOverrides(text, source, helm, overrides);
  if (typeof edits === 'string') return { ...none, refused: `${relative(rootReal, file)}: cannot write the values override into ${where}: ${edits}` };
  const after = applyTextEdits(text, edits);
  return { files: after === text ? new Map() : new Map([[file, { before: text, after }]]), changes, errors, ...(explained?.length ? { explained } : {}) };
}

/**
 * The overrides that move each replacement's image, found among the effective values: registry and
 * repository (or image) to the backup's, and the digest where the chart reads one. An image already
 * moved is reported (a change to detect) and needs none.
 */
function overridesFor(
  effective: unknown,
  appVersion: string | undefined,
  replacements: readonly ApplicationReplacement[],
  where: string,
  file: string,
  line: number,
  derived: DerivedOverrides,
): { overrides: Override[]; changes: PlannedChange[]; explained?: string[] } | { unmatched: string[]; reason: string } {
  const overrides: Override[] = [];
  const changes: PlannedChange[] = [];
  const unmatched: string[] = [];
  const keys = imageKeys(effective, appVersion);
  for (const r of replacements) {
    const byRendering = derived.get(r.source);
    if (byRendering) {
      overrides.push(...byRendering);
      const paths = byRendering.map((o) => o.path.join('.')).join(', ');
      changes.push({ file, line, what: `${where} Helm values ${paths} (found by rendering the chart)`, before: r.source, after: pinnedBackup(r) });
      continue;
    }
    const found = keys.filter((k) => runsSameImage(k.image, r.source));
    const applied = keys.find((k) => runsBackup(k.image, r.backup, r.digest));
    if (found.length === 0 && applied) {
      // The change is already there (a crash after the push, or a merged pull request).
      changes.push({ file, line, what: `${where} Helm value ${applied.path.join('.')} (already the backup)`, before: r.source, after: applied.image });
      continue;
    }
    if (found.length === 0) {
      unmatched.push(r.source);
      continue;
    }
    const to = parseReference(pinnedBackup(r));
    for (const k of found) {
      const at = (key: string) => [...k.path, key];
      if (k.convention === 'string') overrides.push({ path: k.path, value: `${to.registry}/${to.repository}@${r.digest}` });
      else {
        const name = k.convention === 'repository' ? 'repository' : 'image';
        if (k.has.registry) overrides.push({ path: at('registry'), value: to.registry }, { path: at(name), value: to.repository });
        else overrides.push({ path: at(name), value: `${to.registry}/${to.repository}` });
        // Pinned where the chart reads a digest; else the backup's tag, copied from the same digest.
        if (k.has.digest) overrides.push({ path: at('digest'), value: r.digest });
      }
      changes.push({ file, line, what: `${where} Helm value ${k.path.join('.') || '(root)'}`, before: r.source, after: pinnedBackup(r) });
    }
  }
  if (unmatched.length > 0)
    return {
      unmatched,
      reason: `no value of the chart of ${where} composes ${unmatched.join(', ')} by the known conventions (with its defaults and the overrides it is given)`,
    };
  // A chart with Bitnami's substitution guard refuses to render any image but its own unless it is set.
  const explained: string[] = [];
  const guard = valueAt(effective, SUBSTITUTION_GUARD);
  if (overrides.length > 0 && guard !== undefined && guard !== true) {
    overrides.push({ path: SUBSTITUTION_GUARD, value: true });
    explained.push(
      `sets ${SUBSTITUTION_GUARD.join('.')}: true, without which the chart refuses to render images other than its own (the backup is the same image, by digest)`,
    );
  }
  // One override per value: two containers may share one (a registry), and must agree on it.
  const byPath = new Map<string, Override>();
  for (const o of overrides) {
    const key = o.path.join('\u0000');
    const seen = byPath.get(key);
    if (seen && seen.value !== o.value)
      return { unmatched: [], reason: `${where}: the chart's value ${o.path.join('.')} would have to be both ${String(seen.value)} and ${String(o.value)}` };
    byPath.set(key, o);
  }
  return { overrides: [...byPath.values()], changes, explained };
}

/**
 * A multi-source Application's value files (paths in the repository, in Helm's order): the last,
 * which wins, gets the overrides, set in place or added under the deepest mapping it has.
 */
export function planValueFiles(
  root: string,
  files: readonly string[],
  app: DeclaredObject,
  chart: ChartDefaults,
  replacements: readonly ApplicationReplacement[],
  derived: DerivedOverrides = new Map(),
): ApplicationPlan {
  const where = `Application ${app.namespace}/${app.name}`;
  const none = { files: new Map(), changes: [], errors: [] };
  const texts: Array<{ file: string; path: string; text: string }> = [];
  for (const path of files) {
    const read = readInside(root, path);
    if (typeof read === 'string') return { ...none, refused: `${where} reads the value file ${path}, which ${read}` };
    texts.push({ path, ...read });
  }
  let effective: unknown = chart.values;
  let last: { root: Node | null | undefined; text: string; file: string; path: string } | undefined;
  for (const t of texts) {
    let parsedFile: ParsedYaml;
    try {
      parsedFile = parseYamlFile(t.path, t.text);
    } catch (error) {
      return { ...none, refused: (error as Error).message };
    }
    const doc = parsedFile.documents[0];
    effective = merge(effective, doc?.toJS());
    last = { root: doc?.contents as Node | null | undefined, text: t.text, file: t.file, path: t.path };
  }
  const found = overridesFor(effective, chart.appVersion, replacements, where, last!.path, 1, derived);
  if ('unmatched' in found)
    return { ...none, refused: found.reason, ...(found.unmatched.length ? { byRendering: { values: effective, sources: found.unmatched } } : {}) };
  if (found.overrides.length === 0) return { ...none, changes: found.changes };
  if (!isMap(last!.root) || last!.root.flow) return { ...none, refused: `${last!.path} is not a block mapping of values` };
  const edits = setPaths(last!.text, last!.root, found.overrides);
  if (typeof edits === 'string') return { ...none, refused: `${last!.path}: ${edits}` };
  return {
    files: new Map([[last!.file, { before: last!.text, after: applyTextEdits(last!.text, edits) }]]),
    changes: found.changes,
    errors: [],
    ...(found.explained?.length ? { explained: found.explained } : {}),
  };
}

/** A file of the clone by its path in the repository; never through a symbolic link or outside it. */
function readInside(root: string, path: string): { file: string; text: string } | string {
  const rootReal = realpathSync(root);
  const file = resolve(rootReal, path);
  if (file !== rootReal && !file.startsWith(rootReal + sep)) return 'leads outside the repository';
  if (!existsSync(file)) return 'does not exist in the repository';
  if (lstatSync(file).isSymbolicLink() || realpathSync(file) !== file) return 'is reached through a symbolic link';
  return { file, text: readFileSync(file, 'utf8') };
}

interface ImageKey {
  readonly path: readonly string[];
  readonly convention: 'repository' | 'image' | 'string';
  readonly image: string;
  readonly has: { readonly registry: boolean; readonly digest: boolean };
}

/** Every place in values that composes an image, by the conventions charts use. */
export function imageKeys(values: unknown, appVersion: string | undefined): ImageKey[] {
  const found: ImageKey[] = [];
  const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  const walk = (node: unknown, path: string[]) => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return;
    const map = node as Json;
    const has = { registry: 'registry' in map, digest: 'digest' in map };
    // An empty tag defaults to the appVersion, as is or with a `v` before it (metrics-server, node-exporter, kube-state-metrics).
    const tags = text(map.tag) ? [text(map.tag)] : appVersion ? [appVersion, ...(appVersion.startsWith('v') ? [] : [`v${appVersion}`])] : [''];
    const compose = (name: string, tag: string) =>
      `${text(map.registry) ? `${text(map.registry)}/` : ''}${name}${tag ? `:${tag}` : ''}${text(map.digest) ? `@${text(map.digest)}` : ''}`;
    for (const tag of tags) {
      if (typeof map.repository === 'string' && 'tag' in map) found.push({ path, convention: 'repository', image: compose(map.repository, tag), has });
      else if (typeof map.image === 'string' && typeof map.registry === 'string')
        found.push({ path, convention: 'image', image: compose(map.image, tag), has });
    }
    for (const [key, value] of Object.entries(map)) {
      if (key === 'image' && typeof value === 'string' && !(typeof map.registry === 'string'))
        found.push({ path: [...path, key], convention: 'string', image: value, has: { registry: false, digest: false } });
      else walk(value, [...path, key]);
    }
  };
  walk(values, []);
  return found;
}

/** The overrides in the form the file uses (see the module comment). */
function writeOverrides(text: string, source: Node | undefined, helm: Node | undefined, overrides: readonly Override[]): TextEdit[] | string {
  if (!isMap(source)) return 'its spec.source is not a mapping';
  const edits: TextEdit[] = [];
  let rest = [...overrides];
  // A parameter that already sets the key: its value is what Argo CD uses, so it is what changes.
  const parameters = get(helm, 'parameters');
  for (const p of items(parameters)) {
    const match = rest.find((o) => o.path.join('.') === stringAt(p, 'name'));
    if (!match) continue;
    const site = scalarSite(text, get(p, 'value'));
    if (!site) return `its parameter ${match.path.join('.')} has no scalar value`;
    // A parameter's value is a string to Argo CD (Helm's --set reads `true` as a boolean).
    if (site.value !== String(match.value)) edits.push({ start: site.start, end: site.end, text: formatScalar(String(match.value), site) });
    rest = rest.filter((o) => o !== match);
  }
  if (rest.length === 0) return edits;
  const valuesObject = get(helm, 'valuesObject');
  if (isMap(valuesObject)) return append(edits, setPaths(text, valuesObject, rest));
  const values = get(helm, 'values');
  if (values !== undefined) return append(edits, editValuesBlock(text, values, rest));
  if (isSeq(parameters)) {
    for (const o of rest) {
      const edit = addToSeq(text, parameters, { name: o.path.join('.'), value: String(o.value) }, helm!);
      if (typeof edit === 'string') return `its helm.parameters: ${edit}`;
      edits.push(edit);
    }
    return edits;
  }
  const tree = treeOf(rest);
  const edit = isMap(helm) ? addToMap(text, helm, 'valuesObject', tree) : addToMap(text, source, 'helm', { valuesObject: tree });
  return typeof edit === 'string' ? `its helm: ${edit}` : [...edits, edit];
}

const append = (edits: TextEdit[], more: TextEdit[] | string): TextEdit[] | string => (typeof more === 'string' ? more : [...edits, ...more]);

/** Sets each path in a mapping: an existing scalar in place, missing keys added under the deepest mapping that exists. */
function setPaths(text: string, root: YAMLMap, overrides: readonly Override[]): TextEdit[] | string {
  const edits: TextEdit[] = [];
  const additions = new Map<YAMLMap, Override[]>();
  for (const o of overrides) {
    let node: YAMLMap = root;
    let i = 0;
    for (; i < o.path.length - 1; i++) {
      const next = get(node, o.path[i]!);
      if (next === undefined) break;
      if (!isMap(next)) return `${o.path.slice(0, i + 1).join('.')} is not a mapping`;
      node = next;
    }
    const existing = get(node, o.path[i]!);
    if (i === o.path.length - 1 && existing !== undefined) {
      const site = scalarSite(text, existing);
      if (!site) return `${o.path.join('.')} is not a scalar`;
      if (typeof o.value === 'boolean') {
        if (site.node.value !== o.value) edits.push({ start: site.start, end: site.end, text: String(o.value) });
      } else if (site.value !== o.value) edits.push({ start: site.start, end: site.end, text: formatScalar(o.value, site) });
      continue;
    }
    additions.set(node, [...(additions.get(node) ?? []), { path: o.path.slice(i), value: o.value }]);
  }
  for (const [node, list] of additions) {
    for (const [key, value] of Object.entries(treeOf(list))) {
      const edit = addToMap(text, node, key, value);
      if (typeof edit === 'string') return edit;
      edits.push(edit);
    }
  }
  return edits;
}

/**
 * Overrides inside a `values: |` block: the block's content is YAML of its own, edited as such and
 * mapped back line by line (its indentation added to every line written).
 */
function editValuesBlock(text: string, node: Node, overrides: readonly Override[]): TextEdit[] | string {
  const site = scalarSite(text, node);
  if (!site || (site.node.type !== Scalar.BLOCK_LITERAL && site.node.type !== Scalar.BLOCK_FOLDED))
    return 'its helm.values is not a literal block (`values: |`)';
  const headerEnd = site.raw.indexOf('\n') + 1;
  const contentStart = site.start + headerEnd;
  const lines = text.slice(contentStart, site.end).split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  if (!Number.isFinite(indent)) return 'its helm.values block is empty';
  const starts: number[] = [];
  let offset = contentStart;
  for (const line of lines) {
    starts.push(offset);
    offset += line.length + 1;
  }
  const inner = lines.map((l) => l.slice(Math.min(indent, /^ */.exec(l)![0].length))).join('\n');
  let root: Node | null | undefined;
  try {
    root = parseYamlFile('helm.values', inner).documents[0]?.contents as Node | null | undefined;
  } catch (error) {
    return `its helm.values block is not valid YAML (${(error as Error).message})`;
  }
  if (!isMap(root) || root.flow) return 'its helm.values block is not a block mapping';
  const innerEdits = setPaths(inner, root, overrides);
  if (typeof innerEdits === 'string') return `in its helm.values block, ${innerEdits}`;
  const outer = (at: number) => {
    const line = inner.slice(0, at).split('\n').length - 1;
    const column = at - (inner.lastIndexOf('\n', at - 1) + 1);
    return starts[line]! + Math.min(indent, /^ */.exec(lines[line]!)![0].length) + column;
  };
  return innerEdits.map((e) => ({ start: outer(e.start), end: outer(e.end), text: e.text.replace(/\n/g, `\n${' '.repeat(indent)}`) }));
}

/** Overrides as one nested mapping (`a.b: x`, `a.c: y` → `{a: {b: x, c: y}}`). */
function treeOf(overrides: readonly Override[]): { [key: string]: Block } {
  const tree: Json = {};
  for (const o of overrides) {
    let node = tree;
    o.path.slice(0, -1).forEach((key) => {
      node[key] ??= {};
      node = node[key] as Json;
    });
    node[o.path.at(-1)!] = o.value;
  }
  return tree as { [key: string]: Block };
}

/** Helm's merge of values: maps merge key by key, anything else replaces. */
function merge(base: unknown, over: unknown): unknown {
  if (over === undefined || over === null) return base;
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: Json = { ...(base as Json) };
    for (const [k, v] of Object.entries(over as Json)) out[k] = merge(out[k], v);
    return out;
  }
  return over;
}
