#!/usr/bin/env node
/**
 * The one executable, `image-clone`, and its subcommands. Parsing and help live here; each
 * subcommand's work lives in src/commands/.
 */
import { enableCompileCache } from 'node:module';
import { resolve } from 'node:path';
import { scrub } from './observability/secrets.ts';
import { ImageCloneError, describeError } from './errors.ts';
import { parseBackupPull } from './image/backup-pull.ts';
import { createLogger, parseLevel } from './observability/log.ts';
import { parseDuration } from './util/duration.ts';
import { parseSize } from './util/size.ts';
import { optionsUsage, parseFlags, type FlagTable, type FlagValues } from './flags.ts';
import type { GitSettings } from './commands/rewriter.ts';
import { parseRegistryRates } from './registry/pull-quota.ts';
import { parseSignaturePolicy } from './image/signature-policy.ts';
import { checkClusterName } from './cluster/identity.ts';
import { parseReferrersPolicy, type RegistrySettings } from './commands/registry-settings.ts';
import { FORGE_KINDS, isForgeKind } from './rewriter/forges/forge.ts';

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

const COPY_USAGE_HEADER = `Usage: image-clone copy SRC [DST] [options]
       image-clone copy --from-file FILE [options]

Copies every platform of each image, preserving digests. Prints one line per image:
  OUTCOME SRC -> DST DIGEST   (OUTCOME: copied | present | unchanged)
Exit status 0 only when every copy succeeded.
`;

const COPIER_USAGE_HEADER = `Usage: image-clone copier --backup-registry HOST[:PORT]/PREFIX --handoff-dir DIR [options]

Watches Deployments, DaemonSets, StatefulSets, CronJobs and Argo Rollouts (where installed) in every
namespace (except kube-system and its own), backs up each public image into the backup registry, and
writes a handoff record per workload for the rewriter. JSON logs on stderr.
`;
const COPIER_USAGE_FOOTER = `An annotation ${'`'}image-clone-controller/ignore: "true"${'`'} on a namespace or workload opts it out.`;

const REWRITER_USAGE_HEADER = `Usage: image-clone rewriter --handoff-dir DIR --cache-dir DIR [options]

Turns each handoff record written by the copier into a change in the Git repository its GitOps
owner syncs from (Argo CD Application or Flux Kustomization source, path and revision; for a Flux
HelmRelease whose chart is in a chart repository, the HelmRelease's own file): one commit per
repository and base branch, only the image values changed. Records are scanned at start, then
watched; a record is marked done only after its change is pushed or found already applied.
`;

const SYNC_REPO_USAGE_HEADER = `Usage: image-clone sync-repo --repo URL --backup-registry HOST[:PORT]/PREFIX [options]

The controller's job as one CI step, without a cluster: clones the repository, backs up every
public image its workloads run (after kustomize's images: transformation) into the backup
registry, then moves the manifests onto the backups (pinned to their digests) with a commit, a
branch or a pull request. Exit 0 only if every image and the change succeeded.
`;

const REWRITE_USAGE_HEADER = `Usage: image-clone rewrite --repo DIR --set OLD=NEW [--set OLD=NEW]... [--path SUBDIR] [--dry-run]

Replaces image OLD wherever a build of DIR[/SUBDIR] runs it, as kustomize builds it: in the
containers and init containers of Deployments, DaemonSets, StatefulSets, ReplicaSets, Jobs,
CronJobs, Pods and Argo Rollouts, in kustomize images: entries and in the patches that set images,
in Helm values (values*.yaml, a HelmRelease's spec.values and the overlays' patches of it), and in
the image fields of Prometheus, Alertmanager and ThanosRuler resources.
OLD is matched after normalisation (nginx:1.25 is docker.io/library/nginx:1.25; nginx is
nginx:latest). For each build that runs OLD, the text that decides its image is edited; a build
that shares that text but runs another image keeps it. Only the image values change; comments,
quoting and every other byte stay as they were. A chart's templates are read as templates: a line
that writes a literal image (no {{ }} on it) is edited, the rest is the values' business. Values
with no digest key take a digest-pinned NEW by its tag (said on the change line), or are left alone
when NEW has no tag. Uses it does not edit (other kinds, JSON, a literal no build runs, a patch
whose target matches nothing) are named on stderr, each with why, then one closing line per image
not moved.

Writes the files (no commit); --dry-run prints the unified diff and writes nothing. A file that
cannot be parsed, or is larger than 5 MiB, is named and left untouched, the others are still
edited, and the exit status is 1; at most 128 MiB of YAML is read, and 300,000 YAML lines and flow
items parsed, for one run (a file past that is named; --path narrows the run). The change is proved
first: every kustomization it touches is built before and after with kustomize (--kustomize PATH,
default on PATH), and every chart of the repository whose values or templates it edits is rendered
with helm template (--helm PATH); only a change whose renders differ in image fields alone, each
container moving only as a --set asks, is written (--no-render-proof: skip). The proof is made image by
image where it must be: an image whose move is not proved is named with why and not written, the
others still are, and the exit status is 1.`;

