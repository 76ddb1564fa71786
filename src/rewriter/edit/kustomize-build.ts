/**
 * A model of what `kustomize build` renders for what the planner edits: each container's image,
 * and each image mapping in a HelmRelease's values, in every build Argo CD or Flux would run (a
 * kustomization no other one lists, or a plain file no kustomization lists), with the text that
 * decides it: the literal that wrote the image (in a resource, or in a patch that replaced it),
 * then the `images:` entries that changed it, in order.
 *
 * It follows what kustomize does to images: resources and components accumulated, then in each
 * kustomization its strategic-merge and JSON 6902 patches, then its `images:` entries one after
 * another (an entry applies to the image as the ones before it left it), and name prefixes and
 * suffixes (a patch higher up may target the prefixed name). What it does not follow (a patch
 * chosen by label selector, `replacements`, an operation that moves containers) it leaves as it
 * was; the render proof checks every change with real kustomize, so a gap in the model shows as
 * a refused change, never as a wrong one.
 */
import { relative } from 'node:path';
import { isMap, isSeq, type Node } from 'yaml';
import { editsImagesOf, imageUses, objectImageUses, objectsOf, workloadOf, type ImageUse, type Workload } from './kubernetes.ts';
import {
  entryOutput,
  fileSource,
  inlineSource,
  isKustomization,
  kustomizeMatches,
  type Kustomization,
  type KustomizeEntry,
  type PatchRef,
  type PatchTarget,
  type Source,
} from './kustomize.ts';
import { escapeRegExp } from '../../util/regexp.ts';
import { layerReleasePatch, releaseValueRenders, type HelmValueRender } from './release-renders.ts';
import { get, items, parseYamlFile, scalarSite, stringAt, YamlSyntaxError, type ParsedYaml, type ScalarSite } from './yaml-scalars.ts';

/** A literal image: a container's `image` in a manifest, or in a patch. */
export interface WholeSite {
  readonly source: Source;
  readonly site: ScalarSite;
  readonly where: string;
  /** The container it is written for, as declared: `Kind/name init|container name`. */
  readonly container: string;
  /** Written in a patch (which may match no object), not in the object itself. */
  readonly patch?: boolean;
}

export interface ContainerRender {
  /** The build: a kustomization's directory, or a plain file. */
  readonly root: string;
  readonly workload: Workload;
  /** Its name as declared, then as each prefix or suffix made it (a patch may target any). */
  readonly names: readonly string[];
  readonly container: string;
  readonly init: boolean;
  readonly index: number;
  /** The image the build gives it. */
  readonly value: string;
  /** The literal it started from; `entries` then changed it, in order. */
  readonly whole: WholeSite;
  readonly entries: readonly KustomizeEntry[];
  readonly pullSecrets: readonly string[];
}

export interface BuildModel {
  readonly containers: readonly ContainerRender[];
  readonly helm: readonly HelmValueRender[];
  /** Every literal the model met, including those a patch replaces in every build. */
  readonly wholes: readonly WholeSite[];
  /** The `images:` entries that apply to some container of some build. */
  readonly reached: ReadonlySet<KustomizeEntry>;
  /** Kustomizations whose build reads what the model cannot see: a remote base, files outside the tree read. */
  readonly opaque: ReadonlySet<Kustomization>;
  /** Patches written inline that do not parse. */
  readonly errors: readonly Error[];
}

interface Renders {
  readonly containers: readonly ContainerRender[];
  readonly helm: readonly HelmValueRender[];
  /**
   * Whether the build holds objects the model did not read (a file with no use of a wanted image, a
   * remote base): only then may a patch whose target matches nothing read be patching one of them.
   */
  readonly blind?: boolean;
}

/**
 * Models every build of the tree. `loaded` tells whether a path listed by a kustomization was
 * read (a base outside the path being planned was not).
 */
export function buildModel(
  rootReal: string,
  parsed: ReadonlyMap<string, ParsedYaml>,
  kustomizations: readonly Kustomization[],
  loaded: (path: string) => boolean,
): BuildModel {
  return new BuildModeller(rootReal, parsed, kustomizations, loaded).model();
}

