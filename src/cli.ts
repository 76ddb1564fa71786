#!/usr/bin/env node
/**
 * The one executable, `image-clone`, and its subcommands. Parsing and help live here; each
 * subcommand's work lives in src/commands/.
 */
import { enableCompileCache } from 'node:module';
import { parseArgs } from 'node:util';
import { ImageCloneError, describeError } from './errors.ts';
import { parseBackupPull } from './image/backup-pull.ts';
import { createLogger, parseLevel } from './observability/log.ts';
import { parseDuration } from './util/duration.ts';
import type { GitSettings } from './commands/rewriter.ts';

// V8's code cache for what the commands import (in the temp directory): a command run again starts
// faster (an `image-clone copy` of an image already backed up: 0.27 s -> 0.20 s).
enableCompileCache();

// Each command is imported when it runs: `copy` must not pay for the Kubernetes client (71-79 MiB of
// resident memory to import, measured on Node 24, and most of a second) nor `help` for anything.

const USAGE = `image-clone: back up the public images a cluster runs into your own registry

Usage:
  image-clone copy SRC [DST] [options]     copy one image (DST defaults to its name under --backup-registry)
  image-clone copy --from-file FILE        copy one "SRC DST" pair per line, concurrently
  image-clone copier [options]             watch the cluster and back up the public images it runs
  image-clone rewriter [options]           turn the copier's handoff records into Git commits
  image-clone sync-repo --repo URL --backup-registry HOST/PFX [options]
                                           back up a GitOps repository's images and move it onto them
  image-clone rewrite --repo DIR --set OLD=NEW [--path SUBDIR] [--dry-run]
                                           replace an image in the manifests of a repository
  image-clone help [COMMAND]

Run "image-clone COMMAND --help" for a command's options.`;

const COPY_USAGE = `Usage: image-clone copy SRC [DST] [options]
       image-clone copy --from-file FILE [options]

Copies every platform of each image, preserving digests. Prints one line per image:
  OUTCOME SRC -> DST DIGEST   (OUTCOME: copied | present | unchanged)
Exit status 0 only when every copy succeeded.

Options:
  --from-file FILE            "SRC DST" pairs, one per line (# comments allowed)
  --backup-registry HOST/PFX  destination for SRC given alone: PFX/<source host>/<source path>:<tag>
  --flat                      Docker Hub-style names (one level under PFX) for --backup-registry
  --insecure-registry HOST    plain HTTP for this registry (repeatable)
  --auth-file PATH            Docker config.json with credentials ("auths")
  --ca-file PATH              extra CA certificates (PEM) to trust, on top of the system's
  --mutable-tag PATTERN       tags re-checked by digest on every copy (repeatable; * globs;
                              default: latest)
  --concurrency N             images copied at once (default 16)
  --blob-concurrency N        blob transfers at once (default 6)
  --retry-budget DUR          how long a failing registry request is retried (5xx, 429, dropped
                              connections) before that image fails (default 5m)
  --json                      one JSON object per image instead of text
  -h, --help                  this help`;