/** Flags several commands share, as each of them reads them. */
const REGISTRY_FLAGS = {
  'backup-registry': { arg: 'HOST/PFX', help: 'where backups go: PFX/<source host>/<source path>:<tag>' },
  flat: { help: 'Docker Hub-style names (PFX/<host>_<path>)' },
  'insecure-registry': { arg: 'HOST', multiple: true, help: 'plain HTTP for this registry (repeatable)' },
  'auth-file': { arg: 'PATH', help: 'Docker config.json with registry credentials ("auths")' },
  'ca-file': { arg: 'PATH', help: "extra CA certificates (PEM) to trust, on top of the system's" },
  'mutable-tag': { arg: 'PATTERN', multiple: true, help: 'tags re-checked by digest on every copy (repeatable; * globs) [latest]' },
  'max-image-size': { arg: 'SIZE', default: '20GiB', help: 'an image one platform of which declares more bytes is refused before any blob is copied' },
  'min-copy-rate': {
    arg: 'SIZE',
    default: '1MiB',
    help: 'bytes per second a blob must keep: each gets 60 s plus its size at this rate, then the source is abandoned and retried later',
  },
  'registry-rate': {
    arg: 'HOST=N/PERIOD',
    multiple: true,
    help: 'manifest GETs (what registries count as pulls) HOST allows per PERIOD, for registries that do not say (docker.io says: ratelimit-* headers, read by itself); past it, copies wait (repeatable; e.g. quay.io=300/1h)',
  },
  referrers: {
    arg: 'WHICH',
    default: 'all',
    help: "what travels with each backup: all (signatures, SBOMs, attestations: OCI 1.1 referrers, the sha256-<hex> fallback tag, cosign's .sig/.att/.sbom tags), signatures, or none",
  },
  'referrer-artifact-type': {
    arg: 'TYPE',
    multiple: true,
    help: "only referrers of this artifact type (repeatable; cosign's .sig tag counts as application/vnd.dev.cosign.artifact.sig.v1+json, .att as application/vnd.dsse.envelope.v1+json)",
  },
  'verify-signature': {
    arg: 'PATTERN=key:PATH|PATTERN=keyless:issuer=URL,identity=GLOB,root=PATH',
    multiple: true,
    help: 'backups of images matching PATTERN (registry/repository, * globs) must carry a cosign signature that verifies at the backup, with the public key at PATH or keyless (a certificate naming that OIDC issuer and an identity matching GLOB, chaining to the Sigstore trusted root JSON at PATH, timestamped), or they are not proposed (repeatable: any one verifies)',
  },
} as const satisfies FlagTable;

/** The registry settings, from the REGISTRY_FLAGS every copying command shares (and its --retry-budget). */
function registrySettings(values: FlagValues<typeof REGISTRY_FLAGS> & { 'retry-budget'?: string }): RegistrySettings {
  return {
    insecureRegistries: values['insecure-registry'] ?? [],
    ...(values['auth-file'] ? { authFile: values['auth-file'] } : {}),
    ...(values['ca-file'] ? { caFile: values['ca-file'] } : {}),
    ...(values['mutable-tag'] ? { mutableTags: values['mutable-tag'] } : {}),
    retryBudgetMs: parseDuration('--retry-budget', values['retry-budget']!),
    bounds: {
      maxImageBytes: parseSize('--max-image-size', values['max-image-size']!),
      minBytesPerSecond: parseSize('--min-copy-rate', values['min-copy-rate']!),
    },
    referrers: parseReferrersPolicy(values.referrers!, values['referrer-artifact-type']),
    ...(values['registry-rate'] ? { registryRates: parseRegistryRates(values['registry-rate']) } : {}),
    ...(values['verify-signature'] ? { signatures: parseSignaturePolicy(values['verify-signature']) } : {}),
  };
}
const BACKUP_PULL = {
  arg: 'HOW',
  default: 'anonymous',
  help: 'how the nodes pull backups: anonymous (each backup proved pullable without credentials, or not handed off), node (the nodes hold credentials; trusted) or secret:NAME (Pods pull with the Secret NAME; the change adds it where nothing lists it)',
} as const;
const logLevel = (fallback: string) => ({ arg: 'LEVEL', default: fallback, help: 'debug, info, warn or error' }) as const;
const retryBudget = (fallback: string, then: string) =>
  ({ arg: 'DUR', default: fallback, help: `how long a failing registry request is retried (5xx, 429, dropped connections) before ${then}` }) as const;
