/**
 * Plans image replacements across a repository tree: every container and init container image of
 * the workload kinds (Deployment, DaemonSet, StatefulSet, ReplicaSet, Job, CronJob, Pod, Rollout),
 * every kustomize `images:` entry and patch that sets an image, and Helm image mappings, matched
 * after normalisation (`nginx:1.25` is `docker.io/library/nginx:1.25`; `nginx` is `nginx:latest`).
 *
 * The plan follows what each build renders (`kustomize-build.ts`): for every build that runs a
 * requested image, the text that decides it is edited: the literal, the patch that replaced it,
 * or the last `images:` entry that changed it. A build that shares that text but runs another
 * image keeps it: an entry that matched a moved literal is made to match the new one and to give
 * what it gave before; a HelmRelease values patch gets the parts its base no longer gives. An
 * entry that no build applies is left alone, unless its kustomization builds on what the tree
 * does not show (a remote base, or a base outside the path), where its pinned output is all
 * there is to go by.
 *
 * Helm values are edited where charts split an image into parts: a mapping with `repository` and
 * `tag` (and optionally `registry` and `digest`, the Bitnami convention), in `values*.yaml` files
 * and in a Flux HelmRelease's inline `spec.values` and the overlays' patches of it. An image given
 * as one string in values, or a tag left to the chart's appVersion, is not recognised.
 *
 * A file that does not parse is reported with its line and left untouched; every other file is
 * still planned.
 */
import { existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { isMap, isSeq, type Node } from 'yaml';
import { ConfigError } from '../../errors.ts';
import { escapeRegExp } from '../../util/regexp.ts';
import { formatReference, imageKey, parseReference, tryParseReference, type ImageReference } from '../../image/reference.ts';
import { isWorkloadKind, objectImageUses, objectsOf } from './kubernetes.ts';
import { buildModel } from './kustomize-build.ts';
import { kustomizationIn, nameOf, REMOTE_RESOURCE } from './kustomize.ts';
import { pullSecretEdits, type PullSecretWant } from './pull-secrets.ts';
import { addToMap, addToSeq, type Block } from './yaml-insert.ts';
import { loadTree } from './tree.ts';
import { applyTextEdits, get, items, lineOf, parseYamlFile, scalarSite, stringAt, YamlSyntaxError, type ParsedYaml, type TextEdit } from './yaml-scalars.ts';

import { FORMATS } from './formats/index.ts';
import { PlannedEdits, type Replacement, type RepositoryPlan, type SkippedUse } from './planned-edits.ts';

export { MANIFEST_KINDS } from './kubernetes.ts';
export { kustomizationIn } from './kustomize.ts';

export function parseReplacement(spec: string): Replacement {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new ConfigError(`--set expects OLD=NEW, got ${JSON.stringify(spec)}`);
  const to = spec.slice(eq + 1);
  parseReference(to);
  return { from: parseReference(spec.slice(0, eq)), to };
}

export interface PlanOptions {
  /**
   * Check every YAML document, so that each broken file is reported (the `rewrite` command's
   * contract); only those that can mention a wanted image are kept either way. Without it only files
   * that can mention one are parsed: 10,000 files cost 0.4 s instead of 3 s, and a broken file that
   * cannot concern the change is not looked at.
   */
  readonly reportEveryBrokenFile?: boolean;
  /** The text each file holds for this plan, where an earlier plan's edit is not written yet (default: the file on disk). */
  readonly textOf?: (file: string) => string;
}

/** Plans every replacement under `root/subdir`; reads files, writes nothing. */
export function planRepository(root: string, subdir: string | undefined, replacements: readonly Replacement[], options: PlanOptions = {}): RepositoryPlan {
  // What any textual use of an image holds: its repository path (`argoproj/argocd`, `nginx` for Docker's
  // library). Its last component alone (`argocd`) is in every document of Argo CD's install.yaml.
  // A HelmRelease's values may split the path itself (`registry: ghcr.io/org`, `repository: app`):
  // its documents are always read.
  const needles = [...replacements.map((r) => r.from.repository.replace(/^library\//, '')), 'HelmRelease'];
  const { rootReal, parsed, kustomizations, errors, others, templates, loaded } = loadTree(
    root,
    subdir,
    needles,
    false,
    options.reportEveryBrokenFile,
    options.textOf,
  );
  const model = buildModel(rootReal, parsed, kustomizations, loaded);
  errors.push(...model.errors);
  const rel = (file: string) => relative(rootReal, file);
  const byImage = new Map(replacements.map((r) => [imageKey(r.from), r]));
  const lookup = (image: string) => {
    const parsedImage = tryParseReference(image);
    return parsedImage === undefined ? undefined : byImage.get(imageKey(parsedImage));
  };
  const matched = new Set<Replacement>();
  const matches = (image: string | undefined) => {
    const replacement = image === undefined ? undefined : lookup(image);
    if (replacement) matched.add(replacement);
    return replacement;
  };
  // Each format plans its edits on the same tree and model (./formats/).
  const planned = new PlannedEdits();
  for (const format of FORMATS) planned.merge(format.plan({ rootReal, parsed, kustomizations, templates, build: model, matches }));
  errors.push(...planned.errors);
  const files = planned.files((file) => parsed.get(file)?.text ?? templates.get(file)!);
  const wanted = replacements.filter((r) => !r.detectOnly);
  // A literal of a requested image that no build runs: a patch or an entry replaces it everywhere.
  const runsRequested = new Set(model.containers.filter((r) => lookup(r.value)).map((r) => r.whole));
  const unrun = model.wholes.flatMap((whole) => {
    const replacement = lookup(whole.site.value);
    if (!replacement || replacement.detectOnly || runsRequested.has(whole)) return [];
    const instead = [...new Set(model.containers.filter((r) => r.whole.container === whole.container).map((r) => `${rel(r.root) || '.'} runs ${r.value}`))];
    const why = instead.length ? instead.join('; ') : whole.patch ? 'the patch matches no object of any build' : 'a patch replaces it';
    return [
      {
        image: formatReference(replacement.from),
        note: `${rel(whole.source.file)}:${whole.source.line(whole.site.start)} ${whole.where} is ${whole.site.value}, but no build runs it (${why}); left alone`,
      },
    ];
  });
  return {
    files,
    changes: planned.changes,
    errors,
    unmatched: replacements.filter((r) => !matched.has(r)),
    skipped: withTextMentions(
      [...unrun, ...planned.skipped, ...skippedKinds(parsed, rootReal, wanted), ...skippedFormats(others, rootReal, wanted)],
      wanted.filter((r) => !matched.has(r)),
      [...[...parsed].map(([file, yaml]) => [file, yaml.text] as const), ...templates],
      rootReal,
    ),
  };
}

/**
 * An image no field this edits uses, and no other note names, may still be written out elsewhere (a
 * container argument such as `--config-reloader-image=…`, a ConfigMap value, an annotation): named
 * with file and line (at most three a file), so that "no use found" is said only where the text
 * holds none.
 */
function withTextMentions(
  skipped: readonly SkippedUse[],
  unmatched: readonly Replacement[],
  texts: ReadonlyArray<readonly [string, string]>,
  rootReal: string,
): SkippedUse[] {
  const named = new Set(skipped.map((s) => s.image));
  const out = [...skipped];
  for (const r of unmatched) {
    const image = formatReference(r.from);
    if (named.has(image)) continue;
    const forms = [...new Set([image, formatShort(r)])];
    for (const [file, text] of texts) {
      const lines = forms.flatMap((form) =>
        [...text.matchAll(new RegExp(`(?<![\\w./-])${escapeRegExp(form)}(?![\\w.-])`, 'g'))].map((m) => lineOf(text, m.index)),
      );
      const unique = [...new Set(lines)].sort((a, b) => a - b);
      if (unique.length === 0) continue;
      const shown = unique.slice(0, 3).join(', ') + (unique.length > 3 ? ` and ${unique.length - 3} more` : '');
      out.push({
        image,
        note: `${relative(rootReal, file)}:${shown} mentions ${formatShort(r)} outside an image field this edits (an argument, a value, an annotation)`,
      });
    }
  }
  return out;
}

/** Objects of kinds the planner does not edit whose `image` fields name a requested image. */
function skippedKinds(parsed: ReadonlyMap<string, ParsedYaml>, root: string, replacements: readonly Replacement[]): SkippedUse[] {
  if (replacements.length === 0) return [];
  const keys = new Map(replacements.map((r) => [imageKey(r.from), formatReference(r.from)]));
  const out: SkippedUse[] = [];
  for (const [file, yaml] of parsed) {
    for (const object of objectsOf(yaml)) {
      const kind = stringAt(object, 'kind');
      if (!kind || isWorkloadKind(kind) || kind === 'HelmRelease' || kind === 'Kustomization') continue;
      // An operator's resource: its documented image fields are edited; any other image in it is named.
      const edited = new Set(objectImageUses(file, yaml.text, object).map((use) => use.site.start));
      const walk = (node: unknown) => {
        if (isMap(node)) {
          for (const pair of node.items) {
            const found = (pair.key as { value?: unknown })?.value === 'image' ? scalarSite(yaml.text, pair.value as Node) : undefined;
            const site = found && !edited.has(found.start) ? found : undefined;
            const ref = site ? tryParseReference(site.value) : undefined;
            if (site && ref && keys.has(imageKey(ref)))
              out.push({
                image: keys.get(imageKey(ref))!,
                note: `${relative(root, file)}:${site.line} ${kind}/${stringAt(get(object, 'metadata'), 'name') ?? '?'} uses ${site.value}; ${edited.size > 0 ? `that field of ${kind} is not one this edits` : `${kind} is not a kind this edits`} (see the README's list)`,
              });
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
function skippedFormats(files: readonly string[], rootReal: string, replacements: readonly Replacement[]): SkippedUse[] {
  if (replacements.length === 0) return [];
  return files.flatMap((path) => {
    const text = readFileSync(path, 'utf8');
    const kind = path.endsWith('.json') ? 'JSON' : 'Jsonnet';
    return replacements
      .filter((r) => text.includes(formatShort(r)))
      .map((r) => ({ image: formatReference(r.from), note: `${relative(rootReal, path)} mentions ${formatShort(r)}; ${kind} manifests are not edited` }));
  });
}

/** A requested image as manifests usually write it: `nginx:1.25` rather than `docker.io/library/nginx:1.25`. */
function formatShort(r: Replacement): string {
  const name = r.from.registry === 'docker.io' ? r.from.repository.replace(/^library\//, '') : `${r.from.registry}/${r.from.repository}`;
  return `${name}${r.from.tag ? `:${r.from.tag}` : ''}${r.from.digest ? `@${r.from.digest}` : ''}`;
}

/**
 * For images that no manifest under `root/subdir` names because the resource comes from a base
 * outside it: an `images:` entry in the kustomization at `root/subdir` that maps the image's name,
 * as the base renders it, to the new one. kustomize applies it to this overlay only, so sibling
 * overlays of a shared base keep what they render. A base in the repository is read to find how
 * it writes the image (and is left alone); a remote base cannot be read, so the name is the image
 * as the workload names it (`asWritten`). Without such a base there is nothing to add.
 */
export function planOverlayEntries(
  root: string,
  subdir: string | undefined,
  additions: readonly { readonly from: ImageReference; readonly asWritten: string; readonly to: string }[],
  textOf: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): RepositoryPlan {
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
  const listed = [...items(get(doc, 'resources')), ...items(get(doc, 'bases')), ...items(get(doc, 'components'))]
    .map((n) => scalarSite(text, n)?.value)
    .filter((v): v is string => v !== undefined);
  const remote = listed.some((v) => REMOTE_RESOURCE.test(v));
  const inside = (path: string) => path === rootReal || path.startsWith(rootReal + sep);
  const within = (path: string) => path === dir || path.startsWith(dir + sep);
  const localBases = listed
    .filter((v) => !REMOTE_RESOURCE.test(v))
    .map((v) => resolve(dir, v))
    .filter((p) => inside(p) && !within(p) && existsSync(p) && lstatSync(p).isDirectory());
  // How each base outside the path writes the image, after its own kustomizations.
  const renderedName = new Map<ImageReference, string>();
  for (const base of localBases) {
    const found = planRepository(
      rootReal,
      relative(rootReal, base),
      additions.map((a) => ({ from: a.from, to: a.to, detectOnly: true })),
    );
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
  const entries = wanted.map(({ name, to }): Block => {
    const target = parseReference(to);
    return {
      name,
      newName: `${target.registry}/${target.repository}`,
      ...(target.tag !== undefined ? { newTag: target.tag } : {}),
      ...(target.digest !== undefined ? { digest: target.digest } : {}),
    };
  });
  // Written in the file's own style (./yaml-insert.ts): after the last entry of its `images:`, or a new `images:` list at the end.
  const images = get(doc, 'images');
  const refuse = (why: string) => ({
    ...none,
    errors: [new YamlSyntaxError(relative(rootReal, file), scalarSite(text, images ?? doc)?.line ?? 0, why)],
  });
  let edits: TextEdit[] = [];
  if (isSeq(images) && images.flow) return refuse('cannot add an entry to a flow-style images: list; write it as a block list');
  if (isSeq(images) && images.items.length > 0) {
    for (const entry of entries) {
      const edit = addToSeq(text, images, entry, doc!);
      if (typeof edit === 'string') return refuse(`cannot add an entry to its images: list: ${edit}`);
      edits.push(edit);
    }
  } else if (images === undefined && isMap(doc)) {
    const edit = addToMap(text, doc, 'images', entries);
    if (typeof edit === 'string') return refuse(`cannot add an images: list: ${edit}`);
    edits = [edit];
  } else return refuse('cannot add an entry to its images:, which is neither a list nor absent');
  const after = applyTextEdits(text, edits);
  return {
    files: new Map([[file, { before: text, after }]]),
    changes: wanted.map(({ name, to }) => ({
      file: relative(rootReal, file),
      line: 0,
      what: 'kustomize images entry added for a base outside the path',
      before: name,
      after: to,
    })),
    errors: [],
  };
}

/**
 * `imagePullSecrets` for each wanted workload, in every document under `root/subdir` that declares
 * its pod template. A workload that no document declares (its pod template comes from a remote
 * base or a chart) or whose list cannot be extended is refused, with the reason: its image must not
 * move without the Secret.
 */
export function planPullSecrets<W extends PullSecretWant>(
  root: string,
  subdir: string | undefined,
  wants: readonly W[],
  textOf?: (file: string) => string,
): RepositoryPlan & { refused: Array<{ want: W; reason: string }> } {
  const refused: Array<{ want: W; reason: string }> = [];
  if (wants.length === 0) return { files: new Map(), changes: [], errors: [], refused };
  const { rootReal, parsed, errors } = loadTree(
    root,
    subdir,
    wants.map((w) => w.workload.name),
    false,
    false,
    textOf,
  );
  const planned = new PlannedEdits();
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
      refused.push({
        want,
        reason: `cannot add imagePullSecrets ${want.secret} to ${kind} ${namespace}/${name}: ${problem ?? `no manifest under ${subdir ?? 'the repository root'} declares its pod template (it may come from a remote base or a chart); list the Secret in its service account, or in the manifest`}`,
      });
      continue;
    }
    for (const { file, edits: fileEdits } of found) {
      if (fileEdits.length === 0) continue;
      planned.edit(file, fileEdits).changes.push({
        file: relative(rootReal, file),
        line: lineOf(parsed.get(file)!.text, fileEdits[0]!.start),
        what: `${kind}/${name} imagePullSecrets`,
        before: '',
        after: want.secret,
      });
    }
  }
  return { files: planned.files((file) => parsed.get(file)!.text), changes: planned.changes, errors, refused };
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

/** Every container and init container image of the workloads under `root/subdir`, as each build runs it. */
export function scanImages(root: string, subdir: string | undefined): { images: ScannedImage[]; errors: readonly Error[] } {
  const { rootReal, parsed, kustomizations, errors, loaded } = loadTree(root, subdir, undefined);
  const model = buildModel(rootReal, parsed, kustomizations, loaded);
  const seen = new Set<string>();
  const images = model.containers.flatMap((r): ScannedImage[] => {
    const file = relative(rootReal, r.whole.source.file);
    const key = [file, r.workload.kind, r.workload.name, r.container, r.init, r.value].join('\0');
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ file, ...r.workload, container: r.container, init: r.init, image: r.value, pullSecrets: r.pullSecrets }];
  });
  return { images, errors: [...errors, ...model.errors] };
}