/** One modelling of a tree: what it has read and met so far, each file's source and each literal made once. */
class BuildModeller {
  readonly #rootReal: string;
  readonly #parsed: ReadonlyMap<string, ParsedYaml>;
  readonly #kustomizations: readonly Kustomization[];
  readonly #loaded: (path: string) => boolean;
  readonly #byDir: ReadonlyMap<string, Kustomization>;
  readonly #wholes: WholeSite[] = [];
  readonly #reached = new Set<KustomizeEntry>();
  readonly #opaque = new Set<Kustomization>();
  readonly #errors: Error[] = [];
  readonly #sources = new Map<string, Source>();
  // One object per literal, however many builds reach it: an edit of it is made once.
  readonly #wholeSites = new Map<Source, Map<number, WholeSite>>();
  // What a file declares, before any kustomization touches it.
  readonly #declared = new Map<string, Renders>();
  readonly #patches = new Map<PatchRef, { source: Source; documents: Node[] } | undefined>();

  constructor(rootReal: string, parsed: ReadonlyMap<string, ParsedYaml>, kustomizations: readonly Kustomization[], loaded: (path: string) => boolean) {
    this.#rootReal = rootReal;
    this.#parsed = parsed;
    this.#kustomizations = kustomizations;
    this.#loaded = loaded;
    this.#byDir = new Map(kustomizations.map((k) => [k.dir, k]));
  }

