/**
 * The copy benchmarks' tools and scenario runner, shared by `bench:copy` (loopback) and `bench:wan`
 * (a source across an emulated WAN): this project and each peer doing the same work (all
 * platforms, digests preserved), run alternately so drift hits all alike, reported as medians.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { goTool, measure, measurePool, skopeo, type Measured } from './peers.ts';

export const MiB = 1 << 20;
const GiB = 1 << 30;
/** crane and regctl have no batch mode: 4 processes at once (crane's own default job count). */
export const PEER_POOL = 4;

/** skopeo sync copies from a YAML list into DEST/<last path component>. */
export interface SyncSpec {
  readonly images: Record<string, string[]>;
  readonly destination: string;
}

export interface Tool {
  readonly name: string;
  readonly peer: boolean;
  /** Copies `pairs` (source, destination) as this tool's users would; `sync` for skopeo sync. */
  run(pairs: ReadonlyArray<readonly [string, string]>, sync: SyncSpec): Promise<Measured>;
}

export interface ToolSetup {
  readonly work: string;
  /** How this project is run: node arguments before `copy`. */
  readonly ours: readonly string[];
  /** The source registry's address (for skopeo sync's YAML). */
  readonly source: () => string;
  /** The registries that speak plain HTTP, as this project's flags. */
  readonly insecure: () => string[];
}

/** regctl's configuration lives in $HOME: a home of its own for the run. */
export function regctlEnvironment(work: string): NodeJS.ProcessEnv {
  return { ...process.env, HOME: join(work, 'regctl-home') };
}

/** Tells regctl that a registry speaks plain HTTP. */
export async function trustForRegctl(work: string, address: string): Promise<void> {
  await measure(goTool('regctl'), ['registry', 'set', '--tls', 'disabled', address], regctlEnvironment(work));
}

export function copyTools(setup: ToolSetup): Tool[] {
  const crane = goTool('crane');
  const regctl = goTool('regctl');
  const regctlEnv = regctlEnvironment(setup.work);
  return [
    {
      name: 'image-clone',
      peer: false,
      run(pairs) {
        if (pairs.length === 1) return measure(process.execPath, [...setup.ours, 'copy', pairs[0]![0], pairs[0]![1], ...setup.insecure()]);
        const file = join(setup.work, `pairs-${Date.now()}.txt`);
        writeFileSync(file, pairs.map((p) => p.join(' ')).join('\n'));
        return measure(process.execPath, [...setup.ours, 'copy', '--from-file', file, ...setup.insecure()]);
      },
    },
    {
      name: 'skopeo',
      peer: true,
      run(pairs, sync) {
        const tls = ['--src-tls-verify=false', '--dest-tls-verify=false'];
        if (pairs.length === 1)
          return measure(skopeo(), ['copy', '--all', '--preserve-digests', ...tls, `docker://${pairs[0]![0]}`, `docker://${pairs[0]![1]}`]);
        const file = join(setup.work, `sync-${Date.now()}.yaml`);
        const lines = [
          `${setup.source()}:`,
          '  tls-verify: false',
          '  images:',
          ...Object.entries(sync.images).map(([repo, tags]) => `    ${repo}: [${tags.join(', ')}]`),
        ];
        writeFileSync(file, `${lines.join('\n')}\n`);
        return measure(skopeo(), [
          'sync',
          '--all',
          '--preserve-digests',
          '--src',
          'yaml',
          '--dest',
          'docker',
          '--dest-tls-verify=false',
          file,
          sync.destination,
        ]);
      },
    },
    {
      name: 'crane',
      peer: true,
      run: (pairs) =>
        measurePool(
          pairs.map(([s, d]) => [crane, ['copy', '--insecure', s, d]] as const),
          PEER_POOL,
        ),
    },
    {
      name: 'regctl',
      peer: true,
      run: (pairs) =>
        measurePool(
          pairs.map(([s, d]) => [regctl, ['image', 'copy', s, d]] as const),
          PEER_POOL,
          regctlEnv,
        ),
    },
  ];
}

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface ScenarioResult {
  readonly name: string;
  readonly medians: Map<string, number>;
  /** This project's speed-up over the fastest peer (fastest peer's time / ours). */
  readonly ratio: number;
}

