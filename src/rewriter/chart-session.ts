/**
 * The chart edit session: one record whose workload comes from a chart in a chart repository. What
 * decides its images is the object that installs the chart: a HelmRelease (its values, or a
 * post-renderer entry; edit/helm-release.ts) or an Argo CD Application (a values override whose key
 * comes from the chart; edit/argo-application.ts, and where no convention names it, the chart
 * rendered to find it: proof/image-values.ts). The edit is proved by rendering the chart before and
 * after it (proof/chart-proof.ts); an edit that is not proved is undone and the record refused with
 * the reason. The manifests' own session is ./session.ts.
 */
import { realpathSync } from 'node:fs';
import { relative } from 'node:path';
import { describeError } from '../errors.ts';
import type { ClusterCapabilities, ChartLocation, HandoffRecord } from '../handoff/schema.ts';
import { parseReference } from '../image/reference.ts';
import { replaceFileAtomically } from '../util/files.ts';
import { planApplicationValues, planValueFiles, type ApplicationPlan, type DerivedOverrides } from './edit/argo-application.ts';
import { planHelmRelease } from './edit/helm-release.ts';
import type { RepositoryPlan } from './edit/planned-edits.ts';
import type { EditNotes } from './forges/description.ts';
import { ChartFetchError, type FetchedChart } from './proof/chart.ts';
import { proveChartEdit } from './proof/chart-proof.ts';
import { describeVarying } from './proof/compare.ts';
import { chartDefaults, renderChart, RenderProofError, type RenderTools } from './proof/helm-proof.ts';
import { deriveImageValues } from './proof/image-values.ts';
import { recordReplacements } from './records.ts';

export interface ChartSessionOptions {
  readonly root: string;
  readonly path: string | undefined;
  readonly tools: RenderTools;
  /** A chart's package (the caller caches them). */
  readonly fetchChart: (location: ChartLocation) => Promise<FetchedChart>;
  /** The cluster the chart renders for (its version and APIs), or Helm's defaults. */
  readonly cluster: ClusterCapabilities | undefined;
}

export interface ChartEditResult {
  /** Whether the old or the new images were found at all: no edit with `found` means the change is already there. */
  readonly found: boolean;
  readonly refused?: string;
  /** For the pull request: the files changed, what varies on every render, how the value was found. */
  readonly notes?: EditNotes;
  /** Files left untouched (unreadable, not parsed). */
  readonly errors: readonly Error[];
  /** The proof's verdict when a render ran: the chart rendered, and the reason when not proved. */
  readonly proof?: { readonly chart: string; readonly notProved?: string; readonly varies: readonly string[] };
}

export async function editChartOwner(options: ChartSessionOptions, record: HandoffRecord): Promise<ChartEditResult> {
  const { root, path, tools, cluster } = options;
  const declared = record.owner!.declares!;
  const where = `${declared.kind} ${declared.namespace}/${declared.name}`;
  if (record.pull?.via === 'secret' && record.pull.listedBy === 'none') {
    return {
      found: false,
      errors: [],
      refused: `cannot add imagePullSecrets ${record.pull.secret} to ${record.workload.kind} ${record.workload.namespace}/${record.workload.name}: its pod template comes from the chart of ${where}; list the Secret in its service account, or set it in the chart's values`,
    };
  }
  const chart = declared.chart;
  const unknownChart = `cannot prove the edit of ${where} by rendering it: where its chart is served is not known (a HelmChart reference, or a source that no longer exists)`;
  const failed = (error: unknown, errors: readonly Error[] = []): ChartEditResult => ({
    found: false,
    errors,
    refused:
      error instanceof RenderProofError || error instanceof ChartFetchError
        ? error.message
        : `cannot prove the edit of ${where} by rendering it: ${describeError(error)}`,
  });
  let plan: RepositoryPlan & { refused?: string };
  let fetched: FetchedChart | undefined;
  let how: readonly string[] = [];
  try {
    if (declared.kind === 'HelmRelease') {
      const replacements = recordReplacements(record);
      const alreadyThere = replacements.map((r) => ({ from: parseReference(r.to), to: r.to, detectOnly: true }));
      plan = planHelmRelease(root, path, declared, [...replacements, ...alreadyThere]);
    } else {
      // The key to override comes from the chart's own values.
      if (!chart) return { found: false, errors: [], refused: unknownChart };
      fetched = await options.fetchChart(chart);
      const defaults = await chartDefaults(tools, fetched.bytes);
      const planWith = (derived?: DerivedOverrides) =>
        declared.valueFiles
          ? planValueFiles(root, declared.valueFiles, declared, defaults, record.images, derived)
          : planApplicationValues(root, path, declared, defaults, record.images, derived);
      plan = planWith();
      const byRendering = (plan as ApplicationPlan).byRendering;
      if (byRendering) {
        // No convention names the value: find it by rendering the chart.
        const bytes = fetched.bytes;
        const renderValues = (values: unknown) =>
          renderChart(tools, bytes, chart.releaseName ?? declared.name, record.workload.namespace, { valueFiles: [JSON.stringify(values)] }, cluster);
        const wants = record.images.filter((i) => byRendering.sources.includes(i.source));
        const derived = await deriveImageValues(renderValues, byRendering.values, record.workload, wants);
        if (typeof derived === 'string') return { found: false, errors: [], refused: `${plan.refused}; rendering the chart shows why: ${derived}` };
        plan = planWith(derived.overrides);
        how = derived.notes;
      }
      how = [...how, ...((plan as ApplicationPlan).explained ?? [])];
    }
  } catch (error) {
    return failed(error);
  }
  const errors = plan.errors;
  if (plan.refused) return { found: false, errors, refused: plan.refused };
  if (plan.files.size === 0) return { found: plan.changes.length > 0, errors };
  if (!chart) return { found: false, errors, refused: unknownChart };
  let proof: ChartEditResult['proof'];
  try {
    fetched ??= await options.fetchChart(chart);
    const { why, varying } = await proveChartEdit(tools, root, path, record, plan.files, fetched.bytes, cluster);
    proof = { chart: fetched.from, varies: describeVarying(varying), ...(why ? { notProved: why } : {}) };
    if (why) throw new RenderProofError(`the edit of ${where} is not proved by rendering ${fetched.from}: ${why}`);
    return {
      found: true,
      errors,
      proof,
      notes: {
        files: [...plan.files.keys()].map((f) => relative(realpathSync(root), f)),
        ...(proof.varies.length ? { varies: proof.varies } : {}),
        ...(how.length ? { how } : {}),
      },
    };
  } catch (error) {
    for (const [file, { before }] of plan.files) replaceFileAtomically(file, before);
    return { ...failed(error, errors), ...(proof ? { proof } : {}) };
  }
}
