/**
 * Moves the images of a Flux HelmRelease whose chart comes from a Helm or OCI repository: the
 * chart is not in Git, but the HelmRelease is, in a file under the path of the Kustomization that
 * applies it (or in a base that path builds on). Two edits can move an image, tried in this order:
 *
 *  1. its `spec.values`, as the owner's overlay merges them (a base's values, then its patch of
 *     them), already hold the image (a `repository` + `tag` mapping, with `registry` and `digest`
 *     where the chart has them): edit the most specific layer; an overlay beside it that shares an
 *     edited layer keeps its image (see planHelmLayers);
 *  2. otherwise an entry in `spec.postRenderers[].kustomize.images` (`name` as the chart renders it,
 *     `newName`, `digest`), which Flux applies to whatever the chart renders, without knowing the
 *     chart's values layout. An entry of ours already there (or one the user wrote that makes the
 *     running image) is edited instead of adding a second. A new one goes where the chart is
 *     declared, or, when that base is shared with other overlays, into the owner's own patch of
 *     the release.
 *
 * Every edit is an insertion or a scalar splice in the file's own style (see yaml-insert.ts).
 * Pure apart from reading the tree; writes nothing.
 */
import { relative, resolve, sep } from 'node:path';
import { isMap, isSeq, type Node, type YAMLMap } from 'yaml';
import type { DeclaredObject } from '../../handoff/schema.ts';
import { formatReference, parseReference, runsSameImage } from '../../image/reference.ts';
import { buildModel } from './kustomize-build.ts';
import { helmRenderImage, type HelmValueRender } from './release-renders.ts';
import { entryOutput, kustomizationIn, nameOf, type KustomizeEntry } from './kustomize.ts';
import { planHelmLayers } from './helm-layers.ts';
import { PlannedEdits, type Replacement, type RepositoryPlan } from './planned-edits.ts';
import { kustomizeRoots, loadTree } from './tree.ts';
import { addToMap, addToSeq, setInMap, type Block } from './yaml-insert.ts';
import { get, items, scalarSite, scalarText, stringAt, type ParsedYaml, type TextEdit } from './yaml-scalars.ts';

export interface ReleaseReplacement extends Replacement {
  /** The image as the chart renders it today (the workload's image), for a post-renderer entry's `name`. */
  readonly asWritten?: string;
}

export interface ReleasePlan extends RepositoryPlan {
  /** Why the HelmRelease cannot be edited (not declared under the path, or not in a shape we can extend). */
  readonly refused?: string;
}

export interface Declaration {
  readonly file: string;
  readonly yaml: ParsedYaml;
  readonly root: Node;
  readonly document: ParsedYaml['documents'][number];
}

