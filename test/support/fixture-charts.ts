/** The project's fixture charts (test/fixtures/charts/), packaged by the real Helm for a registry of the test's. */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FIXTURE_CHARTS = join(import.meta.dirname, '../fixtures/charts');

/**
 * Packages the fixture chart `name` with `SOURCE_REGISTRY` replaced by `registry` (`helm package`
 * into `into`); returns the package's path.
 */
export function packageFixtureChart(helm: string, name: string, registry: string, into: string): string {
  const copy = join(mkdtempSync(join(tmpdir(), `chart-${name}-`)), name);
  cpSync(join(FIXTURE_CHARTS, name), copy, { recursive: true });
  const substitute = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) substitute(path);
      else writeFileSync(path, readFileSync(path, 'utf8').replaceAll('SOURCE_REGISTRY', registry));
    }
  };
  substitute(copy);
  const out = execFileSync(helm, ['package', copy, '--destination', into], {
    encoding: 'utf8',
    env: { ...process.env, HELM_CACHE_HOME: into, HELM_CONFIG_HOME: into },
  });
  return /saved it to: (.+\.tgz)/.exec(out)![1]!.trim();
}