const KUSTOMIZE = {
  arg: 'PATH',
  default: 'kustomize',
  help: 'kustomize, which builds every overlay a change touches before and after it to prove it (a change not proved is not made)',
} as const;
const HELP = { short: 'h', help: 'this help' } as const;

/** The Git and forge flags of `rewriter` and `sync-repo`. */
const GIT_FLAGS = {
  'git-mode': {
    arg: 'MODE',
    default: 'branch',
    help: 'pr (a branch of ours and a pull request on GitHub, GitLab, Gitea, Forgejo, Bitbucket Cloud, Bitbucket Data Center or Azure DevOps), branch (the branch only) or commit (straight to the base branch)',
  },
  'forge-token-file': { arg: 'PATH', help: 'API token of the forge, for pr mode (a mounted Secret; default: the --git-password-file token)' },
  forge: {
    arg: 'KIND',
    help: `${FORGE_KINDS.join(', ')} (default from the URL: github.com is github, gitlab.* gitlab, bitbucket.org bitbucket, dev.azure.com and *.visualstudio.com azure-devops, others gitea)`,
  },
  'forge-api': {
    arg: 'URL',
    help: "the forge's API base (default api.github.com; <origin>/api/v3 for GitHub Enterprise; <origin>/api/v4 for GitLab; <origin>/api/v1 for Gitea; api.bitbucket.org/2.0 for Bitbucket Cloud; <origin>/rest/api/1.0 for Bitbucket Data Center; for Azure DevOps the organization, dev.azure.com/<organization> or <organization>.visualstudio.com, or on a server the collection, <origin>/<collection>, by default what precedes <project>/_git/<repository>)",
  },
  'pr-label': { arg: 'NAME', multiple: true, help: 'label the pull request (repeatable)' },
  'pr-draft': { help: 'open pull requests as drafts' },
  'author-name': { arg: 'NAME', default: 'image-clone-controller', help: 'commit author' },
  'author-email': { arg: 'EMAIL', default: 'image-clone-controller@users.noreply.local', help: 'commit author e-mail' },
  'commit-template-file': {
    arg: 'PATH',
    help: 'commit message template; {workloads}, {count} and {changes} are replaced (default: a subject, why it is safe, one line per image)',
  },
  'git-username': { arg: 'NAME', default: 'git', help: 'user name for HTTPS Git' },
  'git-password-file': { arg: 'PATH', help: 'password or token for HTTPS Git, read from a file (a mounted Secret)' },
  'github-app-id': {
    arg: 'ID',
    help: "authenticate as this GitHub App: each repository's change gets an installation token of its own (push and pull request; instead of a token file)",
  },
  'github-app-key-file': { arg: 'PATH', help: "the GitHub App's private key, PEM (a mounted Secret)" },
  'github-app-installation-id': { arg: 'ID', help: "the App's installation (default: found per repository)" },
  'github-app-signed-commits': {
    help: "make the App's commits through GitHub's API, which signs them as the App's (for branch protection that requires signed commits); the branch moved by compare-and-swap as a push would",
  },
  'git-ssh-key-file': { arg: 'PATH', help: 'private key for ssh:// and git@host: repositories (a mounted Secret)' },
  'git-known-hosts-file': { arg: 'PATH', help: 'the SSH servers trusted (required with a key; no other host is accepted)' },
  'git-signing-key-file': {
    arg: 'PATH',
    help: 'an SSH private key (no passphrase; a mounted Secret) that signs every commit; add its public key to the committing account as a signing key, and the forge shows the commits verified (for branch protection that requires signed commits)',
  },
  'credentials-for': {
    arg: 'URL',
    multiple: true,
    help: 'URL prefix the Git and forge credentials may go to (repeatable, space-separated lists too); others are refused before any network call. Default: any https or ssh repository, never plain http',
  },
} as const satisfies FlagTable;

