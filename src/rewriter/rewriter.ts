import type { KubeConfig } from '@kubernetes/client-node';
import { workloadKey } from '../cluster/workloads.ts';
import { ConfigError, describeError } from '../errors.ts';
import { Ledger } from '../handoff/ledger.ts';
import { pinnedBackup, type ChartLocation, type HandoffRecord } from '../handoff/schema.ts';
import type { Logger } from '../observability/log.ts';
import { Counter, Gauge, MetricsRegistry } from '../observability/metrics.ts';
import { ExpiringCache } from '../util/expiring-cache.ts';
import { fetchChart, type FetchedChart } from './proof/chart.ts';
import type { RenderTools } from './proof/helm-proof.ts';
import { rowsOf, type EditNotes } from './forges/description.ts';
import { forgeRefusal, repositoryPath, type Forge, type ForgeOptions } from './forges/forge.ts';
import { GITHUB_API, type GitHubAppTokens } from './forges/github-app.ts';
import { dispatcherFor, forgeFor } from './forges/registry.ts';
import { credentialRefusal } from './git/credential-scope.ts';
import { deliveryFor, type Delivery, type DeliverySettings, type GitMode } from './git/delivery.ts';
import { branchFor, groupNames, parseNaming, titleFor, type Naming } from './grouping.ts';
import { GitWorkspace, redactRepo, type GitAuthor, type GitCredentials, type GitSsh, type Workspace } from './git/workspace.ts';
import { appCommitsFor } from './forges/github-commits.ts';
import { editUnit } from './records.ts';
import { editSession } from './session.ts';
import { Intake, StepClock } from './intake.ts';
import { editChartOwner } from './chart-session.ts';
import { groupByTarget, patchableWorkload, routeRecord, type DirectPatchMode, type Target } from './routing.ts';

export type { DirectPatchMode, GitMode };
export const DEFAULT_KEEP_DONE_MS = 7 * 86_400_000;
export const DEFAULT_RENDER_TOOLS: RenderTools = { helm: 'helm', kustomize: 'kustomize' };

export interface RewriterConfig {
  readonly handoffDir: string;
  /** Where repositories are cloned (reused across runs). */
  readonly cacheDir: string;
  readonly mode: GitMode;
  readonly author: GitAuthor;
  /** See commitMessage(); the default explains the change and lists every image. */
  readonly commitTemplate?: string;
  readonly logger: Logger;
  /** Which records share a change, and what its branch and pull request are called (default: one per repository and base). */
  readonly naming?: Naming;
  /** For workloads no GitOps tool manages: the repository, path and branch to search. */
  readonly unmanaged?: { readonly repoURL: string; readonly path?: string; readonly branch: string };
  readonly maxPushAttempts?: number;
  /** In `pr` mode: the forge (chosen from the URL, or configured) and its token. */
  readonly forge?: ForgeOptions;
  /** In `pr` mode: how pull requests look. */
  readonly pullRequests?: { readonly draft?: boolean; readonly labels?: readonly string[] };
  /** HTTPS credentials for every repository (from a mounted Secret). */
  readonly gitCredentials?: GitCredentials;
  /** A GitHub App: each GitHub repository's change gets an installation token of its own, for the push and the pull request. */
  readonly githubApp?: GitHubAppTokens;
  /** With a GitHub App: commits made through GitHub's API, which GitHub signs as the App's (--github-app-signed-commits). */
  readonly githubAppSignedCommits?: boolean;
  /** SSH key and known_hosts for ssh:// and scp-like repository URLs. */
  readonly gitSsh?: GitSsh;
  /**
   * URL prefixes the Git and forge credentials are bound to (git/credential-scope.ts): a repository
   * outside them is refused before any network call. Unset: any https or ssh repository, never plain http.
   */
  readonly credentialScopes?: readonly string[];
  /** The direct-patch fallback, and the cluster it patches (needed unless `never`). */
  readonly directPatch?: { readonly mode: DirectPatchMode; readonly kubeConfig: KubeConfig };
  /** Show what would change (diffs, patches) and change nothing: no commit, push, patch or "done". */
  readonly dryRun?: boolean;
  /** How long a done record is kept before the ledger forgets it (default 7 days). */
  readonly keepDoneMs?: number;
  /** A pass running longer than this makes /healthz fail (default 30 minutes): the intake is stuck. */
  readonly stuckAfterMs?: number;
  /** The helm and kustomize programs that prove HelmRelease edits (default: found on PATH). */
  readonly renderTools?: RenderTools;
  /** Extra CA certificates (PEM) trusted when fetching charts and calling forges. */
  readonly caFile?: string;
  /** Opens a repository's working copy (default: a GitWorkspace in cacheDir with the credentials above). */
  readonly openWorkspace?: (repoURL: string) => Workspace;
  /** A repository's forge in `pr` mode (default: chosen from the URL, with `forge`'s options). */
  readonly openForge?: (repoURL: string) => Forge;
  /** Called just before each push (instrumentation, and tests that race a push deterministically). */
  readonly beforePush?: (attempt: number) => Promise<void>;
}