/** The edits that make `release` run each replacement's new image; reads `root/subdir` and its in-repository bases. */
export function planHelmRelease(root: string, subdir: string | undefined, release: DeclaredObject, replacements: readonly ReleaseReplacement[]): ReleasePlan {
  const { rootReal, parsed, errors } = loadTree(root, subdir, [release.name], true);
  const declarations = declarationsOf(parsed, release);
  const none = { files: new Map(), changes: [], errors };
  const where = `HelmRelease ${release.namespace}/${release.name}`;
  if (declarations.length === 0) {
    return {
      ...none,
      refused: `no file under ${subdir ?? 'the repository root'} (or the bases it builds on) declares ${where}${errors.length ? ` (${errors.length} file(s) could not be read: ${errors.map((e) => e.message).join('; ')})` : ''}`,
    };
  }
  const planned = new PlannedEdits();
  const additions: ReleaseReplacement[] = [];
  // The values as each build of the repository layers them (a base's, then an overlay's patch of them).
  const repository = loadTree(root, undefined, [release.name]);
  const model = buildModel(repository.rootReal, repository.parsed, repository.kustomizations, repository.loaded);
  const ownerDir = resolve(rootReal, subdir ?? '.');
  const ownerBuilds = kustomizationIn(ownerDir)
    ? (build: string) => build === ownerDir
    : (build: string) => build === ownerDir || build.startsWith(ownerDir + sep);
  const owned = model.helm.filter((r) => ownerBuilds(r.root) && r.names.includes(release.name));
  const inValues = new Map<HelmValueRender, ReleaseReplacement>();
  for (const replacement of replacements) {
    const wanted = formatReference(replacement.from);
    const is = (image: string | undefined) => image !== undefined && runsSameImage(image, wanted);
    // 1. The values already spell the image out, as the owner's build merges them.
    const render = owned.find((r) => is(helmRenderImage(r)));
    if (render) {
      inValues.set(render, replacement);
      continue;
    }
    // 2. A post-renderer entry already makes it (ours from an earlier change, or the user's).
    // An entry that pins a tag or digest makes a known image; one that only renames makes the
    // running image when its new name is the running image's name.
    const output = (e: KustomizeEntry) =>
      entryOutput(e, undefined) ??
      (replacement.asWritten !== undefined && (e.newName ?? e.name) === nameOf(replacement.asWritten) ? replacement.asWritten : undefined);
    // An entry for the name the chart renders is the one to set (ours, when the change is already there).
    const entries = declarations.flatMap((d) => postRendererEntries(d));
    const entry =
      entries.find((e) => is(output(e))) ??
      (replacement.detectOnly || replacement.asWritten === undefined ? undefined : entries.find((e) => e.name === nameOf(replacement.asWritten!)));
    if (entry) {
      planned.merge(
        entryEdit(
          entry,
          replacement,
          parsed.get(entry.file)!.text,
          rootReal,
          output(entry) ?? replacement.asWritten!,
          `${where} post-renderer images entry "${entry.name}"`,
        ),
      );
      continue;
    }
    if (!replacement.detectOnly) additions.push(replacement);
  }
  // The owner's layer is edited; another build that shares it keeps its image.
  planned.merge(planHelmLayers(model.helm, (r) => inValues.get(r), rootReal));
  if (additions.length > 0) {
    // The declaration that names the chart is the one Flux reads whole; a patch of it may not carry postRenderers.
    const declaring =
      declarations.find((d) => get(get(d.root, 'spec'), 'chart') !== undefined || get(get(d.root, 'spec'), 'chartRef') !== undefined) ?? declarations[0]!;
    // A base that other builds share: the owner's own patch of the release takes the post-renderer,
    // so only the owner's build moves (only where the base has none: a patch's list replaces the base's).
    const inOwnerPath = (d: Declaration) => d.file.startsWith(ownerDir + sep);
    const ownPatch = declarations.find((d) => d !== declaring && inOwnerPath(d));
    const shared = !inOwnerPath(declaring) && kustomizeRoots(rootReal, [declaring.file]).some((r) => r.dir !== ownerDir);
    const main = shared && ownPatch && get(get(declaring.root, 'spec'), 'postRenderers') === undefined ? ownPatch : declaring;
    // One entry per image: an init container and a container running the same image need one.
    const entries = [...new Map(additions.map(imageEntry).map((e) => [JSON.stringify(e), e])).values()];
    const added = addPostRendererImages(main, entries);
    if (typeof added === 'string')
      return { ...none, refused: `${relative(rootReal, main.file)}: cannot add a post-renderer images entry to ${where}: ${added}` };
    planned.edit(main.file, added);
    const line = scalarSite(main.yaml.text, get(get(main.root, 'metadata'), 'name'))?.line ?? 0;
    for (const a of additions)
      planned.changes.push({
        file: relative(rootReal, main.file),
        line,
        what: `${where} post-renderer images entry added`,
        before: a.asWritten ?? a.from.repository,
        after: a.to,
      });
  }
  return {
    files: planned.files((file) => (repository.parsed.get(file) ?? parsed.get(file)!).text),
    changes: planned.changes,
    errors: [...errors, ...planned.errors],
  };
}

/** An `images:` entry rewritten so that it produces `to`: newName, then newTag or digest. */
function entryEdit(entry: KustomizeEntry, replacement: Replacement, text: string, root: string, before: string, what: string): PlannedEdits {
  const to = parseReference(replacement.to);
  const map = entry.node as YAMLMap;
  const planned = new PlannedEdits();
  if (!replacement.detectOnly)
    planned.edit(entry.file, [
      ...setInMap(text, map, 'newName', nameOf(replacement.to)),
      ...(to.digest !== undefined ? setInMap(text, map, 'digest', to.digest) : to.tag !== undefined ? setInMap(text, map, 'newTag', to.tag) : []),
    ]);
  planned.changes.push({ file: relative(root, entry.file), line: entry.line, what, before, after: replacement.to });
  return planned;
}