const COPY_FLAGS = {
  'from-file': { arg: 'FILE', help: '"SRC DST" pairs, one per line (# comments allowed)' },
  ...REGISTRY_FLAGS,
  'backup-registry': { arg: 'HOST/PFX', help: 'destination for SRC given alone: PFX/<source host>/<source path>:<tag>' },
  flat: { help: 'Docker Hub-style names (one level under PFX) for --backup-registry' },
  concurrency: { arg: 'N', default: '16', help: 'images copied at once from one source registry (twice that from all)' },
  'blob-concurrency': { arg: 'N', default: '6', help: 'blob transfers at once from one source registry (twice that from all)' },
  'retry-budget': retryBudget('5m', 'that image fails'),
  json: { help: 'one JSON object per image instead of text' },
  help: HELP,
} as const satisfies FlagTable;

const COPIER_FLAGS = {
  kubeconfig: { arg: 'PATH', help: 'kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)' },
  ...REGISTRY_FLAGS,
  'handoff-dir': { arg: 'DIR', help: 'the directory shared with the rewriter' },
  'auth-file': { arg: 'PATH', help: 'Docker config.json with registry credentials (reloaded on change)' },
  'registry-secret-dir': { arg: 'DIR', help: 'a mounted Secret: docker-server/docker-username/docker-password, or .dockerconfigjson (reloaded on change)' },
  'backup-pull': BACKUP_PULL,
  'retry-budget': retryBudget('1m', 'the workload is retried later instead (5 s doubling to 5 minutes)'),
  once: { help: 'one full pass, then exit (0 only if every workload succeeded)' },
  'controller-namespace': { arg: 'NS', help: "its own namespace (default: $POD_NAMESPACE, then the service account's)" },
  'include-namespace': { arg: 'NS', multiple: true, help: 'only these namespaces (repeatable)' },
  'exclude-namespace': { arg: 'NS', multiple: true, help: 'never these namespaces (repeatable)' },
  'recheck-interval': { arg: 'DUR', default: '10m', help: 'how long a verified backup is trusted' },
  'namespace-max-images': { arg: 'N', default: '200', help: "images one namespace's workloads may have copied per re-check interval" },
  'namespace-max-bytes': { arg: 'SIZE', default: '100GiB', help: "bytes one namespace's workloads may have copied per re-check interval" },
  'health-address': { arg: 'ADDR', default: ':8080', help: '/healthz, /readyz and /metrics ("" for none)' },
  'no-leader-election': { help: 'run without the Lease (a single replica)' },
  'lease-name': {
    arg: 'NAME',
    default: 'image-clone-copier',
    help: 'the Lease for leader election (with --argocd-cluster-secret, by default image-clone-copier-<that Secret>: one leader per spoke)',
  },
  'argocd-namespace': { arg: 'NS', default: 'argocd', help: 'where Argo CD Applications live' },
  'argocd-kubeconfig': {
    arg: 'PATH',
    help: 'read Argo CD Applications from the cluster Argo CD runs in (a hub) through this kubeconfig; workloads, Flux objects and Events stay in this cluster',
  },
  'argocd-cluster-secret': {
    arg: 'NAME',
    help: "run in an Argo CD hub and back up the workloads of the spoke this cluster Secret (in --argocd-namespace) reaches, as Argo CD reaches it; Applications, the Lease and the controller's namespace stay in this cluster, workloads, Events and pull access are the spoke's",
  },
  'argocd-destination': {
    arg: 'NAME',
    multiple: true,
    help: 'what Argo CD calls this cluster (its cluster name or API server URL, repeatable): an Application deploying elsewhere owns nothing here (default: in-cluster, https://kubernetes.default.svc; needed with --argocd-kubeconfig)',
  },
  'cluster-name': {
    arg: 'NAME',
    help: "this cluster's name in records, commit messages and pull request rows (a DNS label; default: the name in --argocd-cluster-secret, else the first 8 characters of the kube-system namespace's uid)",
  },
  'log-level': logLevel('info'),
  help: HELP,
} as const satisfies FlagTable;

