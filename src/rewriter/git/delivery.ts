/**
 * How a change reaches its repository, one strategy per `--git-mode`:
 *
 * - `commit`: committed on the base branch itself.
 * - `branch`: pushed to a branch of ours (reused, so a crash never makes a second one).
 * - `pr`: pushed to our branch and proposed as a pull request; a change a reviewer closed is not
 *   proposed again, and without an open pull request the branch restarts from the base (with a
 *   lease, so nobody else's push to it is lost), so a merged or declined change is not carried over.
 *
 * The rewriter runs the same attempt loop for each (check out, edit, commit, push, re-apply on a
 * rejected push); what differs is asked of the strategy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { changeId, mergeRows, pullRequestBody, pullRequestTitle, rowsFromDescription, type DescribedImage } from '../forges/description.ts';
import type { Forge, PullRequest } from '../forges/forge.ts';
import type { Workspace } from './workspace.ts';

/** How long, on average, a description is left before it is read again for rows another writer dropped. */
const SETTLE_MS = 500;

export type GitMode = 'commit' | 'branch' | 'pr';

export interface Delivery {
  /** The branch pushed to. */
  readonly branch: string;
  /** The branch to check out and build on (undefined: the base itself). */
  readonly checkoutBranch: string | undefined;
  /**
   * Before any attempt: the pull request that declined this change, or whether our branch restarts
   * from the base (no pull request is open: nothing merged, declined or pushed there by anyone else is
   * carried into a new one).
   */
  prepare(rows: readonly DescribedImage[]): Promise<{ readonly declined: PullRequest } | { readonly fresh: boolean }>;
  /**
   * Whether a pull request of our branch is open now: asked just before our branch is replaced from
   * the base, since another installation may have pushed to it and opened one after `prepare`.
   */
  proposedMeanwhile(): Promise<boolean>;
  /**
   * Nothing new to commit: `done` when nothing is left to do (the tip holds the change, or nothing
   * uses the images), `propose` when our branch already carries it and only the proposal is missing.
   */
  nothingCommitted(workspace: Workspace): Promise<'done' | 'propose'>;
  /** After the push: the pull request opened or updated (its URL), if this mode proposes. */
  propose(workspace: Workspace, rows: readonly DescribedImage[]): Promise<string | undefined>;
}

export interface DeliverySettings {
  readonly mode: GitMode;
  /** In `pr` mode: how pull requests look. */
  readonly draft?: boolean;
  readonly labels?: readonly string[];
}

/**
 * One change: its base, our branch for it (stable, so each attempt and each restart finds the same
 * one: rewriter/grouping.ts names it) and, in `pr` mode, its title for a number of workloads
 * (undefined: the default).
 */
export interface ChangeNames {
  readonly base: string;
  readonly branch: string;
  readonly title?: (workloads: number) => string | undefined;
}

/** The strategy for a change; `forge` is called only in `pr` mode. */
export function deliveryFor(settings: DeliverySettings, change: ChangeNames, forge: () => Forge): Delivery {
  if (settings.mode === 'commit') return pushOnly(change.base, undefined);
  return settings.mode === 'branch' ? pushOnly(change.branch, change.branch) : throughPullRequest(change, forge(), settings);
}

/** `commit` and `branch` modes: the push is the whole delivery (to the base, or to our branch built on itself). */
function pushOnly(branch: string, checkoutBranch: string | undefined): Delivery {
  return {
    branch,
    checkoutBranch,
    prepare: async () => ({ fresh: false }),
    proposedMeanwhile: async () => false,
    nothingCommitted: async () => 'done',
    propose: async () => undefined,
  };
}

function throughPullRequest({ branch, base, title: named }: ChangeNames, forge: Forge, settings: DeliverySettings): Delivery {
  const title = (rows: readonly DescribedImage[]) => named?.(new Set(rows.map((r) => r.workload)).size) ?? pullRequestTitle(rows);
  return {
    branch,
    checkoutBranch: branch,
    async prepare(rows) {
      const pulls = await forge.pullRequests(branch, base);
      const open = pulls.find((p) => p.state === 'open');
      // A reviewer closed this very change (the same rows) before: it is not proposed again.
      const declined = pulls.find(
        (p) =>
          p.state === 'closed' &&
          changeId(rowsFromDescription(p.body).filter((r) => rows.some((n) => n.workload === r.workload && n.container === r.container))) === changeId(rows),
      );
      if (!open && declined) return { declined };
      return { fresh: open === undefined };
    },
    proposedMeanwhile: async () => (await forge.pullRequests(branch, base)).some((p) => p.state === 'open'),
    // Our branch may carry the change from before a crash, with its pull request still to open.
    nothingCommitted: async (workspace) => ((await workspace.differsFrom(base)) ? 'propose' : 'done'),
    /**
     * Installations in other clusters may write this pull request's description at the same time
     * (read, merge their rows, write): a write of theirs made from what they read before ours lands
     * would drop our rows. So after a pause of random length the description is read again, and
     * written again while rows it should hold are missing (three writes at most).
     */
    async propose(workspace, rows) {
      const files = await workspace.changedFiles(base);
      const openNow = async () => (await forge.pullRequests(branch, base)).find((p) => p.state === 'open');
      let open = await openNow();
      for (let write = 1; ; write++) {
        const all = open ? mergeRows(rowsFromDescription(open.body), rows) : rows;
        let url: string;
        if (open) url = (await forge.update(open, { title: title(all), body: pullRequestBody(all, files) })).url;
        else {
          try {
            url = (
              await forge.open({
                head: branch,
                base,
                title: title(rows),
                body: pullRequestBody(rows, files),
                ...(settings.draft ? { draft: true } : {}),
                ...(settings.labels ? { labels: settings.labels } : {}),
              })
            ).url;
          } catch (error) {
            // Another installation opened it first: add to theirs.
            open = await openNow();
            if (open && write < 3) continue;
            throw error;
          }
        }
        if (write >= 3) return url;
        await sleep(SETTLE_MS * (0.5 + Math.random()));
        open = await openNow();
        const described = rowsFromDescription(open?.body);
        if (!open || all.every((r) => described.some((d) => sameRow(d, r)))) return url;
      }
    },
  };
}

/** The same row: the same cluster's workload and container moved to the same backup. */
function sameRow(a: DescribedImage, b: DescribedImage): boolean {
  return a.cluster === b.cluster && a.workload === b.workload && a.container === b.container && a.to === b.to && a.digest === b.digest;
}