/** The documents under `root/subdir` (and its bases) that declare the object, as plain objects. */
export function declaredDocuments(root: string, subdir: string | undefined, declared: DeclaredObject): Array<Record<string, unknown>> {
  const { parsed } = loadTree(root, subdir, [declared.name], true);
  return declarationsOf(parsed, declared).map((d) => d.document.toJS() as Record<string, unknown>);
}

const API_GROUPS: Readonly<Record<DeclaredObject['kind'], string>> = { HelmRelease: 'helm.toolkit.fluxcd.io/', Application: 'argoproj.io/' };

/**
 * Documents declaring the object: kind, API group and name, and its namespace where the file states
 * one (unless a Kustomization's targetNamespace overrides it for a HelmRelease).
 */
export function declarationsOf(parsed: ReadonlyMap<string, ParsedYaml>, declared: DeclaredObject): Declaration[] {
  const found: Declaration[] = [];
  const namespaceForced = declared.kind === 'HelmRelease' && declared.targetNamespace !== undefined;
  for (const [file, yaml] of parsed) {
    for (const doc of yaml.documents) {
      const root = doc.contents as Node | null;
      if (!root || stringAt(root, 'kind') !== declared.kind || !(stringAt(root, 'apiVersion') ?? '').startsWith(API_GROUPS[declared.kind])) continue;
      const metadata = get(root, 'metadata');
      if (stringAt(metadata, 'name') !== declared.name) continue;
      const namespace = stringAt(metadata, 'namespace');
      if (!namespaceForced && namespace !== undefined && namespace !== declared.namespace) continue;
      found.push({ file, yaml, root, document: doc });
    }
  }
  return found;
}

/** The `images` entries of a HelmRelease's kustomize post-renderers. */
function postRendererEntries(declaration: Declaration): KustomizeEntry[] {
  const renderers = items(get(get(declaration.root, 'spec'), 'postRenderers'));
  return renderers.flatMap((renderer) =>
    items(get(get(renderer, 'kustomize'), 'images')).flatMap((node): KustomizeEntry[] => {
      const name = stringAt(node, 'name');
      if (name === undefined) return [];
      const line = scalarSite(declaration.yaml.text, get(node, 'name'))!.line;
      return [
        {
          file: declaration.file,
          node,
          name,
          newName: stringAt(node, 'newName'),
          newTag: scalarText(get(node, 'newTag')),
          digest: stringAt(node, 'digest'),
          line,
        },
      ];
    }),
  );
}

/** A kustomize images entry that turns the image as the chart renders it into the backup. */
function imageEntry(replacement: ReleaseReplacement): Block {
  const to = parseReference(replacement.to);
  return {
    name: nameOf(replacement.asWritten ?? replacement.to),
    newName: `${to.registry}/${to.repository}`,
    ...(to.digest === undefined && to.tag !== undefined ? { newTag: to.tag } : {}),
    ...(to.digest !== undefined ? { digest: to.digest } : {}),
  };
}

/**
 * Adds images entries where the HelmRelease keeps them: to the first kustomize post-renderer's
 * `images` list, or a new `images` list in it, or a new kustomize post-renderer, or a new
 * `postRenderers` list in its spec.
 */
function addPostRendererImages(declaration: Declaration, entries: readonly Block[]): TextEdit[] | string {
  const text = declaration.yaml.text;
  const spec = get(declaration.root, 'spec');
  if (!isMap(spec)) return 'it has no spec mapping';
  const renderers = get(spec, 'postRenderers');
  if (renderers === undefined) return single(addToMap(text, spec, 'postRenderers', [{ kustomize: { images: entries } }]));
  if (!isSeq(renderers)) return 'its postRenderers is not a list';
  const kustomize = items(renderers)
    .map((r) => get(r, 'kustomize'))
    .find((k) => isMap(k));
  if (!kustomize || !isMap(kustomize)) return single(addToSeq(text, renderers, { kustomize: { images: entries } }, spec));
  const images = get(kustomize, 'images');
  if (images === undefined) return single(addToMap(text, kustomize, 'images', entries));
  if (!isSeq(images)) return 'its post-renderer images is not a list';
  const edits: TextEdit[] = [];
  for (const entry of entries) {
    const edit = addToSeq(text, images, entry, spec);
    if (typeof edit === 'string') return edit;
    edits.push(edit);
  }
  return edits;
}

const single = (edit: TextEdit | string): TextEdit[] | string => (typeof edit === 'string' ? edit : [edit]);
