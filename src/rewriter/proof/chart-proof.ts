/**
 * The proof of an edit of the object that decides a chart's images (a HelmRelease's values or
 * post-renderer, an Argo CD Application's values or value files): the chart is rendered with Helm
 * before and after the edit, with what its applier gives it as read from the workspace, for the
 * cluster's version and API versions. Proved when the renders differ only in image fields, the
 * record's containers move to their backups, and no other container of the release moves. What
 * differs between two renders of the unchanged inputs (generated certificates, random passwords) is
 * the chart's, and left out. Other builds of the repository that read an edited file (an overlay
 * beside the owner's, on the same base) render the release too: their renders must not move either.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describeError } from '../../errors.ts';
import type { ClusterCapabilities, HandoffRecord } from '../../handoff/schema.ts';
import { runsBackup } from '../../image/backup.ts';
import { runsSameImage } from '../../image/reference.ts';
import { replaceFileAtomically } from '../../util/files.ts';
import { kustomizeRoots } from '../edit/tree.ts';
import { expectedImages } from '../records.ts';
import { compareRenders, imageChanges, varyingBetween, type Varying } from './compare.ts';
import { applicationInputs, effectiveSpec, helmReleaseInputs, renderChart, type RenderInputs } from './helm-proof.ts';
import type { ChangedFile } from './manifest-proof.ts';
import type { RenderTools } from './tools.ts';

export interface ChartProof {
  /** Why the edit is not proved; undefined when it is. */
  readonly why: string | undefined;
  /** What varies between two renders of the unchanged inputs (left out of the comparison). */
  readonly varying: Varying;
}

/**
 * Proves the edit `changed` (the workspace holds `before` when called, `after` when it returns) of
 * the object `record`'s owner declares, by rendering `chart` (its package) before and after it.
 */
export async function proveChartEdit(
  tools: RenderTools,
  dir: string,
  path: string | undefined,
  record: HandoffRecord,
  changed: ReadonlyMap<string, ChangedFile>,
  chart: Buffer,
  cluster: ClusterCapabilities | undefined,
): Promise<ChartProof> {
  const declared = record.owner!.declares!;
  // What the chart is given, read from the workspace: the declaring object as its applier builds
  // it, or a multi-source Application's value files.
  const inputs = async (): Promise<RenderInputs> => {
    if (declared.valueFiles) return { valueFiles: declared.valueFiles.map((f) => readFileSync(join(dir, f), 'utf8')) };
    const spec = await effectiveSpec(tools, dir, path, declared);
    return declared.kind === 'HelmRelease' ? helmReleaseInputs(spec) : applicationInputs(spec);
  };
  const ownerDir = resolve(realpathSync(dir), path ?? '.');
  const beside =
    declared.kind === 'HelmRelease'
      ? kustomizeRoots(dir, [...changed.keys()])
          .filter((r) => r.dir !== ownerDir && !r.remote)
          .map((r) => relative(realpathSync(dir), r.dir))
      : [];
  const besideInputs = async () =>
    new Map(
      await Promise.all(
        beside.map(
          async (other) => [other, await effectiveSpec(tools, dir, other, declared).then(helmReleaseInputs, (error: unknown) => error as Error)] as const,
        ),
      ),
    );
  const before = await inputs();
  const besideBefore = await besideInputs();
  for (const [file, { after }] of changed) replaceFileAtomically(file, after);
  const after = await inputs();
  const besideAfter = await besideInputs();
  // The chart was rendered into the workload's namespace, whatever set it, for this cluster's version and API versions.
  const render = (given: RenderInputs) => renderChart(tools, chart, declared.chart?.releaseName ?? declared.name, record.workload.namespace, given, cluster);
  // Rendered twice unchanged: what differs then is the chart's, not the change's.
  const [renderedBefore, renderedAgain, renderedAfter] = [await render(before), await render(before), await render(after)];
  const varying = varyingBetween(renderedBefore, renderedAgain);
  let why = compareRenders(renderedBefore, renderedAfter, expectedImages(record), varying);
  // No container anywhere in the release (a hook Job, another component) may move unless this record asked for it:
  // a shared value (a global registry) would move images nobody backed up.
  const unaskedHere = why ? undefined : unaskedMove(renderedBefore, renderedAfter, record);
  if (unaskedHere) why = `the edit also moves ${unaskedHere}, which no record asked for`;
  for (const other of beside) {
    const [was, now] = [besideBefore.get(other), besideAfter.get(other)];
    // An overlay that did not render the release before is not judged; one that did must still build it.
    if (why || !was || was instanceof Error) continue;
    if (!now || now instanceof Error) {
      why = `as ${other} builds it, the edit breaks it: ${describeError(now)}`;
      continue;
    }
    const [otherBefore, otherAgain, otherAfter] = [await render(was), await render(was), await render(now)];
    why = compareRenders(otherBefore, otherAfter, [], varyingBetween(otherBefore, otherAgain));
    const unasked = unaskedMove(otherBefore, otherAfter, record);
    if (why) why = `as ${other} builds it: ${why}`;
    else if (unasked) why = `as ${other} builds it, the edit moves ${unasked}, which no record asked for`;
  }
  return { why, varying };
}

/** The first container in a render whose image moves other than as `record` asks (one of its images to its backup), described; or undefined. */
function unaskedMove(before: string, after: string, record: HandoffRecord): string | undefined {
  const change = imageChanges(before, after).find((c) => !record.images.some((i) => runsSameImage(c.was, i.source) && runsBackup(c.now, i.backup, i.digest)));
  return change && `${change.object.replace(/\/\//, '/')} ${change.container} from ${change.was} to ${change.now}`;
}
