/**
 * The handoff ledger: the copier's records of finished backups, in a directory on the volume it
 * shares with the rewriter. A record is a JSON file named by a hash of its content (workload uid
 * and every source → backup@digest), so writing the same record again is harmless, and written
 * atomically (temp file, fsync, rename, fsync of the directory) so a reader never sees half of one.
 * Writes are asynchronous and concurrent writers share directory fsyncs (group commit), so a first
 * pass over 10,000 workloads does not block the event loop on 20,000 serial fsyncs.
 * The rewriter marks a record done by writing `<id>.done` beside it, or, while it cannot propose the
 * change, says why in `<id>.refused` (the copier turns that into an Event on the workload). The
 * copier also leaves what charts see of the cluster in `cluster-capabilities` (not a record: no
 * `.json`), for the rewriter's render proofs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { access, open, rename } from 'node:fs/promises';
import { join } from 'node:path';

import { scrub } from '../observability/secrets.ts';
import {
  parseCapabilities,
  parseRecord,
  pinnedBackup,
  RECORD_VERSION,
  type ClusterCapabilities,
  type HandoffImage,
  type HandoffRecord,
  type RecordedWorkload,
} from './schema.ts';

const CAPABILITIES_FILE = 'cluster-capabilities';
/** A record holds a workload's containers (a few hundred bytes each): far more than any real one. */
export const RECORD_MAX_BYTES = 1024 * 1024;

/** A file named like a record that is not one to read (not a regular file, too large): set aside. */
export class RejectedRecordError extends Error {
  override name = 'RejectedRecordError';
}

/** A refusal's reason is kept whole up to this size (Helm's errors can be long; a hostile chart's, endless). */
export const REFUSAL_MAX_BYTES = 8 * 1024;

/** The content-derived id: the same workload and images always give the same id. */
export function recordId(workload: RecordedWorkload, images: readonly HandoffImage[]): string {
  const hash = createHash('sha256');
  hash.update(`${workload.uid}\n${workload.kind}/${workload.namespace}/${workload.name}\n`);
  for (const image of [...images].sort((a, b) => a.container.localeCompare(b.container)))
    hash.update(`${image.container}|${image.init}|${image.source}|${pinnedBackup(image)}\n`);
  return `${workload.namespace}.${workload.kind.toLowerCase()}.${workload.name}.${hash.digest('hex').slice(0, 16)}`;
}

export class Ledger {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  /** Writes a record atomically; `written` is false when the same record was already there. */
  async write(record: Omit<HandoffRecord, 'id' | 'version' | 'createdAt'>): Promise<{ id: string; written: boolean }> {
    const id = recordId(record.workload, record.images);
    const file = join(this.dir, `${id}.json`);
    if (
      await access(file).then(
        () => true,
        () => false,
      )
    )
      return { id, written: false };
    const full: HandoffRecord = { version: RECORD_VERSION, id, createdAt: new Date().toISOString(), ...record };
    await this.#writeDurably(`${id}.json`, `${JSON.stringify(full, null, 2)}\n`);
    return { id, written: true };
  }

  /** Ids of the records not yet marked done, from file names alone (cheap enough for a metric). */
  pendingIds(): string[] {
    const names = new Set(readdirSync(this.dir));
    return [...names]
      .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
      .map((n) => n.slice(0, -'.json'.length))
      .filter((id) => !names.has(`${id}.done`));
  }