const COPIER_USAGE = `Usage: image-clone copier --backup-registry HOST[:PORT]/PREFIX --handoff-dir DIR [options]

Watches Deployments, DaemonSets, StatefulSets, CronJobs and Argo Rollouts (where installed) in every
namespace (except kube-system and its own), backs up each public image into the backup registry, and
writes a handoff record per workload for the rewriter. JSON logs on stderr.

Options:
  --kubeconfig PATH           kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)
  --backup-registry HOST/PFX  where backups go: PFX/<source host>/<source path>:<tag>
  --flat                      Docker Hub-style names (PFX/<host>_<path>)
  --handoff-dir DIR           the directory shared with the rewriter
  --insecure-registry HOST    plain HTTP for this registry (repeatable)
  --auth-file PATH            Docker config.json with registry credentials (reloaded on change)
  --registry-secret-dir DIR   a mounted Secret: docker-server/docker-username/docker-password,
                              or .dockerconfigjson (reloaded on change)
  --ca-file PATH              extra CA certificates (PEM) to trust
  --mutable-tag PATTERN       tags re-checked by digest (repeatable, * globs; default: latest)
  --backup-pull HOW           how the nodes pull backups: anonymous (proved per image by an
                              anonymous pull; a backup that fails it is not handed off), node
                              (the nodes hold credentials; trusted) or secret:NAME (Pods pull with
                              the Secret NAME; the change adds it where nothing lists it) [anonymous]
  --retry-budget DUR          how long a failing registry request is retried before the workload
                              is retried later instead (5 s doubling to 5 minutes) (default 1m)
  --once                      one full pass, then exit (0 only if every workload succeeded)
  --controller-namespace NS   its own namespace (default: $POD_NAMESPACE, then the service account's)
  --include-namespace NS      only these namespaces (repeatable)
  --exclude-namespace NS      never these namespaces (repeatable)
  --recheck-interval DUR      how long a verified backup is trusted (default 10m)
  --health-address ADDR       /healthz, /readyz and /metrics (default :8080; "" for none)
  --no-leader-election        run without the Lease (a single replica)
  --lease-name NAME           the Lease for leader election (default image-clone-copier)
  --argocd-namespace NS       where Argo CD Applications live (default argocd)
  --log-level LEVEL           debug, info, warn or error (default info)

An annotation ${'`'}image-clone-controller/ignore: "true"${'`'} on a namespace or workload opts it out.`;

const REWRITER_USAGE = `Usage: image-clone rewriter --handoff-dir DIR --cache-dir DIR [options]

Turns each handoff record written by the copier into a change in the Git repository its GitOps
owner syncs from (Argo CD Application or Flux Kustomization source, path and revision; for a Flux
HelmRelease whose chart is in a chart repository, the HelmRelease's own file): one commit per
repository and base branch, only the image values changed. Records are scanned at start, then
watched; a record is marked done only after its change is pushed or found already applied.

Options:
  --handoff-dir DIR           the directory shared with the copier
  --cache-dir DIR             where repositories are cloned (kept between runs)
  --git-mode MODE             pr (a branch of ours and a pull request on GitHub, GitLab, Gitea or Forgejo),
                              branch (the branch only) or commit (straight to the base branch) [branch]
  --forge-token-file PATH     API token of the forge, for pr mode (a mounted Secret; default: the --git-password-file token)
  --forge KIND                github, gitlab or gitea [from the URL: github.com is github,
                              gitlab.* gitlab, others gitea]
  --forge-api URL             the forge's API base [api.github.com; <origin>/api/v3 for GitHub
                              Enterprise; <origin>/api/v4 for GitLab; <origin>/api/v1 for Gitea]
  --pr-label NAME             label the pull request (repeatable)
  --pr-draft                  open pull requests as drafts
  --author-name NAME          commit author [image-clone-controller]
  --author-email EMAIL        commit author e-mail [image-clone-controller@users.noreply.local]
  --commit-template-file PATH commit message template; {workloads}, {count} and {changes} are
                              replaced (default: a subject, why it is safe, one line per image)
  --branch-prefix PREFIX      our branches in branch mode [image-clone/]
  --unmanaged-repo URL        repository for workloads no GitOps tool manages
  --unmanaged-path PATH       directory in it to search
  --unmanaged-branch BRANCH   its base branch [main]
  --debounce DUR              wait for a burst of records to end [2s]
  --keep-done DUR             how long done handoff records are kept, then pruned [7d]
  --direct-patch MODE         never, unmanaged (patch workloads no GitOps tool manages through the
                              Kubernetes API) or always (also managed ones: the GitOps tool may
                              revert them until the Git change lands) [never]
  --kubeconfig PATH           the cluster to patch (default: in-cluster, $KUBECONFIG, ~/.kube/config)
  --health-address ADDR       /healthz, /readyz and /metrics [:8081; "" for none]
  --git-username NAME         user name for HTTPS Git [git]
  --git-password-file PATH    password or token for HTTPS Git, read from a file (a mounted Secret)
  --git-ssh-key-file PATH     private key for ssh:// and git@host: repositories (a mounted Secret)
  --git-known-hosts-file PATH the SSH servers trusted (required with a key; no other host is accepted)
  --once                      process what is pending, then exit (0 only if every change landed)
  --dry-run                   print the plan and the unified diff (and any patch) for what is
                              pending; commit, push, patch and mark nothing (implies --once)
  --helm PATH                 Helm, which renders a chart before and after each HelmRelease or
                              chart Application edit (an edit not proved is not proposed) [helm on PATH]
  --kustomize PATH            kustomize, which builds every overlay an edit touches before and after
                              it, and a HelmRelease's post-renderers [kustomize on PATH]
  --ca-file PATH              extra CA certificates (PEM) to trust when fetching charts
  --log-level LEVEL           debug, info, warn or error [info]`;

