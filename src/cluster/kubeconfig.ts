/**
 * Which cluster the controller talks to: `--kubeconfig`, else client-node's default order
 * ($KUBECONFIG, ~/.kube/config, then the Pod's service account). Shared by the copier and the
 * rewriter's direct patch.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../errors.ts';

const SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(path: string | undefined): KubeConfig {
  // With none of these, client-node quietly falls back to http://localhost:8080, and every call
  // then fails with a message about plain HTTP that names neither cause nor remedy.
  if (path === undefined && !process.env.KUBECONFIG && !existsSync(join(homedir(), '.kube', 'config')) && !existsSync(SERVICE_ACCOUNT_TOKEN_FILE)) {
    throw new ConfigError(
      `no cluster to talk to: no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, and no service account token at ${SERVICE_ACCOUNT_TOKEN_FILE} (in a Pod: is automountServiceAccountToken false?)`,
    );
  }
  const kc = new KubeConfig();
  try {
    if (path !== undefined) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (error) {
    throw new ConfigError(`cannot load the kubeconfig${path ? ` ${path}` : ''}: ${(error as Error).message}`);
  }
  if (!kc.getCurrentCluster()) throw new ConfigError(`the kubeconfig${path ? ` ${path}` : ''} names no current cluster`);
  return kc;
}
