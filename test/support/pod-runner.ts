/**
 * A kubelet of our own, for the one test that runs the shipped image: starts every container of a
 * rendered Deployment's pod template from a locally built image (buildah storage), with what the
 * template says and nothing restated here: the image's entrypoint, working directory and
 * environment; the container's args with `$(VAR)` expanded as the kubelet does, `envFrom` ConfigMaps,
 * `env` values and field references; the pod's runAsUser/runAsGroup, runAsNonRoot and each
 * container's readOnlyRootFilesystem and allowPrivilegeEscalation; emptyDir volumes shared between
 * containers, Secret volumes as files, and the service account token mounted where in-cluster
 * clients look for it (into every container, or, with `automountServiceAccountToken: false`, only
 * where a container mounts a projected token volume). Probes are read from the template (named ports resolved).
 *
 * Each container runs in its own copy of the image's filesystem (`buildah from` + `buildah mount`)
 * through container-sandbox.sh, sharing the host's network like a Pod's containers share one.
 * Needs root (mount namespaces, chroot).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1Deployment, V1Probe } from '@kubernetes/client-node';
import { request } from 'undici';
import { CACHE_DIR } from '../../devenv/cache.ts';

const SANDBOX = join(import.meta.dirname, 'container-sandbox.sh');
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** buildah with the storage the image scripts use (scripts/image-env.sh). */
export function buildah(...args: string[]): string {
  const env = {
    ...process.env,
    CONTAINERS_STORAGE_CONF: process.env.CONTAINERS_STORAGE_CONF ?? join(CACHE_DIR, 'containers/storage.conf'),
    BUILDAH_ISOLATION: 'chroot',
  };
  return execFileSync('buildah', args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

interface ImageConfig {
  readonly Env?: string[];
  readonly Entrypoint?: string[];
  readonly Cmd?: string[];
  readonly WorkingDir?: string;
  readonly User?: string;
}

export interface PodSpecInputs {
  readonly deployment: V1Deployment;
  /** The local image each container's `image` stands for (the user's own build of it). */
  readonly image: string;
  readonly namespace: string;
  readonly podName: string;
  /** ConfigMaps and Secrets as the API server holds them (name → key → value). */
  readonly configMaps: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly secrets: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The projected service account volume: a token the API server issued, its CA, the namespace. */
  readonly serviceAccount: { readonly token: string; readonly caCert: string };
  /** What the kubelet puts in every container's environment for the `kubernetes` Service. */
  readonly apiServer: { readonly host: string; readonly port: string };
  /** Host directory for volumes, logs and the containers' files. */
  readonly dir: string;
  /** Named emptyDir volumes placed at given host directories (e.g. a ledger the test reads). */
  readonly emptyDirAt?: Readonly<Record<string, string>>;
}

export interface RunningContainer {
  readonly name: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly process: ChildProcess;
  readonly logFile: string;
  /** 127.0.0.1:port/path for the readiness and liveness probes. */
  readonly readiness: string | undefined;
  readonly liveness: string | undefined;
  /** Runs a command in a sandbox set up like this container's (as `kubectl exec` would). */
  exec(argv: readonly string[]): { status: number; output: string };
  log(): string;
  /** Exit code or signal once exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface RunningPod {
  readonly containers: readonly RunningContainer[];
  container(name: string): RunningContainer;
  /** The host directory behind a volume of the pod template. */
  volumeDir(name: string): string;
  /** SIGTERM to every container, then SIGKILL after the grace period, as the kubelet stops a Pod. */
  stop(graceMs?: number): Promise<Array<{ name: string; code: number | null; signal: NodeJS.Signals | null }>>;
  /** Removes the containers' filesystems (after stop; exec no longer works). */
  remove(): void;
}

/** `$(VAR)` → value for names defined earlier; `$$(VAR)` → `$(VAR)`; unknown names stay as written. */
export function expandKubeVars(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) =>
    whole === '$$' ? '$' : name !== undefined && name in env ? env[name]! : whole,
  );
}

