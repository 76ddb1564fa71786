/**
 * The copier's side of `npm run bench:hostile`, as its own process (so its peak RSS is the
 * copier's): one copy engine, configured as the copier configures it (each tenant's copies in its
 * namespace's share), given the well-behaved tenant's images and the hostile tenant's at the same moment. Prints one JSON
 * line: when the well-behaved tenant's last image landed, and how each hostile one ended.
 *
 * Usage: node bench/hostile/copy-tenants.ts SPEC.json
 */
import { readFileSync } from 'node:fs';
import { parseReference } from '../../src/image/reference.ts';
import { createRegistryStack } from '../../src/registry/index.ts';
import { retryPolicyWithBudget } from '../../src/util/retry.ts';

interface Spec {
  readonly insecure: readonly string[];
  readonly backup: string;
  readonly good: readonly string[];
  readonly hostile: readonly string[];
}
const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Spec;
const { engine, close } = createRegistryStack({ insecureRegistries: spec.insecure, retry: retryPolicyWithBudget(60_000) });
const destination = (image: string) => parseReference(`${spec.backup}/mirror/${image.replace(/^[^/]+\//, '')}`);
const started = performance.now();
const hostile = Promise.all(
  spec.hostile.map((image) =>
    engine.copy({ source: parseReference(image), destination: destination(image), share: 'hostile-namespace' }).then(
      () => 'copied',
      (error: Error) => error.message.replace(/.*: /, '').slice(0, 120),
    ),
  ),
);
await Promise.all(spec.good.map((image) => engine.copy({ source: parseReference(image), destination: destination(image), share: 'good-namespace' })));
const goodSeconds = (performance.now() - started) / 1000;
const outcomes = await hostile;
await close();
const counts: Record<string, number> = {};
for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
process.stdout.write(`${JSON.stringify({ goodSeconds, hostileSeconds: (performance.now() - started) / 1000, hostile: counts })}\n`);
