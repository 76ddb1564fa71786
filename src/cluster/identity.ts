/**
 * Which cluster the copier serves, named in every record, commit message and pull request row, so
 * several clusters sharing one repository can tell their changes apart: `--cluster-name` where the
 * operator gives one, else the first characters of the kube-system namespace's uid (stable for the
 * cluster's life, the same in every installation, and readable with the namespaces the copier
 * already watches).
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import { ConfigError, describeError, ImageCloneError } from '../errors.ts';
import { CLUSTER_NAME, type ClusterIdentity } from '../handoff/schema.ts';

export type { ClusterIdentity };

export function checkClusterName(name: string): string {
  if (!CLUSTER_NAME.test(name))
    throw new ConfigError(`--cluster-name ${JSON.stringify(name)}: expected a DNS label (lower-case letters, digits and '-', at most 63)`);
  return name;
}

/** The cluster's uid (kube-system's) and its name: `name` where given, else the uid's first 8 characters. */
export async function readClusterIdentity(core: CoreV1Api, name: string | undefined): Promise<ClusterIdentity> {
  let uid: string | undefined;
  try {
    uid = (await core.readNamespace({ name: 'kube-system' })).metadata?.uid;
  } catch (error) {
    throw new ImageCloneError(`cannot read the kube-system namespace, whose uid names this cluster (or give --cluster-name): ${describeError(error)}`);
  }
  if (!uid) throw new Error('the kube-system namespace has no uid to name this cluster by (give --cluster-name)');
  return { name: name ?? uid.slice(0, 8), uid };
}