  /** Every build: each kustomization no other lists, each plain file no kustomization lists or patches with. */
  model(): BuildModel {
    const kustomizations = this.#kustomizations;
    const listed = new Set(kustomizations.flatMap((k) => [...k.resources, ...k.components]));
    const patchFiles = new Set(kustomizations.flatMap((k) => k.patches.flatMap((p) => p.file ?? [])));
    const containers: ContainerRender[] = [];
    const helm: HelmValueRender[] = [];
    const add = (root: string, renders: Renders) => {
      containers.push(...renders.containers.map((r) => ({ ...r, root })));
      helm.push(...renders.helm.map((r) => ({ ...r, root })));
    };
    for (const k of kustomizations) if (!listed.has(k.dir)) add(k.dir, this.#accumulate(k, { containers: [], helm: [] }, new Set()));
    for (const file of this.#parsed.keys()) if (!isKustomization(file) && !listed.has(file) && !patchFiles.has(file)) add(file, this.#fileRenders(file));
    return { containers, helm, wholes: this.#wholes, reached: this.#reached, opaque: this.#opaque, errors: this.#errors };
  }

  #sourceOf(file: string): Source {
    let source = this.#sources.get(file);
    if (!source) {
      source = fileSource(file, this.#parsed.get(file)!.text);
      this.#sources.set(file, source);
    }
    return source;
  }

  #wholeAt(source: Source, site: ScalarSite, where: string, container: string, patch = false): WholeSite {
    const bySite = this.#wholeSites.get(source) ?? new Map<number, WholeSite>();
    this.#wholeSites.set(source, bySite);
    let whole = bySite.get(site.start);
    if (!whole) {
      whole = { source, site, where, container, ...(patch ? { patch } : {}) };
      bySite.set(site.start, whole);
      this.#wholes.push(whole);
    }
    return whole;
  }

  #fileRenders(file: string): Renders {
    let renders = this.#declared.get(file);
    if (renders) return renders;
    const yaml = this.#parsed.get(file)!;
    const source = this.#sourceOf(file);
    const containers = imageUses(file, yaml).map((use) =>
      containerOf(use, this.#wholeAt(source, use.site, use.where, containerKey(use.workload, use.init, use.container))),
    );
    const helm = objectsOf(yaml).flatMap((object) => releaseValueRenders(object, source));
    renders = { containers, helm, blind: yaml.partial === true };
    this.#declared.set(file, renders);
    return renders;
  }

  #patchOf(k: Kustomization, ref: PatchRef): { source: Source; documents: Node[] } | undefined {
    if (this.#patches.has(ref)) return this.#patches.get(ref);
    let found: { source: Source; documents: Node[] } | undefined;
    if (ref.file !== undefined) {
      const yaml = this.#parsed.get(ref.file);
      if (yaml) found = { source: this.#sourceOf(ref.file), documents: yaml.documents.map((d) => d.contents as Node) };
    } else if (ref.inline) {
      const source = inlineSource(k.file, this.#parsed.get(k.file)!.text, ref.inline);
      try {
        const yaml = parseYamlFile(`${relative(this.#rootReal, k.file)} (a patch written inline)`, source.text);
        found = { source, documents: yaml.documents.map((d) => d.contents as Node) };
      } catch (error) {
        this.#errors.push(
          error instanceof YamlSyntaxError
            ? new YamlSyntaxError(relative(this.#rootReal, k.file), source.line(0), `a patch written inline does not parse: ${error.message}`)
            : (error as Error),
        );
      }
    }
    this.#patches.set(ref, found);
    return found;
  }

  /** A strategic-merge patch: its containers' images replace the targets', its values mappings layer over theirs. */
  #strategicMerge(k: Kustomization, ref: PatchRef, source: Source, object: Node, renders: Renders): Renders {
    const object_ = workloadOf(object);
    if (!object_) return renders;
    const hits = patchTargets(ref.target, object_);
    let containers = [...renders.containers];
    if (editsImagesOf(object)) {
      for (const use of objectImageUses(source.file, source.text, object)) {
        const whole = this.#wholeAt(
          source,
          use.site,
          `${use.where}, set by a patch of ${relative(this.#rootReal, k.file)}`,
          containerKey(use.workload, use.init, use.container),
          true,
        );
        let found = false;
        const patched = containers.find((r) => hits(r.workload.kind, r.names));
        containers = containers.map((r) => {
          if (!hits(r.workload.kind, r.names) || r.init !== use.init || r.container !== use.container) return r;
          found = true;
          return { ...r, value: use.site.value, whole, entries: [] };
        });
        // A container the patch adds to an object it patches; or, where the object was not read (a base
        // outside the tree, a file with no use of the image), the patch's image stands alone. Where
        // every object was read and none matches, the patch changes nothing (kustomize matches a
        // target by names before this kustomization's own prefix) and its image runs nowhere.
        if (!found && patched) containers.push({ ...containerOf(use, whole), workload: patched.workload, names: patched.names });
        else if (!found && renders.blind) containers.push(containerOf(use, whole));
      }
    }
    const helm = object_.kind === 'HelmRelease' ? layerReleasePatch(renders.helm, hits, object, object_, source) : renders.helm;
    return { ...renders, containers, helm };
  }

  /** JSON 6902 operations that add or replace a container's image (or a whole container). */
  #json6902(k: Kustomization, ref: PatchRef, source: Source, operations: readonly Node[], renders: Renders): Renders {
    if (!ref.target) return renders;
    const hits = patchTargets(ref.target, undefined);
    let containers = [...renders.containers];
    for (const operation of operations) {
      const op = stringAt(operation, 'op');
      const path = stringAt(operation, 'path');
      // A container's image, a whole container, or a whole list of them (`add` of initContainers).
      const at = path === undefined ? null : /\/(initContainers|containers)(?:\/(\d+|-))?(\/image)?$/.exec(path);
      if ((op !== 'add' && op !== 'replace') || !at || (at[3] !== undefined && at[2] === undefined)) continue;
      const value = get(operation, 'value');
      const init = at[1] === 'initContainers';
      const written =
        at[2] === undefined
          ? items(value).map((container, index) => ({ index, container, image: get(container, 'image') }))
          : [{ index: at[2] === '-' ? -1 : Number(at[2]), container: at[3] ? undefined : value, image: at[3] ? value : get(value, 'image') }];
      // A whole list replaces every container of that list the target had.
      if (at[2] === undefined) containers = containers.filter((r) => !(hits(r.workload.kind, r.names) && r.init === init));
      for (const { index, container, image } of written) {
        const site = scalarSite(source.text, image);
        if (!site) continue;
        const replaces = at[2] !== undefined && (op === 'replace' || at[3] !== undefined);
        const replaced = replaces ? containers.find((r) => hits(r.workload.kind, r.names) && r.init === init && r.index === index) : undefined;
        const workload = replaced?.workload ?? { kind: ref.target.kind ?? '?', namespace: undefined, name: ref.target.name ?? '?' };
        const name = replaced?.container ?? (container === undefined ? undefined : stringAt(container, 'name')) ?? `#${index}`;
        const whole = this.#wholeAt(
          source,
          site,
          `${path}${at[2] === undefined ? `/${index}` : ''} of ${workload.kind}/${workload.name}, set by a JSON 6902 patch of ${relative(this.#rootReal, k.file)}`,
          containerKey(workload, init, name),
          true,
        );
        let found = false;
        containers = containers.map((r) => {
          if (!replaces || !hits(r.workload.kind, r.names) || r.init !== init || r.index !== index) return r;
          found = true;
          return { ...r, value: site.value, whole, entries: [] };
        });
        // As for a strategic merge: a container added to an object read, or to one the model did not read.
        const patched = replaced ?? renders.containers.find((r) => hits(r.workload.kind, r.names));
        if (!found && (patched || renders.blind)) {
          const names = patched?.names ?? [workload.name];
          containers.push({
            root: '',
            workload: patched?.workload ?? workload,
            names,
            container: name,
            init,
            index,
            value: site.value,
            whole,
            entries: [],
            pullSecrets: [],
          });
        }
      }
    }
    return { ...renders, containers };
  }

  /** A kustomization's own changes to what it accumulated: patches, then `images:` entries, then name prefixes and suffixes. */
  #transform(k: Kustomization, renders: Renders): Renders {
    let current = renders;
    for (const ref of k.patches) {
      const patch = this.#patchOf(k, ref);
      if (!patch) continue;
      for (const document of patch.documents) {
        if (ref.json6902 || isSeq(document)) current = this.#json6902(k, ref, patch.source, items(document), current);
        else if (isMap(document)) current = this.#strategicMerge(k, ref, patch.source, document, current);
      }
    }
    let containers = current.containers;
    for (const entry of k.images) {
      containers = containers.map((r) => {
        if (!kustomizeMatches(r.value, entry.name)) return r;
        this.#reached.add(entry);
        return { ...r, value: entryOutput(entry, r.value)!, entries: [...r.entries, entry] };
      });
    }
    let helm = current.helm;
    if (k.namePrefix || k.nameSuffix) {
      const rename = (names: readonly string[]) => [...names, `${k.namePrefix}${names.at(-1)}${k.nameSuffix}`];
      containers = containers.map((r) => ({ ...r, names: rename(r.names) }));
      helm = helm.map((r) => ({ ...r, names: rename(r.names) }));
    }
    return { containers, helm, blind: current.blind };
  }