export interface RewriteOutcome {
  readonly repoURL: string;
  readonly base: string;
  readonly records: readonly string[];
  readonly result: 'pushed' | 'patched' | 'already-applied' | 'not-found' | 'not-reopened' | 'would-change' | 'unsupported-owner' | 'failed';
  /** With `dryRun`: the unified diff, or the patch, that would be made. */
  readonly plan?: string;
  /** In `pr` mode: the pull request opened or updated. */
  readonly pullRequest?: string;
  readonly commit?: string;
  readonly branch: string;
  readonly error?: string;
}

export class Rewriter {
  readonly metrics = new MetricsRegistry();
  readonly #outcomes = this.metrics.register(
    new Counter(
      'image_clone_rewrites_total',
      'Changes by result: pushed, patched, already-applied, not-found, not-reopened, unsupported-owner (no file in Git decides the images), failed.',
    ),
  );
  readonly #rejections = this.metrics.register(new Counter('image_clone_push_rejections_total', 'Pushes rejected because the branch moved (then re-applied).'));
  readonly #passes = this.metrics.register(new Counter('image_clone_rewrite_passes_total', 'Passes over the pending records.'));
  readonly #rejectedRecords = this.metrics.register(
    new Counter(
      'image_clone_records_unreadable_total',
      'Handoff records that could not be read (not a regular file, too large, not a record); those not a file or too large are set aside as .rejected.',
    ),
  );
  readonly #proofs = this.metrics.register(
    new Counter(
      'image_clone_render_proofs_total',
      'Edits rendered before and after (kustomize builds, Helm charts): proved, or not-proved (undone, the record left pending).',
    ),
  );
  readonly #notProposedCount = this.metrics.register(
    new Counter(
      'image_clone_not_proposed_total',
      'Records refused by a pass (they stay pending, the reason kept beside them), by kind of reason: not-proved, render-failed, chart-unavailable, no-image-value, pull-secret, outside-repository, other.',
    ),
  );
  #lastPassAt = 0;
  #lastPassOk = true;
  readonly #config: RewriterConfig;
  readonly #naming: Naming;
  readonly #ledger: Ledger;
  readonly #log: Logger;
  readonly #intake: Intake<RewriteOutcome[]>;
  readonly #clock = new StepClock();
  #lastPruneAt = 0;
  readonly #charts = new ExpiringCache<FetchedChart>({ ttlMs: () => Number.POSITIVE_INFINITY, maxEntries: 32 });

  constructor(config: RewriterConfig) {
    this.#naming = config.naming ?? parseNaming({});
    this.#config = config;
    this.#ledger = new Ledger(config.handoffDir);
    this.#log = config.logger.child({ role: 'rewriter' });
    this.#intake = new Intake(this.#ledger.dir, this.#log);
    this.metrics.register(new Gauge('image_clone_pending_records', 'Handoff records not yet done.')).set(() => this.#ledger.pendingIds().length);
  }

  /** For /healthz: a step of a pass taking longer than `stuckAfterMs` (30 minutes) means the intake is stuck (./intake.ts). */
  healthy(now = Date.now()): { ok: boolean; detail: string } {
    return this.#clock.healthy(this.#config.stuckAfterMs ?? 30 * 60_000, now);
  }

  /** For /readyz: the first pass is done. */
  get lastPass(): { at: number; ok: boolean } {
    return { at: this.#lastPassAt, ok: this.#lastPassOk };
  }

  /**
   * Processes what is pending now, then watches for new records; each burst (records arriving
   * within `debounceMs` of each other) becomes one pass. Passes never overlap. A pass with failed
   * changes (Git refusing pushes, a forge down) is followed by another after a capped exponential
   * backoff (`retryMs`, doubling, at most 5 minutes), whether or not new records arrive.
   */
  watch(debounceMs: number, onPass?: (outcomes: RewriteOutcome[]) => void, retryMs = 5_000): Promise<void> {
    const pass = async () => {
      const outcomes = await this.processPending().catch((error: unknown) => {
        this.#log.error('pass failed; retried later', { error: describeError(error) });
        this.#lastPassOk = false;
        return [];
      });
      return { ok: this.#lastPassOk, result: outcomes };
    };
    return this.#intake.watch(pass, debounceMs, onPass, retryMs);
  }

  stop(): Promise<void> {
    return this.#intake.stop();
  }

  /** Turns every pending record into Git changes, one per repository and base branch. */
  async processPending(): Promise<RewriteOutcome[]> {
    this.#clock.step('reading the handoff records');
    try {
      return await this.#processPending();
    } finally {
      this.#clock.idle();
    }
  }

  async #processPending(): Promise<RewriteOutcome[]> {
    const routing = {
      directPatch: this.#config.directPatch?.mode ?? 'never',
      ...(this.#config.unmanaged ? { unmanaged: this.#config.unmanaged } : {}),
    } as const;
    const toChange: Array<{ record: HandoffRecord; target: Target }> = [];
    const outcomes: RewriteOutcome[] = [];
    const unreadable = (file: string, error: Error) => {
      this.#rejectedRecords.inc();
      this.#log.warn('unreadable handoff record skipped', { file, error: describeError(error) });
    };
    for (const record of this.#ledger.pending(unreadable)) {
      this.#clock.step(`record ${record.id}`);
      const route = routeRecord(record, routing);
      if (route.patch !== 'none') {
        const patched = await this.#patch(record, route.patch === 'also');
        outcomes.push(patched);
        if (route.patch === 'only' || patched.result === 'failed') continue;
      }
      if (route.git.kind === 'not-proposed') outcomes.push(await this.#notProposed(record, route.git.reason));
      else if (route.git.kind === 'change') toChange.push({ record, target: route.git.target });
      else this.#log.warn('no repository for this workload: no GitOps owner and no --unmanaged-repo; left pending', { record: record.id });
    }
    for (const { target, group, records } of groupByTarget(toChange, this.#naming.groupBy)) {
      this.#clock.step(`${redactRepo(target.repoURL)} ${target.base}${group ? ` ${group}` : ''} (${records.length} records)`);
      outcomes.push(...(await this.#changeRepository(target, group, records)));
    }
    for (const outcome of outcomes) this.#outcomes.inc({ result: outcome.result });
    this.#passes.inc();
    this.#pruneDone();
    this.#lastPassAt = Date.now();
    this.#lastPassOk = outcomes.every((o) => o.result !== 'failed');
    return outcomes;
  }

  /** At most once an hour: forget records done longer ago than keepDoneMs. */
  #pruneDone(): void {
    if (this.#config.dryRun || Date.now() - this.#lastPruneAt < 3_600_000) return;
    this.#lastPruneAt = Date.now();
    const keepMs = this.#config.keepDoneMs ?? DEFAULT_KEEP_DONE_MS;
    try {
      const pruned = this.#ledger.pruneDone(keepMs);
      if (pruned > 0) this.#log.info('done records pruned', { pruned, olderThanHours: keepMs / 3_600_000 });
    } catch (error) {
      this.#log.warn('could not prune done records', { error: describeError(error) });
    }
  }

  /** Patches the workload's images through the API; an unmanaged record is then done. */
  async #patch(record: HandoffRecord, managed: boolean): Promise<RewriteOutcome> {
    const key = workloadKey(record.workload);
    const base = { repoURL: `cluster:${key}`, base: '', branch: '', records: [record.id] };
    if (managed) {
      this.#log.warn('PATCHING A WORKLOAD THAT A GITOPS TOOL MANAGES (--direct-patch=always): the tool may revert it until the Git change lands', {
        workload: key,
        owner: `${record.owner!.tool}:${record.owner!.namespace}/${record.owner!.name}`,
      });
    }
    // --backup-pull secret:NAME and nothing lists it yet: the patch adds it with the images.
    const pullSecret = record.pull?.via === 'secret' && record.pull.listedBy === 'none' ? record.pull.secret : undefined;
    if (this.#config.dryRun) {
      const lines = record.images.map((i) => `patch ${key} ${i.init ? 'init container' : 'container'} ${i.container}: ${i.source} -> ${pinnedBackup(i)}`);
      if (pullSecret) lines.push(`patch ${key} imagePullSecrets: add ${pullSecret}`);
      return { ...base, result: 'would-change', plan: lines.join('\n') };
    }
    try {
      // Loaded only when the fallback patches: importing client-node costs 71-79 MiB of memory.
      const { patchWorkloadImages } = await import('../cluster/patch.ts');
      const workload = patchableWorkload(record);
      if (!workload) throw new Error(`${key} is not a workload a direct patch may change`);
      await patchWorkloadImages(
        this.#config.directPatch!.kubeConfig,
        workload,
        record.images.map((i) => ({ container: i.container, init: i.init, image: pinnedBackup(i) })),
        pullSecret,
      );
      if (!managed) await this.#ledger.markDone(record.id, `patched ${key}`);
      this.#log.info('workload patched directly', { workload: key, images: record.images.length });
      return { ...base, result: 'patched' };
    } catch (error) {
      const message = describeError(error);
      this.#log.error('direct patch failed; record stays pending', { workload: key, error: message });
      return { ...base, result: 'failed', error: message };
    }
  }

  /**
   * A record that no Git change can carry: said once (log, metric, the record's done note) and not
   * retried; a new record, when the workload or its images change, is judged again. A managed
   * workload is never moved by the unmanaged fallback.
   */
  async #notProposed(record: HandoffRecord, reason: string): Promise<RewriteOutcome> {
    const owner = record.owner;
    this.#log.warn('not proposed: no file in Git decides these images', {
      record: record.id,
      workload: workloadKey(record.workload),
      ...(owner ? { owner: `${owner.tool}:${owner.kind}/${owner.namespace}/${owner.name}` } : {}),
      ...(record.controller ? { controller: `${record.controller.kind}/${record.controller.name}` } : {}),
      reason,
    });
    if (!this.#config.dryRun) await this.#ledger.markDone(record.id, `not proposed: ${reason}`);
    return {
      repoURL: owner ? `${owner.tool}:${owner.kind}/${owner.namespace}/${owner.name}` : `cluster:${workloadKey(record.workload)}`,
      base: '',
      branch: '',
      records: [record.id],
      result: 'unsupported-owner',
      error: reason,
    };
  }

  /**
   * One repository and base: its change as one commit, delivered as the Git mode says. Records the
   * edit refuses (a path that leads out of the clone, an edit not proved) are left out of it and
   * reported in an outcome of their own, still pending.
   */
  async #changeRepository(
    target: Target,
    groupValue: string,
    group: ReadonlyArray<{ record: HandoffRecord; path: string | undefined }>,
  ): Promise<RewriteOutcome[]> {
    const { outcome, refused } = await this.#deliver(target, groupValue, group);
    // Each refused record its own outcome with its own reason, kept beside the record for the copier's Event.
    const refusedOutcomes: RewriteOutcome[] = [];
    for (const [id, reason] of refused) {
      this.#notProposedCount.inc({ reason: refusalKind(reason) });
      if (!this.#config.dryRun)
        await this.#ledger
          .markRefused(id, reason)
          .catch((error: unknown) => this.#log.warn('could not keep the refusal beside its record', { record: id, error: describeError(error) }));
      refusedOutcomes.push({ repoURL: redactRepo(target.repoURL), base: target.base, branch: '', records: [id], result: 'failed', error: reason });
    }
    return [...refusedOutcomes, ...(outcome ? [outcome] : [])];
  }

  /**
   * The attempt loop, the same for every Git mode: check out, edit, commit, push; a rejected push
   * starts again on the new tip. Returns the change's outcome (none when every record was refused)
   * and the refused records with their reasons.
   */
  async #deliver(
    target: Target,
    groupValue: string,
    group: ReadonlyArray<{ record: HandoffRecord; path: string | undefined }>,
  ): Promise<{ outcome: RewriteOutcome | undefined; refused: ReadonlyMap<string, string> }> {
    const refused = new Map<string, string>();
    const about = { repoURL: redactRepo(target.repoURL), base: target.base };
    // Before any network call: a repository the credentials are not bound to gets none, and no change.
    const holds =
      this.#config.gitCredentials !== undefined ||
      this.#config.gitSsh !== undefined ||
      this.#config.forge !== undefined ||
      this.#config.githubApp !== undefined;
    const forgeSettings = this.#config.mode === 'pr' && !this.#config.openForge ? this.#config.forge : undefined;
    // A GitHub App's tokens go to its GitHub alone, whatever the Git mode.
    const appRefusal = this.#config.githubApp
      ? forgeRefusal(target.repoURL, { kind: 'github', apiBase: this.#config.forge?.apiBase ?? GITHUB_API })
      : undefined;
    const outOfScope =
      credentialRefusal(target.repoURL, this.#config.credentialScopes, holds) ??
      appRefusal ??
      (forgeSettings ? forgeRefusal(target.repoURL, forgeSettings) : undefined);
    if (outOfScope !== undefined) {
      for (const { record } of group) refused.set(record.id, outOfScope);
      this.#log.warn('repository refused before any network call', { repo: about.repoURL, reason: outOfScope, records: group.length });
      return { outcome: undefined, refused };
    }
    let workspace: Workspace;
    let delivery: Delivery;
    try {
      const token = await this.#appToken(target.repoURL);
      workspace = this.#openWorkspace(target.repoURL, token);
      const names = groupNames(
        this.#naming,
        target.repoURL,
        target.base,
        groupValue,
        group.map((r) => r.record),
      );
      const change = { base: target.base, branch: branchFor(this.#naming, names), title: (workloads: number) => titleFor(this.#naming, names, workloads) };
      delivery = deliveryFor(this.#deliverySettings(), change, () => this.#openForge(target.repoURL, token));
    } catch (error) {
      const outcome: RewriteOutcome = { ...about, records: group.map((r) => r.record.id), branch: '', result: 'failed', error: describeError(error) };
      return { outcome, refused };
    }
    let records = group;
    const branch = delivery.branch;
    const outcomeOf = (result: RewriteOutcome['result'], more: Partial<RewriteOutcome> = {}): RewriteOutcome => ({
      ...about,
      branch,
      records: records.map((r) => r.record.id),
      result,
      ...more,
    });
    const markDone = async (note: string) => {
      for (const { record } of records) await this.#ledger.markDone(record.id, note);
    };
    const attempts = this.#config.maxPushAttempts ?? 5;
    try {
      const prepared = await delivery.prepare(rowsOf(records.map((r) => r.record)));
      if ('declined' in prepared) {
        if (!this.#config.dryRun) await markDone(`pull request #${prepared.declined.number} was closed; not reopened`);
        this.#log.info('change not proposed again: its pull request was closed', { repo: about.repoURL, pullRequest: prepared.declined.url });
        return { outcome: outcomeOf('not-reopened', { pullRequest: prepared.declined.url }), refused };
      }
      let fresh = prepared.fresh;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const { remoteBranchTip, onExistingBranch } = await workspace.checkout(target.base, delivery.checkoutBranch, fresh);
        const changed = await this.#edit(workspace.dir, records);
        for (const [id, error] of changed.refused) {
          refused.set(id, error);
          this.#log.error('record refused; it stays pending', { record: id, error });
        }
        records = records.filter((r) => !refused.has(r.record.id));
        if (records.length === 0) return { outcome: undefined, refused };
        const nothingThere = changed.found ? 'already-applied' : 'not-found';
        if (this.#config.dryRun) {
          const plan = await workspace.diff();
          return { outcome: outcomeOf(plan === '' ? nothingThere : 'would-change', { plan }), refused };
        }
        const commit = await workspace.commitAll(
          commitMessage(
            records.map((r) => r.record),
            this.#config.commitTemplate,
          ),
          this.#config.author,
        );
        if (commit === undefined && (await delivery.nothingCommitted(workspace)) === 'done') {
          if (!changed.found) this.#log.warn('no manifest uses these images', { repo: about.repoURL, records: records.length });
          await markDone(nothingThere);
          return { outcome: outcomeOf(nothingThere), refused };
        }
        await this.#config.beforePush?.(attempt);
        // Our branch restarted from the base (or made anew) replaces what was there only if nobody pushed since,
        // and not at all once another installation has proposed what is there: then the change is made on top of it.
        const lease = fresh && !onExistingBranch ? remoteBranchTip : undefined;
        if (lease && (await delivery.proposedMeanwhile())) {
          fresh = false;
          continue;
        }
        if (commit === undefined || (await workspace.push(branch, lease)) === 'pushed') {
          // What the branch holds: our commit, or the one a forge's API made of it (a GitHub App's).
          const pushed = commit === undefined ? undefined : await workspace.head();
          const pullRequest = await delivery.propose(
            workspace,
            rowsOf(
              records.map((r) => r.record),
              changed.notes,
            ),
          );
          // Another installation may have replaced the branch between our push and its own proposal
          // (propose pauses before it reads the description again): then this change is made again next pass.
          if (delivery.checkoutBranch !== undefined && !(await workspace.landed(branch)))
            return {
              outcome: outcomeOf('failed', {
                error: `${branch} was replaced after our push (another installation restarted it); the change is made again on the next pass`,
              }),
              refused,
            };
          await markDone(`pushed ${pushed ?? '(already on the branch)'} to ${branch}${pullRequest ? `, ${pullRequest}` : ''}`);
          this.#log.info('change pushed', { repo: about.repoURL, branch, commit: pushed, records: records.length, ...(pullRequest ? { pullRequest } : {}) });
          return { outcome: outcomeOf('pushed', { ...(pushed ? { commit: pushed } : {}), ...(pullRequest ? { pullRequest } : {}) }), refused };
        }
        this.#rejections.inc();
        this.#log.info('push rejected: the branch moved; re-applying on the new tip', { repo: about.repoURL, branch, attempt });
        // Jittered backoff, so two writers that keep colliding fall out of step.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 250 * attempt));
      }
      return { outcome: outcomeOf('failed', { error: `push still rejected after ${attempts} attempts` }), refused };
    } catch (error) {
      this.#log.error('rewrite failed; records stay pending', { repo: about.repoURL, error: describeError(error) });
      return { outcome: outcomeOf('failed', { error: describeError(error) }), refused };
    }
  }

  #deliverySettings(): DeliverySettings {
    const { mode, pullRequests } = this.#config;
    return { mode, ...pullRequests };
  }

  /** With a GitHub App: an installation token for this repository (on the App's GitHub only), else none. */
  async #appToken(repoURL: string): Promise<string | undefined> {
    const app = this.#config.githubApp;
    if (!app) return undefined;
    const { owner, name } = repositoryPath(repoURL, 'github', this.#config.forge?.apiBase ?? GITHUB_API);
    return app.tokenFor(owner, name);
  }

  /** `token`: a GitHub App's installation token for this repository, in place of the configured credentials. */
  #openWorkspace(repoURL: string, token?: string): Workspace {
    if (this.#config.openWorkspace) return this.#config.openWorkspace(repoURL);
    const credentials = token !== undefined ? { username: 'x-access-token', password: token } : this.#config.gitCredentials;
    const publish =
      token !== undefined && this.#config.githubAppSignedCommits
        ? appCommitsFor(repoURL, this.#config.forge?.apiBase ?? GITHUB_API, token, dispatcherFor(this.#config.caFile))
        : undefined;
    return new GitWorkspace(repoURL, this.#config.cacheDir, credentials, this.#config.gitSsh, publish);
  }

  #openForge(repoURL: string, token?: string): Forge {
    if (this.#config.openForge) return this.#config.openForge(repoURL);
    if (!this.#config.forge) throw new ConfigError('--git-mode pr needs a forge token (--forge-token-file)');
    return forgeFor(repoURL, {
      ...this.#config.forge,
      ...(token !== undefined ? { token } : {}),
      ...(this.#config.caFile ? { caFile: this.#config.caFile } : {}),
    });
  }

  /**
   * Applies every record's replacements under its path. `found` says whether the old or the new
   * images appear at all: no edit with `found` means the change is already on the tip.
   */
  async #edit(
    dir: string,
    records: ReadonlyArray<{ record: HandoffRecord; path: string | undefined }>,
  ): Promise<{ found: boolean; refused: Map<string, string>; notes: Map<string, EditNotes> }> {
    let found = false;
    const refused = new Map<string, string>();
    // For the pull request: the files each record's change is in, where they are not the workload's own, and what varies on every render.
    const notes = new Map<string, EditNotes>();
    const byPath = new Map<string | undefined, HandoffRecord[]>();
    for (const { record, path } of records) byPath.set(path, [...(byPath.get(path) ?? []), record]);
    for (const [path, every] of byPath) {
      // A workload rendered from a chart in a chart repository: its HelmRelease or Application is what changes.
      const declared = every.filter((r) => r.owner?.declares !== undefined);
      for (const record of declared) {
        try {
          const result = await this.#editDeclared(dir, path, record);
          if (result.refused) refused.set(record.id, result.refused);
          found ||= result.found;
          if (result.notes) notes.set(record.id, result.notes);
        } catch (error) {
          refused.set(record.id, describeError(error));
        }
      }
      const all = every.filter((r) => r.owner?.declares === undefined);
      if (all.length === 0) continue;
      try {
        const edited = await this.#editManifests(dir, path, all);
        found ||= edited.found;
        for (const [id, reason] of edited.refused) refused.set(id, reason);
      } catch (error) {
        // A path that leads out of the clone or does not exist fails its own records, not the batch.
        for (const r of all) refused.set(r.id, describeError(error));
      }
    }
    return { found, refused, notes };
  }

  /**
   * Edits the manifests under one owner path for its records and proves the edit by rendering, in
   * one edit session (./session.ts): a record whose containers the proof shows not moving as asked
   * is refused and the edit made again without it; an edit wrong as a whole is undone and narrowed
   * down to the records whose edit is. `found`: whether the old or new images were found at all.
   */
  async #editManifests(
    dir: string,
    path: string | undefined,
    records: readonly HandoffRecord[],
  ): Promise<{ found: boolean; refused: ReadonlyMap<string, string> }> {
    const session = await editSession(
      {
        root: dir,
        path,
        detectApplied: true,
        prove: { tools: this.#config.renderTools ?? DEFAULT_RENDER_TOOLS, remote: { httpPrefixes: this.#config.credentialScopes ?? [] } },
        onProof: (reason, batch) => {
          this.#proofs.inc({ result: reason ? 'not-proved' : 'proved' });
          if (reason) this.#log.warn('change not proved by rendering; undone', { path: path ?? '.', reason, records: batch.length });
        },
      },
      records.map(editUnit),
    );
    for (const error of session.errors) this.#log.warn('manifest left untouched', { error: describeError(error) });
    for (const { image, note } of session.skipped) this.#log.warn('a use of the image is not edited', { path: path ?? '.', image, note });
    for (const what of session.unproved) this.#log.warn('part of the change not proved by rendering', { path: path ?? '.', reason: what });
    const refused = [...session.refused].map(([id, { reason, byProof }]) => [id, byProof ? `not proved by rendering: ${reason}` : reason] as const);
    return { found: session.found, refused: new Map(refused) };
  }

  /** A chart owner's record in the chart edit session (./chart-session.ts), its proof counted and logged. */
  async #editDeclared(dir: string, path: string | undefined, record: HandoffRecord): Promise<{ found: boolean; refused?: string; notes?: EditNotes }> {
    const cluster = this.#ledger.capabilities((error) =>
      this.#log.warn('cluster capabilities unreadable; rendering with Helm defaults', { error: error.message }),
    );
    const result = await editChartOwner(
      { root: dir, path, tools: this.#config.renderTools ?? DEFAULT_RENDER_TOOLS, fetchChart: (location) => this.#chart(location), cluster },
      record,
    );
    for (const error of result.errors) this.#log.warn('manifest left untouched', { error: describeError(error) });
    if (result.proof) {
      this.#proofs.inc({ result: result.proof.notProved ? 'not-proved' : 'proved' });
      const declared = record.owner!.declares!;
      if (!result.proof.notProved)
        this.#log.info('chart edit proved by rendering', {
          owner: `${declared.kind} ${declared.namespace}/${declared.name}`,
          chart: result.proof.chart,
          images: record.images.length,
          ...(cluster ? { kubeVersion: cluster.kubeVersion } : {}),
          ...(result.proof.varies.length ? { variesOnEveryRender: result.proof.varies } : {}),
        });
    }
    return result;
  }

  /** A chart's package, fetched once per location and version while the rewriter runs (the last 32 kept). */
  #chart(location: ChartLocation): Promise<FetchedChart> {
    const key = JSON.stringify([location.repoURL, location.name, location.version, location.insecure]);
    const httpPrefixes = this.#config.credentialScopes ?? [];
    return this.#charts.get(key, () => fetchChart(location, { ...(this.#config.caFile ? { caFile: this.#config.caFile } : {}), httpPrefixes }));
  }
}

/**
 * The kind of a refusal's reason, for the metric's label (a handful of values, whatever the text):
 * the edit not proved by its render, a render that failed outright, a chart that could not be
 * fetched, a chart without a value that composes the image, a pull Secret that cannot be added, a
 * path that leads out of the clone.
 */
export function refusalKind(reason: string): string {
  if (/not proved by rendering/.test(reason)) return 'not-proved';
  if (/^(helm template|kustomize build|the post-renderer).* failed: /.test(reason) || / failed: Error: /.test(reason)) return 'render-failed';
  if (/^(GET |oci:\/\/)|chart repository|is not a Helm chart|lists no (chart|version)|where its chart is served is not known/.test(reason))
    return 'chart-unavailable';
  if (/no value of the chart/.test(reason)) return 'no-image-value';
  if (/imagePullSecrets/.test(reason)) return 'pull-secret';
  if (/outside the (repository|clone)|leads outside|symbolic link/.test(reason)) return 'outside-repository';
  return 'other';
}

export const DEFAULT_COMMIT_TEMPLATE =
  'image-clone: move {workloads} to backed-up images\n\nThe new references pin the digests of the original images: the same bytes, served from the backup registry.\n\n{changes}\n';

/**
 * The commit message from a template: `{workloads}` ("shop/web" or "3 workloads"), `{count}` (images
 * moved) and `{changes}` (one "- namespace/Kind/name container: old -> new@digest" line per image,
 * "(in cluster NAME)" after it where the record names its cluster).
 */
export function commitMessage(records: readonly HandoffRecord[], template = DEFAULT_COMMIT_TEMPLATE): string {
  const lines = records.flatMap((r) =>
    r.images.map(
      (i) =>
        `- ${r.workload.namespace}/${r.workload.kind}/${r.workload.name} ${i.container}: ${i.source} -> ${pinnedBackup(i)}${r.cluster ? ` (in cluster ${r.cluster.name})` : ''}`,
    ),
  );
  const workloads = records.length === 1 ? `${records[0]!.workload.namespace}/${records[0]!.workload.name}` : `${records.length} workloads`;
  const values: Record<string, string> = { workloads, count: String(lines.length), changes: lines.join('\n') };
  return template.replace(/\{(workloads|count|changes)\}/g, (_, key: string) => values[key]!);
}