const REWRITER_FLAGS = {
  'handoff-dir': { arg: 'DIR', help: 'the directory shared with the copier' },
  'cache-dir': { arg: 'DIR', help: 'where repositories are cloned (kept between runs)' },
  ...GIT_FLAGS,
  'group-by': {
    arg: 'BY',
    default: 'repository',
    help: 'which workloads share one branch and pull request: repository (and base branch), application (the GitOps owner), namespace, or image',
  },
  'branch-template': {
    arg: 'TEMPLATE',
    help: 'our branch names: {{base}}, {{hash}} (required), {{group}}, {{owner}}, {{cluster}} (default image-clone/{{base}}-{{hash}})',
  },
  'title-template': {
    arg: 'TEMPLATE',
    help: 'pull request titles: {{count}} (workloads), {{base}}, {{group}}, {{owner}}, {{cluster}}, {{hash}} (default "Move N workloads to backed-up images")',
  },
  'branch-prefix': { arg: 'PREFIX', help: 'our branches start with PREFIX (image-clone/ by default; --branch-template says more)' },
  'unmanaged-repo': { arg: 'URL', help: 'repository for workloads no GitOps tool manages' },
  'unmanaged-path': { arg: 'PATH', help: 'directory in it to search' },
  'unmanaged-branch': { arg: 'BRANCH', default: 'main', help: 'its base branch' },
  debounce: { arg: 'DUR', default: '2s', help: 'wait for a burst of records to end' },
  'keep-done': { arg: 'DUR', default: '7d', help: 'how long done handoff records are kept, then pruned' },
  'stuck-after': {
    arg: 'DUR',
    default: '30m',
    help: '/healthz fails when one step of a pass (a record, a repository) runs longer (the kubelet then restarts the rewriter)',
  },
  'direct-patch': {
    arg: 'MODE',
    default: 'never',
    help: 'never, unmanaged (patch workloads no GitOps tool manages through the Kubernetes API) or always (also managed ones: the GitOps tool may revert them until the Git change lands)',
  },
  kubeconfig: { arg: 'PATH', help: 'the cluster to patch (default: in-cluster, $KUBECONFIG, ~/.kube/config)' },
  'argocd-cluster-secret': {
    arg: 'NAME',
    help: 'in an Argo CD hub: patch the spoke this cluster Secret (in --argocd-namespace) reaches, as the copier given the same Secret backs it up',
  },
  'argocd-namespace': { arg: 'NS', default: 'argocd', help: 'where --argocd-cluster-secret is' },
  'health-address': { arg: 'ADDR', default: ':8081', help: '/healthz, /readyz and /metrics ("" for none)' },
  once: { help: 'process what is pending, then exit (0 only if every change landed)' },
  'dry-run': { help: 'print the plan and the unified diff (and any patch) for what is pending; commit, push, patch and mark nothing (implies --once)' },
  helm: {
    arg: 'PATH',
    default: 'helm',
    help: 'Helm, which renders a chart before and after each HelmRelease or chart Application edit (an edit not proved is not proposed)',
  },
  kustomize: { ...KUSTOMIZE, help: "kustomize, which builds every overlay an edit touches before and after it, and a HelmRelease's post-renderers" },
  'ca-file': { arg: 'PATH', help: 'extra CA certificates (PEM) to trust when fetching charts and calling forges' },
  'log-level': logLevel('info'),
  help: HELP,
} as const satisfies FlagTable;

const SYNC_REPO_FLAGS = {
  repo: { arg: 'URL', help: 'the GitOps repository (https://, ssh://, file://)' },
  branch: { arg: 'BRANCH', default: 'main', help: 'its base branch' },
  path: { arg: 'SUBDIR', help: 'only this directory of it' },
  ...REGISTRY_FLAGS,
  'retry-budget': retryBudget('5m', 'that image fails'),
  'backup-pull': {
    ...BACKUP_PULL,
    help: 'anonymous (each backup proved pullable without credentials, or not proposed), node (the nodes hold credentials) or secret:NAME (the manifests get imagePullSecrets NAME where they lack it)',
  },
  ...GIT_FLAGS,
  'dry-run': { help: 'back up, then print the diff; commit, push and open nothing' },
  kustomize: KUSTOMIZE,
  'log-level': logLevel('warn'),
  help: HELP,
} as const satisfies FlagTable;