  /**
   * Records not yet marked done, oldest first; unreadable files are reported, not thrown. One that
   * is not a regular file or is too large is set aside (renamed `<name>.rejected`), so it is reported
   * once and never read again.
   */
  pending(onError: (file: string, error: Error) => void = () => {}): HandoffRecord[] {
    const records: HandoffRecord[] = [];
    for (const id of this.pendingIds()) {
      const name = `${id}.json`;
      try {
        records.push(this.read(id));
      } catch (error) {
        if (error instanceof RejectedRecordError) {
          try {
            renameSync(join(this.dir, name), join(this.dir, `${name}.rejected`));
          } catch {
            // gone meanwhile
          }
        }
        onError(name, error as Error);
      }
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * A record, checked against its schema (refused whole, with the reason, when it does not fit).
   * Read only from a regular file of at most RECORD_MAX_BYTES, opened without following a link and
   * without blocking (a FIFO named like a record would hold the rewriter for ever).
   */
  read(id: string): HandoffRecord {
    const file = join(this.dir, `${id}.json`);
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw new RejectedRecordError(`handoff record ${id} is a symbolic link, not a file`);
      throw error;
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new RejectedRecordError(`handoff record ${id} is not a regular file`);
      if (stat.size > RECORD_MAX_BYTES)
        throw new RejectedRecordError(`handoff record ${id} is ${stat.size} bytes, more than the ${RECORD_MAX_BYTES} a record may be`);
      return parseRecord(readFileSync(fd, 'utf8'), id);
    } finally {
      closeSync(fd);
    }
  }

  /** Marks a record done (atomically, durably): its change was pushed or found applied. */
  async markDone(id: string, note: string): Promise<void> {
    await this.#writeDurably(`${id}.done`, `${new Date().toISOString()} ${note}\n`);
    rmSync(join(this.dir, `${id}.refused`), { force: true });
  }

  /** Says why a pending record is not proposed (replacing the last reason); it stays pending. */
  async markRefused(id: string, reason: string): Promise<void> {
    const bounded = Buffer.from(scrub(reason)).subarray(0, REFUSAL_MAX_BYTES).toString('utf8');
    if (this.refusal(id) === bounded) return;
    await this.#writeDurably(`${id}.refused`, bounded);
  }

  /** Why a pending record is not proposed, as the rewriter last said it (undefined: it has not refused it). */
  refusal(id: string): string | undefined {
    try {
      return readFileSync(join(this.dir, `${id}.refused`), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Records what charts see of the cluster, when it changed. */
  async writeCapabilities(capabilities: ClusterCapabilities): Promise<void> {
    const text = `${JSON.stringify(capabilities)}\n`;
    const current = (() => {
      try {
        return readFileSync(join(this.dir, CAPABILITIES_FILE), 'utf8');
      } catch {
        return undefined;
      }
    })();
    if (current !== text) await this.#writeDurably(CAPABILITIES_FILE, text);
  }

  /** What the copier last saw of the cluster, or undefined (none written yet, or unreadable: said through `onError`). */
  capabilities(onError: (error: Error) => void = () => {}): ClusterCapabilities | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.dir, CAPABILITIES_FILE), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return parseCapabilities(text);
    } catch (error) {
      onError(error as Error);
      return undefined;
    }
  }

  /** A file of the ledger, written whole and durably: temp file, fsync, rename, fsync of the directory. */
  async #writeDurably(name: string, text: string): Promise<void> {
    const temp = join(this.dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    const handle = await open(temp, 'w', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(this.dir, name));
    await this.#syncDirectory();
  }

  /**
   * Removes records done for longer than `maxAgeMs` (the record, then its done mark, so a crash
   * in between leaves only a stray mark, removed next time), so the directory does not grow
   * forever. Pending records are never removed. If the copier writes a pruned record again, the
   * rewriter finds its change already applied. Returns how many records went.
   */
  pruneDone(maxAgeMs: number, now = Date.now()): number {
    const names = new Set(readdirSync(this.dir));
    let pruned = 0;
    for (const name of names) {
      if (!name.endsWith('.done') || name.startsWith('.')) continue;
      const mark = join(this.dir, name);
      let doneAt: number;
      try {
        doneAt = statSync(mark).mtimeMs;
      } catch {
        continue; // pruned meanwhile
      }
      if (now - doneAt < maxAgeMs) continue;
      const record = `${name.slice(0, -'.done'.length)}.json`;
      if (names.has(record)) {
        rmSync(join(this.dir, record), { force: true });
        pruned++;
      }
      rmSync(mark, { force: true });
    }
    return pruned;
  }

  /** Removes temp files a crash left behind (never complete records). */
  sweepTemporaries(): void {
    for (const name of readdirSync(this.dir)) if (name.startsWith('.') && name.endsWith('.tmp')) rmSync(join(this.dir, name), { force: true });
  }

  #syncing: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  /**
   * Makes every rename done so far durable. A sync already running may have started before our
   * rename, so we join the next one; all callers waiting meanwhile share it.
   */
  #syncDirectory(): Promise<void> {
    if (this.#next) return this.#next;
    if (!this.#syncing) {
      this.#syncing = this.#fsyncDirectory().finally(() => (this.#syncing = undefined));
      return this.#syncing;
    }
    this.#next = this.#syncing.then(() => {
      this.#next = undefined;
      return this.#syncDirectory();
    });
    return this.#next;
  }

  async #fsyncDirectory(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