const SYNC_REPO_USAGE = `Usage: image-clone sync-repo --repo URL --backup-registry HOST[:PORT]/PREFIX [options]

The controller's job as one CI step, without a cluster: clones the repository, backs up every
public image its workloads run (after kustomize's images: transformation) into the backup
registry, then moves the manifests onto the backups (pinned to their digests) with a commit, a
branch or a pull request. Exit 0 only if every image and the change succeeded.

Options:
  --repo URL                  the GitOps repository (https://, ssh://, file://)
  --branch BRANCH             its base branch [main]
  --path SUBDIR               only this directory of it
  --backup-registry HOST/PFX  where backups go: PFX/<source host>/<source path>:<tag>
  --flat                      Docker Hub-style names (PFX/<host>_<path>)
  --insecure-registry HOST    plain HTTP for this registry (repeatable)
  --auth-file PATH            Docker config.json with registry credentials
  --ca-file PATH              extra CA certificates (PEM) to trust
  --mutable-tag PATTERN       tags re-checked by digest (repeatable; default latest)
  --retry-budget DUR          how long a failing registry request is retried before that image
                              fails (default 5m)
  --backup-pull HOW           anonymous (each backup proved pullable without credentials, or not
                              proposed), node (the nodes hold credentials) or secret:NAME (the
                              manifests get imagePullSecrets NAME where they lack it) [anonymous]
  --git-mode MODE             pr, branch or commit [branch]
  --author-name NAME, --author-email EMAIL, --commit-template-file PATH, --git-username NAME,
  --git-password-file PATH, --git-ssh-key-file PATH, --git-known-hosts-file PATH,
  --forge-token-file PATH, --forge KIND, --forge-api URL, --pr-label NAME, --pr-draft
                              as for image-clone rewriter
  --dry-run                   back up, then print the diff; commit, push and open nothing
  --kustomize PATH            kustomize, which builds the overlays before and after the change to
                              prove it (a change not proved is not made) [kustomize on PATH]
  --log-level LEVEL           debug, info, warn or error [warn]`;