const REWRITE_FLAGS = {
  repo: { arg: 'DIR', help: 'the repository (a checkout)' },
  path: { arg: 'SUBDIR', help: 'only this directory of it' },
  set: { arg: 'OLD=NEW', multiple: true, help: 'replace image OLD with NEW (repeatable)' },
  'dry-run': { help: 'print the unified diff; write nothing' },
  kustomize: KUSTOMIZE,
  helm: {
    arg: 'PATH',
    default: 'helm',
    help: 'Helm, which renders each chart of the repository whose values or templates a change edits, before and after it',
  },
  'no-render-proof': { help: 'write the change without building it first' },
  help: HELP,
} as const satisfies FlagTable;

/** Each command's flag table: its usage, its parser, and its reference page's table (docs/<command>.md, checked by the tests). */
export const COMMAND_FLAGS = {
  copy: COPY_FLAGS,
  copier: COPIER_FLAGS,
  rewriter: REWRITER_FLAGS,
  'sync-repo': SYNC_REPO_FLAGS,
  rewrite: REWRITE_FLAGS,
} as const satisfies Record<string, FlagTable>;

const usage = (header: string, table: FlagTable, footer?: string) => `${header.trimEnd()}\n\n${optionsUsage(table)}${footer ? `\n\n${footer}` : ''}`;
const USAGES: Readonly<Record<string, string>> = {
  copy: usage(COPY_USAGE_HEADER, COPY_FLAGS),
  copier: usage(COPIER_USAGE_HEADER, COPIER_FLAGS, COPIER_USAGE_FOOTER),
  rewriter: usage(REWRITER_USAGE_HEADER, REWRITER_FLAGS),
  'sync-repo': usage(SYNC_REPO_USAGE_HEADER, SYNC_REPO_FLAGS),
  rewrite: usage(REWRITE_USAGE_HEADER, REWRITE_FLAGS),
};

/** `--help`: the command's usage on stdout, exit status 0. */
function showUsage(out: (line: string) => void, command: string): number {
  out(USAGES[command] ?? USAGE);
  return 0;
}

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
      out(USAGES[rest[0] ?? ''] ?? USAGE);
      return 0;
    default:
      err(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

async function copy(args: readonly string[], out: (l: string) => void, err: (l: string) => void): Promise<number> {
  const { values, positionals } = parseFlags(COPY_FLAGS, args, true);
  if (values.help) return showUsage(out, 'copy');
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
      imageConcurrency: positiveInteger('--concurrency', values.concurrency!),
      blobConcurrency: positiveInteger('--blob-concurrency', values['blob-concurrency']!),
      ...registrySettings(values),
      json: values.json ?? false,
    },
    out,
    err,
  );
}

type GitFlagValues = FlagValues<typeof GIT_FLAGS>;

/** Validates the Git and forge flags; secrets stay file paths until the command reads them. */
function gitSettings(values: GitFlagValues): GitSettings {
  const mode = values['git-mode'];
  if (mode !== 'commit' && mode !== 'branch' && mode !== 'pr') throw new UsageError(`--git-mode must be pr, branch or commit, got ${JSON.stringify(mode)}`);
  if (!values['github-app-id'] !== !values['github-app-key-file']) throw new UsageError('--github-app-id and --github-app-key-file go together');
  if (values['github-app-installation-id'] && !values['github-app-id']) throw new UsageError('--github-app-installation-id needs --github-app-id');
  if (values['github-app-signed-commits'] && !values['github-app-id'])
    throw new UsageError('--github-app-signed-commits needs --github-app-id: GitHub signs the commits an App makes through its API');
  if (values['github-app-id'] && (values['git-password-file'] || values['forge-token-file']))
    throw new UsageError('--github-app-id replaces --git-password-file and --forge-token-file: give one or the other');
  if (mode === 'pr' && !values['forge-token-file'] && !values['git-password-file'] && !values['github-app-id'])
    throw new UsageError("--git-mode pr needs --forge-token-file (or a --git-password-file token that the forge's API accepts too, or a GitHub App)");
  const forge = values.forge;
  if (forge !== undefined && !isForgeKind(forge)) throw new UsageError(`--forge must be ${FORGE_KINDS.join(', ')}, got ${JSON.stringify(forge)}`);
  if (!values['git-ssh-key-file'] !== !values['git-known-hosts-file'])
    throw new UsageError('--git-ssh-key-file and --git-known-hosts-file go together: a key without known hosts would trust any server');
  return {
    mode,
    authorName: values['author-name']!,
    authorEmail: values['author-email']!,
    gitUsername: values['git-username']!,
    ...(values['git-password-file'] ? { gitPasswordFile: values['git-password-file'] } : {}),
    ...(values['git-ssh-key-file'] ? { gitSshKeyFile: values['git-ssh-key-file'] } : {}),
    ...(values['git-known-hosts-file'] ? { gitKnownHostsFile: values['git-known-hosts-file'] } : {}),
    ...(values['git-signing-key-file'] ? { gitSigningKeyFile: values['git-signing-key-file'] } : {}),
    ...(values['forge-token-file'] ? { forgeTokenFile: values['forge-token-file'] } : {}),
    ...(values['github-app-id']
      ? {
          githubApp: {
            id: values['github-app-id'],
            keyFile: values['github-app-key-file']!,
            ...(values['github-app-installation-id'] ? { installationId: values['github-app-installation-id'] } : {}),
            ...(values['github-app-signed-commits'] ? { signedCommits: true } : {}),
          },
        }
      : {}),
    ...(forge ? { forgeKind: forge } : {}),
    ...(values['forge-api'] ? { forgeApi: values['forge-api'] } : {}),
    ...(values['pr-label'] ? { prLabels: values['pr-label'] } : {}),
    prDraft: values['pr-draft'] ?? false,
    ...(values['commit-template-file'] ? { commitTemplateFile: values['commit-template-file'] } : {}),
    // One flag may carry a space-separated list (the ConfigMap's GIT_CREDENTIALS_FOR); an empty one binds nothing.
    ...(values['credentials-for']?.length ? { credentialScopes: values['credentials-for'].flatMap((v) => v.split(/\s+/)).filter(Boolean) } : {}),
  };
}

