/**
 * The proof of a manifest edit, made before it is committed: every kustomization root that builds
 * an edited file (the overlays Argo CD or Flux would build: kustomizations no other one lists, and
 * the owner's own path) is built with real kustomize before and after the edit. Proved when each
 * build still succeeds and differs only in image fields, and, in the owner's own render, each
 * record's container runs what the cluster runs before and its backup after. A path without a
 * kustomization is plain manifests: its files are the render.
 */
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { replaceFileAtomically } from '../../util/files.ts';
import { buildReadRefusal } from './build-gate.ts';
import { FetchedBases, withRemoteBases, type RemoteBasePolicy } from './remote-bases.ts';
import { mapLimited } from '../../util/limit.ts';
import { runsBackup } from '../../image/backup.ts';
import { runsSameImage, tryParseReference } from '../../image/reference.ts';
import { chartDirOf } from '../edit/chart-templates.ts';
import { isDefaultValuesFile, isValuesFile } from '../edit/helm-values.ts';
import { isKustomization, kustomizationIn } from '../edit/kustomize.ts';
import { buildsOutside, kustomizeRoots, outsideReadsOf, yamlFiles } from '../edit/tree.ts';
import { compareRenders, imageChanges, RenderPair, type ExpectedImage } from './compare.ts';
import { HELM_TEMPLATE_FLAGS, renderSlots, tool, type RenderTools } from './tools.ts';

/** A move asked for without a record (`image-clone rewrite --set FROM=TO`): any container may make it. */
export interface AskedMove {
  readonly from: string;
  readonly to: string;
}

/** A record's container, expected to run its backup after the change. */
export interface ProvedImage extends ExpectedImage {
  /** The record it belongs to. */
  readonly id: string;
}

/**
 * The verdict. With `reason` the change is not proved: `records` are the records whose containers do
 * not move as asked (empty: the change as a whole is wrong). `unproved` names roots that could not
 * be built before the change either, so were not checked.
 */
export interface ManifestProof {
  readonly reason?: string;
  readonly records?: readonly string[];
  readonly unproved: readonly string[];
}

export interface ChangedFile {
  readonly before: string;
  readonly after: string;
}

/**
 * Proves a change. `changed` holds each edited file's text before and after (absolute paths). The
 * files hold `after` when it returns; when called, `after` too, or `before` with `holding: 'before'`
 * (a caller that has not written the change yet saves writing every file twice more).
 */
