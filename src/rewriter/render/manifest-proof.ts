/**
 * The proof of a manifest edit, made before it is committed: every kustomization root that builds
 * an edited file (the overlays Argo CD or Flux would build: kustomizations no other one lists, and
 * the owner's own path) is built with real kustomize before and after the edit. Proved when each
 * build still succeeds and differs only in image fields, and, in the owner's own render, each
 * record's container runs what the cluster runs before and its backup after. A path without a
 * kustomization is plain manifests: its files are the render.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { replaceFileAtomically } from '../../util/files.ts';
import { buildReadRefusal } from './build-gate.ts';
import { withRemoteBases, type RemoteBasePolicy } from './remote-bases.ts';
import { mapLimited } from '../../util/limit.ts';
import { runsBackup } from '../../image/backup.ts';
import { runsSameImage, tryParseReference } from '../../image/reference.ts';
import { kustomizationIn } from '../edit/kustomize.ts';
import { buildsOutside, kustomizeRoots, outsideReadsOf, yamlFiles } from '../edit/tree.ts';
import { compareRenders, imageChanges, RenderPair, type ExpectedImage } from './compare.ts';
import { renderSlots, tool, type RenderTools } from './tools.ts';

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
 * Proves a change. `changed` holds each edited file's text before and after (absolute paths; the
 * files hold `after` when called, and again when it returns).
 */