  /** What a kustomization builds: its resources, then its components over them, then its own changes (`building`: a cycle stops). */
  #accumulate(k: Kustomization, start: Renders, building: Set<Kustomization>): Renders {
    if (building.has(k)) return start;
    building.add(k);
    if (k.remote) this.#opaque.add(k);
    const containers = [...start.containers];
    const helm = [...start.helm];
    let blind = start.blind === true;
    for (const resource of k.resources) {
      const nested = this.#byDir.get(resource);
      let renders: Renders | undefined;
      if (nested) {
        renders = this.#accumulate(nested, { containers: [], helm: [] }, building);
        if (this.#opaque.has(nested)) this.#opaque.add(k);
      } else if (this.#parsed.has(resource)) {
        renders = this.#fileRenders(resource);
      } else {
        blind = true;
        if (!this.#loaded(resource)) this.#opaque.add(k);
      }
      if (renders) {
        containers.push(...renders.containers);
        helm.push(...renders.helm);
        blind ||= renders.blind === true;
      }
    }
    let current: Renders = { containers, helm, blind };
    for (const component of k.components) {
      const nested = this.#byDir.get(component);
      if (nested) {
        current = this.#accumulate(nested, current, building);
        if (this.#opaque.has(nested)) this.#opaque.add(k);
      } else {
        current = { ...current, blind: true };
        if (!this.#loaded(component)) this.#opaque.add(k);
      }
    }
    building.delete(k);
    return this.#transform(k, { ...current, blind: current.blind || this.#opaque.has(k) });
  }
}

function containerOf(use: ImageUse, whole: WholeSite): ContainerRender {
  return {
    root: '',
    workload: use.workload,
    names: [use.workload.name],
    container: use.container,
    init: use.init,
    index: use.index,
    value: use.site.value,
    whole,
    entries: [],
    pullSecrets: use.pullSecrets,
  };
}

/** Whether a patch applies to an object of `kind` known by `names`: by its target, else by the object it declares. */
function patchTargets(target: PatchTarget | undefined, declaredBy: Workload | undefined): (kind: string, names: readonly string[]) => boolean {
  return (kind, names) => {
    if (target) {
      if (target.bySelector) return false;
      if (target.kind !== undefined && target.kind !== kind) return false;
      return target.name === undefined || names.some((n) => anchored(target.name!).test(n));
    }
    return declaredBy !== undefined && declaredBy.kind === kind && names.includes(declaredBy.name);
  };
}

/** The container a literal is written for, by its declared names (the same in a base and in the patches of it). */
export function containerKey(workload: Workload, init: boolean, container: string): string {
  return `${workload.kind}/${workload.name} ${init ? 'init container' : 'container'} ${container}`;
}

/** kustomize reads a target's name as a regular expression of the whole name. */
function anchored(pattern: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch {
    return new RegExp(`^${escapeRegExp(pattern)}$`);
  }
}