export interface ScenarioOptions {
  readonly name: string;
  readonly tools: readonly Tool[];
  readonly runs: number;
  readonly say: (line: string) => void;
  /** `fresh`: a new empty target before each measurement; `recheck`: each tool backs up once, untimed, first. */
  readonly mode: 'fresh' | 'recheck';
  readonly freshTarget: () => Promise<void>;
  /** Called before each timed run (untimed): what changes at the source between runs. */
  readonly prepare?: (tool: Tool, run: number) => Promise<void>;
  /** The work for a tool's run, and the check that its copy is right. */
  readonly plan: (tool: Tool, run: number) => { pairs: Array<[string, string]>; sync: SyncSpec; check: () => Promise<void> };
  /** Bytes that must cross the link, for CPU per GiB and the wire's own limit. */
  readonly bytes?: number;
  /** The link's limit for those bytes (bytes / bandwidth), printed beside each time. */
  readonly wireSeconds?: number;
}

/** Runs one scenario for every tool, `runs` times, alternating tools; prints a table of medians. */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  o.say(`\n## ${o.name}`);
  const times = new Map<string, number[]>(o.tools.map((t) => [t.name, []]));
  const cpu = new Map<string, number[]>(o.tools.map((t) => [t.name, []]));
  if (o.mode === 'recheck') {
    for (const tool of o.tools) {
      const p = o.plan(tool, 0);
      await tool.run(p.pairs, p.sync);
      await p.check();
    }
  }
  for (let run = 1; run <= o.runs; run++) {
    for (const tool of o.tools) {
      if (o.mode === 'fresh') await o.freshTarget();
      await o.prepare?.(tool, run);
      const p = o.plan(tool, o.mode === 'recheck' ? 0 : run);
      const measured = await tool.run(p.pairs, p.sync);
      await p.check();
      times.get(tool.name)!.push(measured.seconds);
      if (measured.cpuSeconds !== undefined) cpu.get(tool.name)!.push(measured.cpuSeconds);
    }
  }
  const medians = new Map([...times].map(([tool, xs]) => [tool, median(xs)]));
  const fastestPeer = Math.min(...o.tools.filter((t) => t.peer).map((t) => medians.get(t.name)!));
  const ours = medians.get('image-clone')!;
  if (o.wireSeconds !== undefined) o.say(`the link's own limit for these bytes: ${o.wireSeconds.toFixed(2)} s`);
  o.say(`| tool | median s | ${o.wireSeconds !== undefined ? 'x the wire | ' : ''}runs (s) | CPU s (median)${o.bytes ? ' | CPU s per GiB' : ''} |`);
  o.say(`|---|---|${o.wireSeconds !== undefined ? '---|' : ''}---|---|${o.bytes ? '---|' : ''}`);
  for (const tool of o.tools) {
    const m = medians.get(tool.name)!;
    const c = cpu.get(tool.name)!.length ? median(cpu.get(tool.name)!) : undefined;
    const cells = [tool.name, m.toFixed(3)];
    if (o.wireSeconds !== undefined) cells.push(`${(m / o.wireSeconds).toFixed(2)}`);
    cells.push(
      times
        .get(tool.name)!
        .map((t) => t.toFixed(2))
        .join(', '),
      c === undefined ? '?' : c.toFixed(2),
    );
    if (o.bytes) cells.push(c === undefined ? '?' : (c / (o.bytes / GiB)).toFixed(2));
    o.say(`| ${cells.join(' | ')} |`);
  }
  const ratio = fastestPeer / ours;
  o.say(`image-clone vs fastest peer: ${ratio.toFixed(2)}x faster (ratio of times ${(ours / fastestPeer).toFixed(3)})`);
  return { name: o.name, medians, ratio };
}