export async function proveManifestChange(
  tools: Pick<RenderTools, 'kustomize'> & Partial<Pick<RenderTools, 'helm'>>,
  root: string,
  ownerPath: string | undefined,
  changed: ReadonlyMap<string, ChangedFile>,
  expected: readonly ProvedImage[],
  moves: readonly AskedMove[] = [],
  remote: RemoteBasePolicy = {},
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
  // A root on a remote base is built too, in a copy where each base is a directory the rewriter fetched itself (render/remote-bases.ts).
  const onRemote = new Set(found.filter((r) => r.remote).map((r) => r.dir));
  const roots = found.map((r) => r.dir);
  if (ownerBuilds && !roots.includes(ownerDir)) {
    roots.push(ownerDir);
    if (buildsOutside(rootReal, ownerDir)) onRemote.add(ownerDir);
  }
  const fetched = new Map<string, string>();
  let unfetchable: string | undefined;
  const kustomizeBuild = (dir: string) =>
    tool(tools.kustomize, ['build', '--load-restrictor', 'LoadRestrictionsNone', dir], `kustomize build ${name(dir)}`).catch(
      (error: unknown) => error as Error,
    );
  // Checked again by following each build as kustomize will, whatever the planner's model saw.
  let gated: string | undefined;
  const build = async (dir: string): Promise<string | Error> => {
    if (!onRemote.has(dir)) {
      const refusal = buildReadRefusal(rootReal, dir);
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
  // A few builds at once, as many as the memory limit holds (tool() bounds them process-wide).
  const buildAll = () => mapLimited(roots, renderSlots(), build);
  const chartRenders = chartRendersOf(rootReal, [...changed.keys()]);
  const renderCharts = async (into: Map<ChartRender, string | Error>) => {
    const rendered = await mapLimited(chartRenders, renderSlots(), (chart) => renderChartDir(tools.helm, rootReal, chart));
    for (const [i, chart] of chartRenders.entries()) into.set(chart, rendered[i]!);
  };
  const chartBefore = new Map<ChartRender, string | Error>();
  const chartAfter = new Map<ChartRender, string | Error>();
  let before: Array<string | Error>;
  write('before');
  try {
    before = await buildAll();
    await renderCharts(chartBefore);
  } finally {
    write('after');
  }
  let after: Array<string | Error>;
  try {
    after = await buildAll();
    await renderCharts(chartAfter);
  } finally {
    for (const dir of fetched.values()) rmSync(dir, { recursive: true, force: true });
  }
  if (gated) return { reason: `a build it touches would read from outside the repository, so it is not built: ${gated}`, records: [], unproved };
  // A remote base the rewriter may not or cannot fetch leaves its overlay unproved: the change is not made.
  if (unfetchable) return { reason: `not built: ${unfetchable}`, records: [], unproved };
  const renders: Array<{ label: string; was: string; now: string; owner: boolean; chart?: boolean }> = [];
  for (const [i, dir] of roots.entries()) {
    const was = before[i]!;
    const now = after[i]!;
    // A root that does not build before the change (here) cannot be judged by its build.
    if (was instanceof Error) {
      unproved.push(`${name(dir)} does not build before the change: ${was.message}`);
      continue;
    }
    if (now instanceof Error) return { reason: `the change breaks ${now.message}`, records: [], unproved };
    renders.push({ label: `kustomize build ${name(dir)}`, was, now, owner: dir === ownerDir });
  }
  // Charts in the repository whose values or templates the change edits: rendered with helm too.
  for (const chart of chartRenders) {
    const label = `helm template ${name(chart.dir)}${chart.valuesFile ? ` -f ${relative(chart.dir, chart.valuesFile)}` : ''}`;
    const [was, now] = [chartBefore.get(chart)!, chartAfter.get(chart)!];
    if (was instanceof Error) {
      unproved.push(`${label} does not render before the change: ${was.message}`);
      continue;
    }
    if (now instanceof Error) return { reason: `the change breaks ${label}: ${now.message}`, records: [], unproved };
    renders.push({ label, was, now, owner: false, chart: true });
  }
  if (!ownerBuilds) {
    // Plain manifests: what the tool applies is the files under the path (those of a kustomization
    // directory below it are that kustomization's render).
    const files = yamlFiles(ownerDir, rootReal, [], [], true).sort();
    const text = (which: keyof ChangedFile) => files.map((f) => changed.get(f)?.[which] ?? readFileSync(f, 'utf8')).join('\n---\n');
    renders.push({ label: `the manifests under ${name(ownerDir)}`, was: text('before'), now: text('after'), owner: true });
  }
  // Each render read once, and only where it changed (RenderPair), for every check below.
  const pairs = renders.map((r) => ({ ...r, pair: new RenderPair(r.was, r.now) }));
  for (const r of pairs) {
    const why = compareRenders(r.pair, '', []);
    if (why) return { reason: `${r.label}: ${why}`, records: [], unproved };
  }
  // Each record's containers, in a render that has its workload (the owner's first): one that ran
  // its image before must run its backup after. A failure is that record's alone.
  const ordered = [...pairs.filter((r) => r.owner), ...pairs.filter((r) => !r.owner)];
  const failures = expected.flatMap((e) => {
    const candidates = ordered.filter((r) => r.pair.workload(e.kind, e.name) !== undefined);
    // A chart's render names its objects after a release name this proof can only guess: not finding a workload there proves nothing.
    if (candidates.length === 0) return renders.every((r) => r.chart) ? [] : [{ id: e.id, why: `no render of the change has ${e.kind}/${e.name}` }];
    const reasons = candidates.map((r) => compareRenders(r.pair, '', [e])).map((why, i) => (why ? `${candidates[i]!.label}: ${why}` : undefined));
    return reasons.some((why) => why === undefined) ? [] : [{ id: e.id, why: reasons[0]! }];
  });
  if (failures.length > 0) return { reason: [...new Set(failures.map((f) => f.why))].join('; '), records: [...new Set(failures.map((f) => f.id))], unproved };
  // And no container anywhere moves except from an image asked for to its backup (an overlay that
  // pinned its own image, and loses it when a shared base is edited, moves to something else).
  for (const r of pairs) {
    for (const c of imageChanges(r.pair)) {
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

/** A chart of the repository the change edits, and the values file it edits (beyond the chart's own values.yaml), if any. */
interface ChartRender {
  readonly dir: string;
  readonly valuesFile?: string;
}

/**
 * The chart renders a change needs: for each edited file inside a chart (a directory with a
 * `Chart.yaml`: the nearest one up), the chart with its own values, and with an edited
 * `values-*.yaml` beside them, the chart with that file too (an overlay of environments).
 */
function chartRendersOf(rootReal: string, files: readonly string[]): ChartRender[] {
  const out = new Map<string, ChartRender>();
  for (const file of files) {
    let dir = dirname(file);
    while (dir.startsWith(rootReal) && dir !== rootReal && !existsSync(join(dir, 'Chart.yaml'))) dir = dirname(dir);
    if (!existsSync(join(dir, 'Chart.yaml'))) continue;
    const extra = dirname(file) === dir && /^values.+\.ya?ml$/.test(basename(file)) && !/^values\.ya?ml$/.test(basename(file)) ? file : undefined;
    out.set(`${dir}\0${extra ?? ''}`, { dir, ...(extra ? { valuesFile: extra } : {}) });
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
  return tool(helm, ['template', 'release', chart.dir, ...values, '--skip-tests'], what).catch((error: unknown) => error as Error);
}
