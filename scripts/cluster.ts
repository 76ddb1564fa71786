/**
 * npm run cluster -- up DIR     start etcd + kube-apiserver (building it first if needed), write
 *                               DIR/kubeconfig (cluster-admin), return once the server is ready
 * npm run cluster -- down DIR   stop them and remove DIR
 */
import { startCluster, stopClusterDir } from '../devenv/cluster.ts';

const [command, dir] = process.argv.slice(2);
if ((command !== 'up' && command !== 'down') || dir === undefined) {
  process.stderr.write('usage: npm run cluster -- up DIR | down DIR\n');
  process.exit(2);
}
try {
  if (command === 'up') {
    const cluster = await startCluster({ dir, detached: true, progress: (line) => process.stderr.write(`cluster: ${line}\n`) });
    process.stdout.write(`${cluster.kubeconfig}\n`);
  } else {
    await stopClusterDir(dir);
    process.stderr.write(`cluster: stopped and removed ${dir}\n`);
  }
} catch (error) {
  process.stderr.write(`cluster: ${(error as Error).message}\n`);
  process.exit(1);
}