const REWRITE_USAGE = `Usage: image-clone rewrite --repo DIR --set OLD=NEW [--set OLD=NEW]... [--path SUBDIR] [--dry-run]

Replaces image OLD wherever a build of DIR[/SUBDIR] runs it, as kustomize builds it: in the
containers and init containers of Deployments, DaemonSets, StatefulSets, ReplicaSets, Jobs,
CronJobs, Pods and Argo Rollouts, in kustomize images: entries and in the patches that set images,
and in Helm values (values*.yaml, a HelmRelease's spec.values and the overlays' patches of it).
OLD is matched after normalisation (nginx:1.25 is docker.io/library/nginx:1.25; nginx is
nginx:latest). For each build that runs OLD, the text that decides its image is edited; a build
that shares that text but runs another image keeps it. Only the image values change; comments,
quoting and every other byte stay as they were. Uses it does not edit (other kinds, JSON, a literal
no build runs) are named on stderr.

Writes the files (no commit); --dry-run prints the unified diff and writes nothing. A file that
cannot be parsed is named with its line and left untouched, the others are still edited, and the
exit status is 1. The change is proved first: every kustomization it touches is built before and
after with kustomize (--kustomize PATH, default on PATH), and only a change whose builds differ in
image fields alone, each container moving only as a --set asks, is written (--no-render-proof: skip).`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  switch (command) {
    case 'copy':
      return copy(rest, out, err);
    case 'copier':
      return copier(rest, out);
    case 'rewrite':
      return rewrite(rest, out, err);
    case 'rewriter':
      return rewriter(rest, out);
    case 'sync-repo':
      return syncRepo(rest, out, err);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(rest[0] === 'copy' ? COPY_USAGE : rest[0] === 'copier' ? COPIER_USAGE : rest[0] === 'rewrite' ? REWRITE_USAGE : rest[0] === 'rewriter' ? REWRITER_USAGE : rest[0] === 'sync-repo' ? SYNC_REPO_USAGE : USAGE);
      return 0;
    default:
      err(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

async function copy(args: readonly string[], out: (l: string) => void, err: (l: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      'from-file': { type: 'string' },
      'backup-registry': { type: 'string' },
      flat: { type: 'boolean' },
      'insecure-registry': { type: 'string', multiple: true },
      'auth-file': { type: 'string' },
      'ca-file': { type: 'string' },
      'mutable-tag': { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      'blob-concurrency': { type: 'string' },
      'retry-budget': { type: 'string', default: '5m' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(COPY_USAGE);
    return 0;
  }
  let pairs: Array<readonly [string, string | undefined]>;
  if (values['from-file'] !== undefined) {
    if (positionals.length > 0) throw new UsageError('give either --from-file or SRC [DST], not both');
    pairs = (await import('./commands/copy.ts')).readPairsFile(values['from-file']);
  } else {
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError('copy needs SRC and DST (or SRC with --backup-registry)');
    pairs = [[positionals[0]!, positionals[1]]];
  }
  const { copyCommand } = await import('./commands/copy.ts');
  return copyCommand(
    {
      pairs,
      ...(values['backup-registry'] === undefined ? {} : { backupRegistry: values['backup-registry'] }),
      layout: values.flat ? 'flat' : 'nested',
      insecureRegistries: values['insecure-registry'] ?? [],
      ...(values['auth-file'] === undefined ? {} : { authFile: values['auth-file'] }),
      ...(values['ca-file'] === undefined ? {} : { caFile: values['ca-file'] }),
      ...(values['mutable-tag'] === undefined ? {} : { mutableTags: values['mutable-tag'] }),
      ...(values.concurrency === undefined ? {} : { imageConcurrency: positiveInteger('--concurrency', values.concurrency) }),
      ...(values['blob-concurrency'] === undefined ? {} : { blobConcurrency: positiveInteger('--blob-concurrency', values['blob-concurrency']) }),
      retryBudgetMs: parseDuration('--retry-budget', values['retry-budget'] ?? '5m'),
      json: values.json ?? false,
    },
    out,
    err,
  );
}

/** The Git and forge options of `rewriter` and `sync-repo`. */
const GIT_OPTIONS = {
  'git-mode': { type: 'string', default: 'branch' },
  'author-name': { type: 'string', default: 'image-clone-controller' },
  'author-email': { type: 'string', default: 'image-clone-controller@users.noreply.local' },
  'commit-template-file': { type: 'string' },
  'git-username': { type: 'string', default: 'git' },
  'git-password-file': { type: 'string' },
  'git-ssh-key-file': { type: 'string' },
  'git-known-hosts-file': { type: 'string' },
  'forge-token-file': { type: 'string' },
  forge: { type: 'string' },
  'forge-api': { type: 'string' },
  'pr-label': { type: 'string', multiple: true },
  'pr-draft': { type: 'boolean' },
} as const;

type GitOptionValues = { [K in keyof typeof GIT_OPTIONS]?: (typeof GIT_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof GIT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** Validates the Git and forge options; secrets stay file paths until the command reads them. */
function gitSettings(values: GitOptionValues): GitSettings {
  const mode = values['git-mode'];
  if (mode !== 'commit' && mode !== 'branch' && mode !== 'pr') throw new UsageError(`--git-mode must be pr, branch or commit, got ${JSON.stringify(mode)}`);
  if (mode === 'pr' && !values['forge-token-file'] && !values['git-password-file']) throw new UsageError('--git-mode pr needs --forge-token-file (or a --git-password-file token that the forge\'s API accepts too)');
  const forge = values.forge;
  if (forge !== undefined && forge !== 'github' && forge !== 'gitlab' && forge !== 'gitea') throw new UsageError(`--forge must be github, gitlab or gitea, got ${JSON.stringify(forge)}`);
  if (!values['git-ssh-key-file'] !== !values['git-known-hosts-file']) throw new UsageError('--git-ssh-key-file and --git-known-hosts-file go together');
  return {
    mode,
    authorName: values['author-name'] ?? 'image-clone-controller',
    authorEmail: values['author-email'] ?? 'image-clone-controller@users.noreply.local',
    gitUsername: values['git-username'] ?? 'git',
    ...(values['git-password-file'] ? { gitPasswordFile: values['git-password-file'] } : {}),
    ...(values['git-ssh-key-file'] ? { gitSshKeyFile: values['git-ssh-key-file'] } : {}),
    ...(values['git-known-hosts-file'] ? { gitKnownHostsFile: values['git-known-hosts-file'] } : {}),
    ...(values['forge-token-file'] ? { forgeTokenFile: values['forge-token-file'] } : {}),
    ...(forge ? { forgeKind: forge } : {}),
    ...(values['forge-api'] ? { forgeApi: values['forge-api'] } : {}),
    ...(values['pr-label'] ? { prLabels: values['pr-label'] } : {}),
    prDraft: values['pr-draft'] ?? false,
    ...(values['commit-template-file'] ? { commitTemplateFile: values['commit-template-file'] } : {}),
  };
}

async function rewriter(args: readonly string[], out: (l: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      ...GIT_OPTIONS,
      'handoff-dir': { type: 'string' },
      'cache-dir': { type: 'string' },
      'branch-prefix': { type: 'string' },
      'unmanaged-repo': { type: 'string' },
      'unmanaged-path': { type: 'string' },
      'unmanaged-branch': { type: 'string', default: 'main' },
      debounce: { type: 'string', default: '2s' },
      'keep-done': { type: 'string', default: '7d' },
      'direct-patch': { type: 'string', default: 'never' },
      kubeconfig: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'health-address': { type: 'string', default: ':8081' },
      helm: { type: 'string', default: 'helm' },
      kustomize: { type: 'string', default: 'kustomize' },
      'ca-file': { type: 'string' },
      once: { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(REWRITER_USAGE);
    return 0;
  }
  if (!values['handoff-dir']) throw new UsageError('rewriter needs --handoff-dir DIR');
  if (!values['cache-dir']) throw new UsageError('rewriter needs --cache-dir DIR');
  const git = gitSettings(values);
  const directPatch = values['direct-patch'];
  if (directPatch !== 'never' && directPatch !== 'unmanaged' && directPatch !== 'always') throw new UsageError(`--direct-patch must be never, unmanaged or always, got ${JSON.stringify(directPatch)}`);
  const { rewriterCommand } = await import('./commands/rewriter.ts');
  return rewriterCommand({
    ...git,
    handoffDir: values['handoff-dir'],
    cacheDir: values['cache-dir'],
    ...(values['branch-prefix'] ? { branchPrefix: values['branch-prefix'] } : {}),
    ...(values['unmanaged-repo'] ? { unmanagedRepo: values['unmanaged-repo'] } : {}),
    ...(values['unmanaged-path'] ? { unmanagedPath: values['unmanaged-path'] } : {}),
    unmanagedBranch: values['unmanaged-branch'] ?? 'main',
    once: values.once ?? false,
    debounceMs: parseDuration('--debounce', values.debounce ?? '2s'),
    keepDoneMs: parseDuration('--keep-done', values['keep-done'] ?? '7d'),
    directPatch,
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    dryRun: values['dry-run'] ?? false,
    helm: values.helm ?? 'helm',
    kustomize: values.kustomize ?? 'kustomize',
    ...(values['ca-file'] ? { caFile: values['ca-file'] } : {}),
    ...(values['health-address'] && !values.once ? { healthAddress: values['health-address'] } : {}),
    logger: createLogger({ level: parseLevel(values['log-level']) }),
  }, out);
}

async function syncRepo(args: readonly string[], out: (l: string) => void, err: (l: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      ...GIT_OPTIONS,
      repo: { type: 'string' },
      branch: { type: 'string', default: 'main' },
      path: { type: 'string' },
      'backup-registry': { type: 'string' },
      flat: { type: 'boolean' },
      'insecure-registry': { type: 'string', multiple: true },
      'auth-file': { type: 'string' },
      'ca-file': { type: 'string' },
      'mutable-tag': { type: 'string', multiple: true },
      'backup-pull': { type: 'string', default: 'anonymous' },
      'retry-budget': { type: 'string', default: '5m' },
      'dry-run': { type: 'boolean' },
      kustomize: { type: 'string', default: 'kustomize' },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(SYNC_REPO_USAGE);
    return 0;
  }
  if (!values.repo) throw new UsageError('sync-repo needs --repo URL');
  if (!values['backup-registry']) throw new UsageError('sync-repo needs --backup-registry HOST[:PORT]/PREFIX');
  const git = gitSettings(values);
  const { syncRepoCommand } = await import('./commands/sync-repo.ts');
  return syncRepoCommand({
    repoURL: values.repo,
    branch: values.branch ?? 'main',
    ...(values.path ? { path: values.path } : {}),
    backupRegistry: values['backup-registry'],
    layout: values.flat ? 'flat' : 'nested',
    insecureRegistries: values['insecure-registry'] ?? [],
    ...(values['auth-file'] ? { authFile: values['auth-file'] } : {}),
    ...(values['ca-file'] ? { caFile: values['ca-file'] } : {}),
    ...(values['mutable-tag'] ? { mutableTags: values['mutable-tag'] } : {}),
    backupPull: parseBackupPull(values['backup-pull'] ?? 'anonymous'),
    retryBudgetMs: parseDuration('--retry-budget', values['retry-budget'] ?? '5m'),
    git,
    dryRun: values['dry-run'] ?? false,
    kustomize: values.kustomize ?? 'kustomize',
    logger: createLogger({ level: parseLevel(values['log-level']) }),
  }, out, err);
}

async function rewrite(args: readonly string[], out: (l: string) => void, err: (l: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      repo: { type: 'string' },
      path: { type: 'string' },
      set: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      kustomize: { type: 'string', default: 'kustomize' },
      'no-render-proof': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(REWRITE_USAGE);
    return 0;
  }
  if (!values.repo) throw new UsageError('rewrite needs --repo DIR');
  if (!values.set?.length) throw new UsageError('rewrite needs at least one --set OLD=NEW');
  const [{ rewriteCommand }, { parseReplacement }] = await Promise.all([import('./commands/rewrite.ts'), import('./rewriter/edit/plan.ts')]);
  return rewriteCommand({ repo: values.repo, ...(values.path ? { path: values.path } : {}), replacements: values.set.map(parseReplacement), dryRun: values['dry-run'] ?? false, ...(values['no-render-proof'] ? {} : { kustomize: values.kustomize ?? 'kustomize' }) }, out, err);
}

async function copier(args: readonly string[], out: (l: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      kubeconfig: { type: 'string' },
      'backup-registry': { type: 'string' },
      flat: { type: 'boolean' },
      'handoff-dir': { type: 'string' },
      'insecure-registry': { type: 'string', multiple: true },
      'auth-file': { type: 'string' },
      'registry-secret-dir': { type: 'string' },
      'ca-file': { type: 'string' },
      'mutable-tag': { type: 'string', multiple: true },
      once: { type: 'boolean' },
      'controller-namespace': { type: 'string' },
      'include-namespace': { type: 'string', multiple: true },
      'exclude-namespace': { type: 'string', multiple: true },
      'recheck-interval': { type: 'string' },
      'health-address': { type: 'string', default: ':8080' },
      'no-leader-election': { type: 'boolean' },
      'lease-name': { type: 'string', default: 'image-clone-copier' },
      'argocd-namespace': { type: 'string' },
      'backup-pull': { type: 'string', default: 'anonymous' },
      'retry-budget': { type: 'string', default: '1m' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(COPIER_USAGE);
    return 0;
  }
  if (!values['backup-registry']) throw new UsageError('copier needs --backup-registry HOST[:PORT]/PREFIX');
  if (!values['handoff-dir']) throw new UsageError('copier needs --handoff-dir DIR');
  const { copierCommand } = await import('./commands/copier.ts');
  return copierCommand({
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    backupRegistry: values['backup-registry'],
    layout: values.flat ? 'flat' : 'nested',
    handoffDir: values['handoff-dir'],
    insecureRegistries: values['insecure-registry'] ?? [],
    ...(values['auth-file'] ? { authFile: values['auth-file'] } : {}),
    ...(values['registry-secret-dir'] ? { registrySecretDir: values['registry-secret-dir'] } : {}),
    ...(values['ca-file'] ? { caFile: values['ca-file'] } : {}),
    once: values.once ?? false,
    ...(values['controller-namespace'] ? { controllerNamespace: values['controller-namespace'] } : {}),
    includeNamespaces: values['include-namespace'] ?? [],
    excludeNamespaces: values['exclude-namespace'] ?? [],
    ...(values['mutable-tag'] ? { mutableTags: values['mutable-tag'] } : {}),
    ...(values['recheck-interval'] ? { recheckIntervalMs: parseDuration('--recheck-interval', values['recheck-interval']) } : {}),
    ...(values['health-address'] ? { healthAddress: values['health-address'] } : {}),
    leaderElection: !values['no-leader-election'],
    leaseName: values['lease-name'] ?? 'image-clone-copier',
    ...(values['argocd-namespace'] ? { argocdNamespace: values['argocd-namespace'] } : {}),
    backupPull: parseBackupPull(values['backup-pull'] ?? 'anonymous'),
    retryBudgetMs: parseDuration('--retry-budget', values['retry-budget'] ?? '1m'),
    logger: createLogger({ level: parseLevel(values['log-level']) }),
  }, out);
}

class UsageError extends ImageCloneError {
  override name = 'UsageError';
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

// Run when executed directly (node src/cli.ts, dist/cli.js or the bin link), not when imported by tests.
if (process.argv[1] !== undefined && import.meta.filename === (await import('node:fs')).realpathSync(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      const known = error instanceof ImageCloneError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
      process.stderr.write(`image-clone: ${known ? describeError(error) : (error as Error).stack ?? String(error)}\n`);
      if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`Run "image-clone help" for usage.\n`);
      process.exitCode = 2;
    },
  );
}