export function startPod(inputs: PodSpecInputs): RunningPod {
  const pod = inputs.deployment.spec!.template.spec!;
  const security = pod.securityContext ?? {};
  const imageConfig = (JSON.parse(buildah('inspect', '--type', 'image', inputs.image)) as { OCIv1: { config: ImageConfig } }).OCIv1.config;
  const uid = security.runAsUser ?? Number((imageConfig.User ?? '0').split(':')[0]);
  const gid = security.runAsGroup ?? Number((imageConfig.User ?? '0:0').split(':')[1] ?? 0);
  const fsGroup = security.fsGroup;
  if (security.runAsNonRoot && uid === 0) throw new Error('runAsNonRoot, but the container would run as uid 0: the kubelet refuses to start it');

  // Volumes on the host, owned as the kubelet leaves them: emptyDir world-writable, and with
  // fsGroup, group-owned by it with the setgid bit; Secret files 0644 (defaultMode), fsGroup's.
  const volumeDirs = new Map<string, string>();
  const own = (path: string) => fsGroup !== undefined && chownSync(path, 0, fsGroup);
  for (const volume of pod.volumes ?? []) {
    const dir = inputs.emptyDirAt?.[volume.name] ?? join(inputs.dir, 'volumes', volume.name);
    mkdirSync(dir, { recursive: true });
    own(dir);
    if (volume.emptyDir) chmodSync(dir, fsGroup !== undefined ? 0o2777 : 0o777);
    else if (volume.secret) {
      const data = inputs.secrets[volume.secret.secretName!];
      if (!data) throw new Error(`volume ${volume.name}: Secret ${volume.secret.secretName} does not exist (the Pod would wait in ContainerCreating)`);
      for (const [key, value] of Object.entries(data)) {
        writeFileSync(join(dir, key), value, { mode: volume.secret.defaultMode ?? 0o644 });
        own(join(dir, key));
      }
    } else if (volume.projected) {
      // The service account token, as the kubelet projects it: token, the cluster's CA, the namespace.
      for (const source of volume.projected.sources ?? []) {
        const files: Array<[string, string]> = [];
        if (source.serviceAccountToken) files.push([source.serviceAccountToken.path, inputs.serviceAccount.token]);
        else if (source.configMap?.name === 'kube-root-ca.crt')
          for (const item of source.configMap.items ?? []) files.push([item.path, inputs.serviceAccount.caCert]);
        else if (source.downwardAPI)
          for (const item of source.downwardAPI.items ?? []) {
            if (item.fieldRef?.fieldPath !== 'metadata.namespace')
              throw new Error(`volume ${volume.name}: downwardAPI ${item.fieldRef?.fieldPath} is not run here`);
            files.push([item.path, inputs.namespace]);
          }
        else throw new Error(`volume ${volume.name}: only the service account's projected sources are run here`);
        for (const [path, value] of files) {
          writeFileSync(join(dir, path), value, { mode: 0o644 });
          own(join(dir, path));
        }
      }
    } else throw new Error(`volume ${volume.name}: only emptyDir, Secret and projected service account volumes are run here`);
    volumeDirs.set(volume.name, dir);
  }
  const tokenDir = join(inputs.dir, 'volumes', 'kube-api-access');
  mkdirSync(tokenDir, { recursive: true });
  for (const [key, value] of Object.entries({ token: inputs.serviceAccount.token, 'ca.crt': inputs.serviceAccount.caCert, namespace: inputs.namespace })) {
    writeFileSync(join(tokenDir, key), value, { mode: 0o644 });
    own(join(tokenDir, key));
  }
  const etcHosts = join(inputs.dir, 'etc-hosts');
  writeFileSync(etcHosts, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t${inputs.podName}\n`);

  const containers = pod.containers.map((container) => startContainer(container));
  return {
    containers,
    container(name) {
      const found = containers.find((c) => c.name === name);
      if (!found) throw new Error(`no container ${name}`);
      return found;
    },
    volumeDir(name) {
      const dir = volumeDirs.get(name);
      if (!dir) throw new Error(`no volume ${name}`);
      return dir;
    },
    async stop(graceMs = (pod.terminationGracePeriodSeconds ?? 30) * 1000) {
      return Promise.all(
        containers.map(async (c) => {
          // To PID 1 of the container (unshare forwards no signal), as the runtime sends it.
          const signal = (name: NodeJS.Signals) => {
            const pid = containerPid(c.process.pid);
            if (pid !== undefined) process.kill(pid, name);
          };
          if (c.process.exitCode === null && c.process.signalCode === null) signal('SIGTERM');
          const timer = setTimeout(() => signal('SIGKILL'), graceMs);
          const result = await c.exited;
          clearTimeout(timer);
          return { name: c.name, ...result };
        }),
      );
    },
    remove() {
      for (const c of containers) cleanupContainer(c.name);
    },
  };

  function cleanupContainer(name: string): void {
    const id = `${inputs.podName}-${name}`;
    try {
      buildah('rm', id);
    } catch {
      // already gone
    }
  }

  function startContainer(container: V1Container): RunningContainer {
    if (container.image === undefined) throw new Error(`container ${container.name} names no image`);
    const id = `${inputs.podName}-${container.name}`;
    cleanupContainer(container.name);
    buildah('from', '--quiet', '--pull=never', '--name', id, inputs.image);
    const rootfs = buildah('mount', id);

    // The environment, in the kubelet's order: the image's, then envFrom, then env (which may refer
    // to what came before with $(VAR)), with the Service variables for the API server.
    const env: Record<string, string> = {};
    for (const entry of imageConfig.Env ?? []) {
      const at = entry.indexOf('=');
      env[entry.slice(0, at)] = entry.slice(at + 1);
    }
    env.HOSTNAME = inputs.podName;
    for (const source of container.envFrom ?? []) {
      const name = source.configMapRef?.name ?? source.secretRef?.name;
      const data = source.configMapRef ? inputs.configMaps[name!] : inputs.secrets[name!];
      if (!data) throw new Error(`container ${container.name}: envFrom ${name} does not exist`);
      for (const [key, value] of Object.entries(data)) env[`${source.prefix ?? ''}${key}`] = value;
    }
    for (const variable of container.env ?? []) {
      if (variable.value !== undefined) env[variable.name] = expandKubeVars(variable.value, env);
      else if (variable.valueFrom?.fieldRef) {
        const path = variable.valueFrom.fieldRef.fieldPath;
        const fields: Record<string, string> = {
          'metadata.namespace': inputs.namespace,
          'metadata.name': inputs.podName,
          'spec.serviceAccountName': pod.serviceAccountName ?? 'default',
          // The Pod's containers share the host's network here.
          'status.podIP': '127.0.0.1',
        };
        if (!(path in fields)) throw new Error(`container ${container.name}: fieldRef ${path} is not run here`);
        env[variable.name] = fields[path]!;
      } else throw new Error(`container ${container.name}: env ${variable.name} has a source not run here`);
    }
    env.KUBERNETES_SERVICE_HOST = inputs.apiServer.host;
    env.KUBERNETES_SERVICE_PORT = inputs.apiServer.port;
    env.KUBERNETES_SERVICE_PORT_HTTPS = inputs.apiServer.port;
    // HOME from the image's passwd when nothing sets it, as container runtimes do.
    if (env.HOME === undefined) {
      const passwd = existsSync(join(rootfs, 'etc/passwd')) ? readFileSync(join(rootfs, 'etc/passwd'), 'utf8') : '';
      env.HOME =
        passwd
          .split('\n')
          .map((l) => l.split(':'))
          .find((f) => Number(f[2]) === uid)?.[5] ?? '/';
    }

    const entrypoint = container.command ?? imageConfig.Entrypoint ?? [];
    const args = container.args ?? (container.command ? [] : (imageConfig.Cmd ?? []));
    const argv = [...entrypoint, ...args].map((a) => expandKubeVars(a, env));
    const sc = container.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) throw new Error(`container ${container.name}: only allowPrivilegeEscalation: false is run here`);
    if (sc.capabilities?.add?.length) throw new Error(`container ${container.name}: added capabilities are not run here`);
    const mounts = [
      ...(container.volumeMounts ?? []).map(
        (m) => `${volumeDirs.get(m.name)}:${m.mountPath}:${m.readOnly || pod.volumes?.find((v) => v.name === m.name)?.secret ? 'ro' : 'rw'}`,
      ),
      // Mounted automatically unless the pod says not to (then only where a container mounts a projected token itself).
      ...(pod.automountServiceAccountToken === false ? [] : [`${tokenDir}:${SERVICE_ACCOUNT_DIR}:ro`]),
      `${etcHosts}:/etc/hosts:ro`,
    ];
    const workdir = container.workingDir ?? imageConfig.WorkingDir ?? '/';
    // A PID namespace of its own: the controller is PID 1, as in a container (where a signal with no
    // handler is ignored); unshare --fork waits for it and exits with its status.
    const sandbox = (command: readonly string[]) => [
      '--mount',
      '--propagation',
      'private',
      '--pid',
      '--fork',
      'bash',
      SANDBOX,
      rootfs,
      sc.readOnlyRootFilesystem ? '1' : '0',
      String(sc.runAsUser ?? uid),
      String(sc.runAsGroup ?? gid),
      workdir,
      ...mounts,
      '--',
      ...command,
    ];

    const logFile = join(inputs.dir, `${container.name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn('unshare', sandbox(argv), { env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const probe = (p: V1Probe | undefined) => {
      if (!p?.httpGet) return undefined;
      const port = typeof p.httpGet.port === 'number' ? p.httpGet.port : container.ports?.find((x) => x.name === p.httpGet!.port)?.containerPort;
      if (port === undefined) throw new Error(`container ${container.name}: probe port ${p.httpGet.port} is not declared`);
      return `127.0.0.1:${port}${p.httpGet.path ?? '/'}`;
    };
    return {
      name: container.name,
      argv,
      env,
      process: child,
      logFile,
      readiness: probe(container.readinessProbe),
      liveness: probe(container.livenessProbe),
      exited,
      log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
      exec(command) {
        try {
          return { status: 0, output: execFileSync('unshare', sandbox(command), { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
        } catch (error) {
          const e = error as { status: number | null; stdout?: string; stderr?: string };
          return { status: e.status ?? -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
        }
      },
    };
  }
}

/** The host pid of the process unshare --fork started (the container's PID 1), while it runs. */
function containerPid(unsharePid: number | undefined): number | undefined {
  if (unsharePid === undefined) return undefined;
  try {
    const children = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.length ? Number(children[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** GET http://ADDRESS: the status code, or 0 when nothing answers. */
export async function probeStatus(address: string): Promise<number> {
  try {
    const response = await request(`http://${address}`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    await response.body.dump();
    return response.statusCode;
  } catch {
    return 0;
  }
}