async function rewriter(args: readonly string[], out: (l: string) => void): Promise<number> {
  const { values } = parseFlags(REWRITER_FLAGS, args);
  if (values.help) return showUsage(out, 'rewriter');
  if (!values['handoff-dir']) throw new UsageError('rewriter needs --handoff-dir DIR');
  if (!values['cache-dir']) throw new UsageError('rewriter needs --cache-dir DIR');
  const git = gitSettings(values);
  const directPatch = values['direct-patch'];
  if (directPatch !== 'never' && directPatch !== 'unmanaged' && directPatch !== 'always')
    throw new UsageError(`--direct-patch must be never, unmanaged or always, got ${JSON.stringify(directPatch)}`);
  const { rewriterCommand } = await import('./commands/rewriter.ts');
  return rewriterCommand(
    {
      ...git,
      // Paths from flags resolved once, at start-up.
      handoffDir: resolve(values['handoff-dir']),
      cacheDir: resolve(values['cache-dir']),
      naming: {
        groupBy: values['group-by']!,
        ...(values['branch-template'] ? { branchTemplate: values['branch-template'] } : {}),
        ...(values['title-template'] ? { titleTemplate: values['title-template'] } : {}),
        ...(values['branch-prefix'] !== undefined ? { branchPrefix: values['branch-prefix'] } : {}),
      },
      ...(values['unmanaged-repo'] ? { unmanagedRepo: values['unmanaged-repo'] } : {}),
      ...(values['unmanaged-path'] ? { unmanagedPath: values['unmanaged-path'] } : {}),
      unmanagedBranch: values['unmanaged-branch']!,
      once: values.once ?? false,
      debounceMs: parseDuration('--debounce', values.debounce!),
      keepDoneMs: parseDuration('--keep-done', values['keep-done']!),
      stuckAfterMs: parseDuration('--stuck-after', values['stuck-after']!),
      directPatch,
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
      ...(values['argocd-cluster-secret'] ? { argocdClusterSecret: values['argocd-cluster-secret'], argocdNamespace: values['argocd-namespace']! } : {}),
      dryRun: values['dry-run'] ?? false,
      helm: values.helm!,
      kustomize: values.kustomize!,
      ...(values['ca-file'] ? { caFile: values['ca-file'] } : {}),
      ...(values['health-address'] && !values.once ? { healthAddress: values['health-address'] } : {}),
      logger: createLogger({ level: parseLevel(values['log-level']) }),
    },
    out,
  );
}

