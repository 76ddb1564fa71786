/**
 * The controller in an Argo CD hub, serving a spoke: the spoke is reached the way Argo CD reaches it,
 * through one of Argo CD's cluster Secrets (`argocd.argoproj.io/secret-type: cluster`: `name`,
 * `server`, and `config`, a JSON of bearer token, basic auth or client certificate, and TLS
 * settings), named by the operator (--argocd-cluster-secret) and read once at start-up with `get` on
 * that one Secret. What this client cannot honour as Argo CD would is refused with the reason rather
 * than half-honoured: insecure TLS, an exec plugin or AWS IAM (a command to run), a proxy, and a
 * cluster Argo CD may reach only some namespaces of (the copier watches the whole cluster).
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ConfigError, describeError } from '../errors.ts';
import { CLUSTER_NAME } from '../handoff/schema.ts';
import { holdSecret } from '../observability/secrets.ts';
import { hasControlCharacter } from '../util/control-characters.ts';

export interface ArgoCdCluster {
  /** The spoke, with the Secret's credentials. */
  readonly kubeConfig: KubeConfig;
  /** What Argo CD calls it: an Application's `destination.name` or `destination.server` matches one of these. */
  readonly destinations: readonly string[];
  /** The Secret's `name` where it is a DNS label: the spoke's default --cluster-name. */
  readonly clusterName?: string;
}

/** The fields of Argo CD's ClusterConfig this client honours; any other set field is refused by name. */
interface ClusterConfig {
  bearerToken?: string;
  username?: string;
  password?: string;
  tlsClientConfig?: { insecure?: boolean; serverName?: string; caData?: string; certData?: string; keyData?: string };
}
const HONOURED = new Set(['bearerToken', 'username', 'password', 'tlsClientConfig', 'disableCompression']);
const HONOURED_TLS = new Set(['insecure', 'serverName', 'caData', 'certData', 'keyData']);

/** `hub`: the cluster the controller runs in, where the Secret is read (`namespace`: Argo CD's, argocd unless told). */
export async function readArgoCdCluster(hubConfig: KubeConfig, namespace: string | undefined, secretName: string): Promise<ArgoCdCluster> {
  const hub = hubConfig.makeApiClient(CoreV1Api);
  namespace ??= 'argocd';
  const where = `the Argo CD cluster Secret ${namespace}/${secretName}`;
  let data: Record<string, string>;
  try {
    data = (await hub.readNamespacedSecret({ namespace, name: secretName })).data ?? {};
  } catch (error) {
    throw new ConfigError(`cannot read ${where} (the copier needs get on that Secret alone: docs/fleets.md): ${describeError(error)}`);
  }
  const field = (key: string) => (data[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8'));
  return argoCdCluster(where, { name: field('name'), server: field('server'), config: field('config'), namespaces: field('namespaces') });
}

/** The spoke a cluster Secret's decoded fields describe (`where` names the Secret in errors; no value of it is ever quoted). */
export function argoCdCluster(where: string, fields: { name?: string; server?: string; config?: string; namespaces?: string }): ArgoCdCluster {
  const server = fields.server?.trim();
  if (!server) throw new ConfigError(`${where} has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ConfigError(`${where}: its server is not a URL`);
  }
  if (url.protocol !== 'https:') throw new ConfigError(`${where}: its server must be https (the spoke's credentials would otherwise travel in clear)`);
  if (url.username || url.password || url.search || url.hash)
    throw new ConfigError(`${where}: its server must be a plain https URL (no user, query or fragment)`);
  // The hub itself: its Applications would own the spoke's workloads.
  if (url.hostname === 'kubernetes.default.svc' || fields.name?.trim() === 'in-cluster')
    throw new ConfigError(`${where} names the cluster Argo CD runs in (in-cluster), not a spoke`);
  if (fields.namespaces?.trim())
    throw new ConfigError(
      `${where} lets Argo CD reach only some namespaces of the spoke; the copier watches the whole cluster: name a Secret whose credentials reach it cluster-wide (docs/fleets.md)`,
    );
  let config: ClusterConfig & Record<string, unknown>;
  try {
    config = JSON.parse(fields.config ?? '{}') as typeof config;
  } catch {
    throw new ConfigError(`${where}: its config is not JSON`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ConfigError(`${where}: its config is not a JSON object`);
  const unhonoured = Object.keys(config).filter((key) => !HONOURED.has(key) && config[key] !== undefined && config[key] !== null);
  if (unhonoured.length > 0)
    throw new ConfigError(
      `${where}: its config sets ${unhonoured.join(', ')}, which the copier does not support (it runs no exec plugin or cloud CLI and uses no proxy): give it a bearer token, basic auth or a client certificate`,
    );
  const tls = config.tlsClientConfig ?? {};
  const tlsUnhonoured = Object.keys(tls).filter((key) => !HONOURED_TLS.has(key));
  if (tlsUnhonoured.length > 0) throw new ConfigError(`${where}: its tlsClientConfig sets ${tlsUnhonoured.join(', ')}, which the copier does not support`);
  if (tls.insecure === true) throw new ConfigError(`${where} asks for insecure TLS; the copier verifies the spoke's certificate: give tlsClientConfig.caData`);
  const strings = { bearerToken: config.bearerToken, username: config.username, password: config.password, ...tls };
  for (const [key, value] of Object.entries(strings)) {
    if (value !== undefined && typeof value !== (key === 'insecure' ? 'boolean' : 'string'))
      throw new ConfigError(`${where}: its config's ${key} has the wrong type`);
    // A header could not carry it, and the error saying so would quote it.
    if (typeof value === 'string' && hasControlCharacter(value) && !key.endsWith('Data'))
      throw new ConfigError(`${where}: its config's ${key} holds a control character`);
  }
  // Never written anywhere: held so that no log line or error can carry them.
  for (const secret of [config.bearerToken, config.password, tls.keyData]) if (secret) holdSecret(secret);
  if (config.username && config.password) holdSecret(Buffer.from(`${config.username}:${config.password}`).toString('base64'));
  const certificate = Boolean(tls.certData && tls.keyData);
  if (!config.bearerToken && !(config.username && config.password) && !certificate)
    throw new ConfigError(`${where}: its config has no credentials (bearerToken, username and password, or tlsClientConfig certData and keyData)`);

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      {
        name: 'spoke',
        server: url.href.replace(/\/$/, ''),
        skipTLSVerify: false,
        ...(tls.caData ? { caData: tls.caData } : {}),
        ...(tls.serverName ? { tlsServerName: tls.serverName } : {}),
      },
    ],
    users: [
      {
        name: 'spoke',
        ...(config.bearerToken ? { token: config.bearerToken } : {}),
        ...(config.username && config.password ? { username: config.username, password: config.password } : {}),
        ...(certificate ? { certData: tls.certData, keyData: tls.keyData } : {}),
      },
    ],
    contexts: [{ name: 'spoke', cluster: 'spoke', user: 'spoke' }],
    currentContext: 'spoke',
  });
  const name = fields.name?.trim();
  return {
    kubeConfig,
    // Argo CD matches a destination's server as written in the Secret; both spellings, with and without a trailing slash.
    destinations: [...new Set([...(name ? [name] : []), server, server.replace(/\/$/, '')])],
    ...(name && CLUSTER_NAME.test(name) ? { clusterName: name } : {}),
  };
}