export async function proveManifestChange(
  tools: Pick<RenderTools, 'kustomize'> & Partial<Pick<RenderTools, 'helm'>>,
  root: string,
  ownerPath: string | undefined,
  changed: ReadonlyMap<string, ChangedFile>,
  expected: readonly ProvedImage[],
  moves: readonly AskedMove[] = [],
  remote: RemoteBasePolicy = {},
  holding: keyof ChangedFile = 'after',
): Promise<ManifestProof> {
  const rootReal = realpathSync(root);
  const ownerDir = resolve(rootReal, ownerPath ?? '.');
  const ownerBuilds = kustomizationIn(ownerDir) !== undefined;
  const found = kustomizeRoots(rootReal, [...changed.keys()], ownerDir);
  const name = (dir: string) => relative(rootReal, dir) || '.';
  // A build that reads from outside the repository is not made here: it would reach other hosts,
  // or read this machine's files (and a failed build's message could repeat them).
  // One that would read this machine's files or fetch a URL that is not a base is never built, and the change is not proved.
  const outside = [...new Set([...found.flatMap((r) => r.outside), ...(ownerBuilds ? outsideReadsOf(rootReal, ownerDir) : [])])];
  if (outside.length > 0)
    return { reason: `a build it touches would read from outside the repository, so it is not built: ${outside.join('; ')}`, records: [], unproved: [] };
  // The owner's own directory too, kustomization or not: a kustomization file there that the model
  // could not read (a link, say) would be built by the GitOps tool while the proof read plain files.
  const ownerGate = buildReadRefusal(rootReal, ownerDir);
  if (ownerGate) return { reason: `a build it touches would read from outside the repository, so it is not built: ${ownerGate}`, records: [], unproved: [] };
  const unproved: string[] = [];
  // A root on a remote base is built too, in a copy where each base is a directory the rewriter fetched itself (./remote-bases.ts).
  const onRemote = new Set(found.filter((r) => r.remote).map((r) => r.dir));
  const roots = found.map((r) => r.dir);
  if (ownerBuilds && !roots.includes(ownerDir)) {
    roots.push(ownerDir);
    if (buildsOutside(rootReal, ownerDir)) onRemote.add(ownerDir);
  }
  const fetched = new FetchedBases();
  let unfetchable: string | undefined;
  const kustomizeBuild = (dir: string) =>
    tool(tools.kustomize, ['build', '--load-restrictor', 'LoadRestrictionsNone', dir], `kustomize build ${name(dir)}`).catch(
      (error: unknown) => error as Error,
    );
  // Checked again by following each build as kustomize will, whatever the planner's model saw.
  let gated: string | undefined;
  // The gate reads only kustomization files and the tree's shape: a change that edits none gets the
  // same answer after as before, so each root is followed once (hundreds of roots, each of hundreds of files).
  const editsKustomization = [...changed.keys()].some(isKustomization);
  const gateAnswers = new Map<string, string | undefined>();
  const gate = (dir: string) => {
    if (editsKustomization || !gateAnswers.has(dir)) gateAnswers.set(dir, buildReadRefusal(rootReal, dir));
    return gateAnswers.get(dir);
  };
  const build = async (dir: string): Promise<string | Error> => {
    if (!onRemote.has(dir)) {
      const refusal = gate(dir);
      if (refusal) {
        gated ??= refusal;
        return new Error(refusal);
      }
      return kustomizeBuild(dir);
    }
    let copy: string;
    try {
      copy = await withRemoteBases(rootReal, dir, remote, fetched);
    } catch (error) {
      unfetchable ??= `${name(dir)}: ${(error as Error).message}`;
      return error as Error;
    }
    try {
      const inCopy = join(copy, relative(rootReal, dir));
      const refusal = buildReadRefusal(copy, inCopy);
      if (refusal) {
        gated ??= refusal;
        return new Error(refusal);
      }
      return await kustomizeBuild(inCopy);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  };
  const write = (which: keyof ChangedFile) => {
    for (const [file, texts] of changed) replaceFileAtomically(file, texts[which]);
  };
  // Each render is judged as soon as both its sides exist, and only its verdict is kept: the renders
  // before the change wait on disk, not in memory, so a change that touches hundreds of overlays
  // holds a few renders at a time (as many as run at once), not all of them.
  const names = [...new Set(expected.map((e) => e.name))];
  const judge = (label: string, owner: boolean, chart: boolean, was: string, now: string): Verdict => {
    const pair = new RenderPair(was, now, names);
    return {
      label,
      owner,
      chart,
      beyond: compareRenders(pair, '', []),
      byExpected: expected.map((e) => (pair.workload(e.kind, e.name) === undefined ? null : compareRenders(pair, '', [e]))),
      changes: imageChanges(pair),
    };
  };
  const waiting = mkdtempSync(join(tmpdir(), 'image-clone-proof-'));
  const chartRenders = chartRendersOf(rootReal, [...changed.keys()]);
  const sides = [
    ...roots.map((dir) => ({
      label: `kustomize build ${name(dir)}`,
      name: name(dir),
      owner: dir === ownerDir,
      chart: false,
      templates: false,
      render: () => build(dir),
      broken: 'does not build',
    })),
    ...chartRenders.map((chart) => {
      const label = `helm template ${name(chart.dir)}${chart.valuesFile ? ` -f ${relative(chart.dir, chart.valuesFile)}` : ''}`;
      return {
        label,
        name: label,
        owner: false,
        chart: true,
        templates: chart.templates,
        render: () => renderChartDir(tools.helm, rootReal, chart),
        broken: 'does not render',
      };
    }),
  ];
  const verdicts: Array<Verdict | undefined> = [];
  let breaks: string | undefined;
  try {
    // A few renders at once, as many as the memory limit holds (tool() bounds them process-wide).
    let before: Array<Error | undefined>;
    if (holding !== 'before') write('before');
    try {
      before = await mapLimited(sides, renderSlots(), async (side, i) => {
        const out = await side.render();
        if (out instanceof Error) return out;
        writeFileSync(join(waiting, String(i)), out);
        return undefined;
      });
    } finally {
      write('after');
    }
    try {
      await mapLimited(sides, renderSlots(), async (side, i) => {
        const was = before[i];
        // A root that does not build before the change (here) cannot be judged by its build.
        if (was instanceof Error) {
          unproved.push(`${side.name} ${side.broken} before the change: ${was.message}`);
          return;
        }
        const now = await side.render();
        if (now instanceof Error) {
          breaks ??= side.chart ? `the change breaks ${side.label}: ${now.message}` : `the change breaks ${now.message}`;
          return;
        }
        verdicts[i] = judge(side.label, side.owner, side.chart, readFileSync(join(waiting, String(i)), 'utf8'), now);
        // A template's literal the render does not show (behind a condition the values leave off) is not proved by it.
        if (side.templates && verdicts[i]!.changes.length === 0)
          unproved.push(`${side.label}: the edited template shows in no container of the render with these values`);
        rmSync(join(waiting, String(i)), { force: true });
      });
    } finally {
      fetched.removeAll();
    }
  } finally {
    rmSync(waiting, { recursive: true, force: true });
  }
  if (gated) return { reason: `a build it touches would read from outside the repository, so it is not built: ${gated}`, records: [], unproved };
  // A remote base the rewriter may not or cannot fetch leaves its overlay unproved: the change is not made.
  if (unfetchable) return { reason: `not built: ${unfetchable}`, records: [], unproved };
  if (breaks) return { reason: breaks, records: [], unproved };
  const judged = verdicts.filter((v): v is Verdict => v !== undefined);
  if (!ownerBuilds) {
    // Plain manifests: what the tool applies is the files under the path (those of a kustomization
    // directory below it are that kustomization's render).
    const files = yamlFiles(ownerDir, rootReal, true).yaml.sort();
    const text = (which: keyof ChangedFile) => files.map((f) => changed.get(f)?.[which] ?? readFileSync(f, 'utf8')).join('\n---\n');
    judged.push(judge(`the manifests under ${name(ownerDir)}`, true, false, text('before'), text('after')));
  }
  for (const v of judged) if (v.beyond) return { reason: `${v.label}: ${v.beyond}`, records: [], unproved };
  // Each record's containers, in a render that has its workload (the owner's first): one that ran
  // its image before must run its backup after. A failure is that record's alone.
  const ordered = [...judged.filter((v) => v.owner), ...judged.filter((v) => !v.owner)];
  const failures = expected.flatMap((e, i) => {
    const candidates = ordered.filter((v) => v.byExpected[i] !== null);
    // A chart's render names its objects after a release name this proof can only guess: not finding a workload there proves nothing.
    if (candidates.length === 0) return judged.every((v) => v.chart) ? [] : [{ id: e.id, why: `no render of the change has ${e.kind}/${e.name}` }];
    if (candidates.some((v) => v.byExpected[i] === undefined)) return [];
    return [{ id: e.id, why: `${candidates[0]!.label}: ${candidates[0]!.byExpected[i]!}` }];
  });
  if (failures.length > 0) return { reason: [...new Set(failures.map((f) => f.why))].join('; '), records: [...new Set(failures.map((f) => f.id))], unproved };
  // And no container anywhere moves except from an image asked for to its backup (an overlay that
  // pinned its own image, and loses it when a shared base is edited, moves to something else).
  for (const r of judged) {
    for (const c of r.changes) {
      // A --set move may land as its tag alone where values have no digest key, as a record's backup may.
      const asked =
        expected.some((e) => runsSameImage(c.was, e.source) && runsBackup(c.now, e.backup, e.digest)) ||
        moves.some((m) => runsSameImage(c.was, m.from) && (runsSameImage(c.now, m.to) || runsBackup(c.now, m.to, tryParseReference(m.to)?.digest ?? '')));
      if (!asked && (expected.length > 0 || moves.length > 0))
        return {
          reason: `${r.label}: the change moves ${c.object.replace(/\/\//, '/')} ${c.container} from ${c.was} to ${c.now}, ${moves.length > 0 ? 'which no --set asked for' : 'which no record asked for'}`,
          records: [],
          unproved,
        };
    }
  }
  return { unproved };
}

/** What one render pair showed, kept once its texts are dropped. */
interface Verdict {
  readonly label: string;
  readonly owner: boolean;
  readonly chart: boolean;
  /** Why it differs beyond images, if it does. */
  readonly beyond: string | undefined;
  /** Per expected image: null where this render has no such workload, else why it does not move as asked (undefined: it does). */
  readonly byExpected: ReadonlyArray<string | undefined | null>;
  readonly changes: ReturnType<typeof imageChanges>;
}

/** A chart of the repository the change edits, and the values file it edits (beyond the chart's own values.yaml), if any. */
interface ChartRender {
  readonly dir: string;
  readonly valuesFile?: string;
  /** Whether the change edits its templates (a literal), not only its values. */
  readonly templates: boolean;
}

/**
 * The chart renders a change needs: for each edited file inside a chart (a directory with a
 * `Chart.yaml`: the nearest one up), the chart with its own values, and with an edited
 * `values-*.yaml` beside them, the chart with that file too (an overlay of environments).
 */
function chartRendersOf(rootReal: string, files: readonly string[]): ChartRender[] {
  const out = new Map<string, ChartRender>();
  for (const file of files) {
    const dir = chartDirOf(file, rootReal);
    if (dir === undefined) continue;
    const extra = dirname(file) === dir && isValuesFile(file) && !isDefaultValuesFile(file) ? file : undefined;
    const key = `${dir}\0${extra ?? ''}`;
    const templates = (out.get(key)?.templates ?? false) || file.startsWith(join(dir, 'templates') + sep);
    out.set(key, { dir, ...(extra ? { valuesFile: extra } : {}), templates });
  }
  return [...out.values()];
}

/**
 * `helm template` of a chart directory of the repository, with no cluster and no network. A chart that
 * holds a symbolic link is not rendered: helm follows links, and `.Files.Get` would read what a link
 * names (a mounted credential) into the render.
 */
async function renderChartDir(helm: string | undefined, rootReal: string, chart: ChartRender): Promise<string | Error> {
  const what = `helm template ${relative(rootReal, chart.dir) || '.'}`;
  if (helm === undefined) return new Error(`${what}: no helm to render it with`);
  const link = readdirSync(chart.dir, { recursive: true, withFileTypes: true }).find((e) => e.isSymbolicLink());
  if (link) return new Error(`${what}: the chart holds a symbolic link (${relative(rootReal, join(link.parentPath, link.name))}), so it is not rendered`);
  const values = chart.valuesFile ? ['--values', chart.valuesFile] : [];
  return tool(helm, ['template', 'release', chart.dir, ...values, ...HELM_TEMPLATE_FLAGS], what).catch((error: unknown) => error as Error);
}