async function syncRepo(args: readonly string[], out: (l: string) => void, err: (l: string) => void): Promise<number> {
  const { values } = parseFlags(SYNC_REPO_FLAGS, args);
  if (values.help) return showUsage(out, 'sync-repo');
  if (!values.repo) throw new UsageError('sync-repo needs --repo URL');
  if (!values['backup-registry']) throw new UsageError('sync-repo needs --backup-registry HOST[:PORT]/PREFIX');
  const git = gitSettings(values);
  const { syncRepoCommand } = await import('./commands/sync-repo.ts');
  return syncRepoCommand(
    {
      repoURL: values.repo,
      branch: values.branch!,
      ...(values.path ? { path: values.path } : {}),
      backupRegistry: values['backup-registry'],
      layout: values.flat ? 'flat' : 'nested',
      backupPull: parseBackupPull(values['backup-pull']!),
      ...registrySettings(values),
      git,
      dryRun: values['dry-run'] ?? false,
      kustomize: values.kustomize!,
      logger: createLogger({ level: parseLevel(values['log-level']) }),
    },
    out,
    err,
  );
}

async function rewrite(args: readonly string[], out: (l: string) => void, err: (l: string) => void): Promise<number> {
  const { values } = parseFlags(REWRITE_FLAGS, args);
  if (values.help) return showUsage(out, 'rewrite');
  if (!values.repo) throw new UsageError('rewrite needs --repo DIR');
  if (!values.set?.length) throw new UsageError('rewrite needs at least one --set OLD=NEW');
  const [{ rewriteCommand }, { parseReplacement }] = await Promise.all([import('./commands/rewrite.ts'), import('./rewriter/edit/plan.ts')]);
  return rewriteCommand(
    {
      repo: values.repo,
      ...(values.path ? { path: values.path } : {}),
      replacements: values.set.map(parseReplacement),
      dryRun: values['dry-run'] ?? false,
      ...(values['no-render-proof'] ? {} : { kustomize: values.kustomize!, helm: values.helm! }),
    },
    out,
    err,
  );
}

async function copier(args: readonly string[], out: (l: string) => void): Promise<number> {
  const { values } = parseFlags(COPIER_FLAGS, args);
  if (values.help) return showUsage(out, 'copier');
  if (!values['backup-registry']) throw new UsageError('copier needs --backup-registry HOST[:PORT]/PREFIX');
  if (!values['handoff-dir']) throw new UsageError('copier needs --handoff-dir DIR');
  const { copierCommand } = await import('./commands/copier.ts');
  return copierCommand(
    {
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
      backupRegistry: values['backup-registry'],
      layout: values.flat ? 'flat' : 'nested',
      handoffDir: resolve(values['handoff-dir']),
      ...(values['registry-secret-dir'] ? { registrySecretDir: values['registry-secret-dir'] } : {}),
      once: values.once ?? false,
      ...(values['controller-namespace'] ? { controllerNamespace: values['controller-namespace'] } : {}),
      includeNamespaces: values['include-namespace'] ?? [],
      excludeNamespaces: values['exclude-namespace'] ?? [],
      recheckIntervalMs: parseDuration('--recheck-interval', values['recheck-interval']!),
      namespaceLimits: {
        images: positiveInteger('--namespace-max-images', values['namespace-max-images']!),
        bytes: parseSize('--namespace-max-bytes', values['namespace-max-bytes']!),
      },
      ...(values['health-address'] ? { healthAddress: values['health-address'] } : {}),
      leaderElection: !values['no-leader-election'],
      leaseName: values['lease-name']!,
      argocdNamespace: values['argocd-namespace']!,
      ...(values['argocd-kubeconfig'] ? { argocdKubeconfig: values['argocd-kubeconfig'] } : {}),
      ...(values['argocd-destination']?.length ? { argocdDestinations: values['argocd-destination'] } : {}),
      ...(values['argocd-cluster-secret'] ? { argocdClusterSecret: values['argocd-cluster-secret'] } : {}),
      // Empty (the ConfigMap's CLUSTER_NAME left blank): the default.
      ...(values['cluster-name'] ? { clusterName: checkClusterName(values['cluster-name']) } : {}),
      backupPull: parseBackupPull(values['backup-pull']!),
      ...registrySettings(values),
      logger: createLogger({ level: parseLevel(values['log-level']) }),
    },
    out,
  );
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
      // Scrubbed whatever threw it: a library's error may quote a credential (undici repeats an invalid header's value).
      process.stderr.write(scrub(`image-clone: ${known ? describeError(error) : ((error as Error).stack ?? String(error))}\n`));
      if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
        process.stderr.write(`Run "image-clone help" for usage.\n`);
      process.exitCode = 2;
    },
  );
}
