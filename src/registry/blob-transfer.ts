/**
 * The byte-moving step of a copy: GET a blob from the source, verify its size and digest while it
 * streams, and PUT it into an upload session of the target, never holding it whole in memory.
 *
 * It runs in worker threads (BlobTransferPool), so that hashing and socket I/O of several blobs use
 * every core instead of the main thread alone; with zero workers it runs in the calling thread.
 * Authentication, retries and bookkeeping stay with the caller: this step gets ready-made URLs and
 * Authorization headers, and reports a RegistryError that can cross a thread boundary.
 */
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { RegistryError } from '../errors.ts';
import { failure } from './client.ts';
import { DigestVerifier } from './digest.ts';
import { Transport, type TransportOptions } from './transport.ts';

export interface BlobTransferSpec {
  readonly sourceUrl: string;
  readonly sourceAuthorization: string | undefined;
  /** The upload session's URL with `digest` set. */
  readonly uploadUrl: string;
  readonly uploadAuthorization: string | undefined;
  readonly digest: string;
  readonly size: number;
  /** Names the blob and image in errors. */
  readonly what: string;
}

export async function transferBlob(transport: Transport, spec: BlobTransferSpec): Promise<void> {
  const source = await transport.send({ method: 'GET', url: spec.sourceUrl, headers: { authorization: spec.sourceAuthorization }, what: `GET ${spec.what}` });
  if (source.status !== 200) throw await failure(source, `GET ${spec.what}`);
  const length = source.headers['content-length'];
  if (length !== undefined && Number(length) !== spec.size) {
    source.body.destroy();
    throw new RegistryError(`${spec.what}: the registry sent Content-Length ${length}, but the manifest declares ${spec.size} bytes`);
  }
  const verifier = new DigestVerifier(spec.digest, spec.size, spec.what);
  source.body.on('error', (error) => verifier.destroy(error));
  source.body.pipe(verifier);
  const what = `upload ${spec.what} (${spec.size} bytes)`;
  try {
    const upload = await transport.send({
      method: 'PUT',
      url: spec.uploadUrl,
      headers: { authorization: spec.uploadAuthorization, 'content-type': 'application/octet-stream', 'content-length': String(spec.size) },
      body: verifier,
      what,
    });
    if (upload.status !== 201) throw await failure(upload, what);
    await upload.body.dump().catch(() => undefined);
  } finally {
    source.body.destroy();
  }
}

/** What crosses the thread boundary in place of a RegistryError. */
interface SerializedError {
  readonly message: string;
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly retryAfterSeconds: number | undefined;
}

export type WorkerRequest = { id: number; spec: BlobTransferSpec };
export type WorkerReply = { id: number; error?: SerializedError };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof RegistryError) return { message: error.message, status: error.status, retryable: error.retryable, retryAfterSeconds: error.retryAfterSeconds };
  return { message: (error as Error)?.message ?? String(error), status: undefined, retryable: true, retryAfterSeconds: undefined };
}

function deserializeError(error: SerializedError): RegistryError {
  return new RegistryError(error.message, {
    ...(error.status === undefined ? {} : { status: error.status }),
    retryable: error.retryable,
    ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
  });
}

/** The default number of transfer threads: one per core, at most 4. */
export function defaultTransferThreads(): number {
  return Math.min(4, availableParallelism());
}

/**
 * Runs blob transfers on `threads` worker threads, each with its own Transport built from the same
 * options (so TLS trust and insecure registries apply there too). Each worker serves many
 * transfers at once; a new transfer goes to the least busy worker.
 */
export class BlobTransferPool {
  readonly #options: TransportOptions;
  readonly #threads: number;
  readonly #workers: Array<{ worker: Worker; busy: number }> = [];
  readonly #pending = new Map<number, { resolve: () => void; reject: (error: Error) => void; worker: Worker }>();
  #local: Transport | undefined;
  #nextId = 1;

  constructor(options: TransportOptions, threads = defaultTransferThreads()) {
    this.#options = options;
    this.#threads = threads;
  }

  run(spec: BlobTransferSpec): Promise<void> {
    if (this.#threads === 0) {
      this.#local ??= new Transport(this.#options);
      return transferBlob(this.#local, spec);
    }
    const slot = this.#pickWorker();
    const id = this.#nextId++;
    // A busy worker keeps the process alive; an idle one must not.
    if (slot.busy++ === 0) slot.worker.ref();
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker: slot.worker });
      slot.worker.postMessage({ id, spec } satisfies WorkerRequest);
    }).finally(() => {
      if (--slot.busy === 0) slot.worker.unref();
    });
  }

  #pickWorker(): { worker: Worker; busy: number } {
    if (this.#workers.length < this.#threads && this.#workers.every((w) => w.busy > 0)) {
      // Same extension as this module: .ts when run from source, .js when built.
      const worker = new Worker(new URL(`./blob-worker${extname(import.meta.filename)}`, import.meta.url), { workerData: this.#options });
      worker.unref();
      worker.on('message', (reply: WorkerReply) => {
        const pending = this.#pending.get(reply.id);
        if (!pending) return;
        this.#pending.delete(reply.id);
        if (reply.error) pending.reject(deserializeError(reply.error));
        else pending.resolve();
      });
      worker.on('error', (error) => this.#failWorker(worker, error));
      worker.on('exit', (code) => this.#failWorker(worker, new Error(`a blob transfer thread exited with code ${code}`)));
      const slot = { worker, busy: 0 };
      this.#workers.push(slot);
      return slot;
    }
    return this.#workers.reduce((least, w) => (w.busy < least.busy ? w : least));
  }

  #failWorker(worker: Worker, error: Error): void {
    const index = this.#workers.findIndex((w) => w.worker === worker);
    if (index >= 0) this.#workers.splice(index, 1);
    for (const [id, pending] of this.#pending) {
      if (pending.worker !== worker) continue;
      this.#pending.delete(id);
      pending.reject(new RegistryError(`blob transfer thread failed: ${error.message}`, { retryable: true }));
    }
  }

  async close(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((w) => w.worker.terminate()));
    await this.#local?.close();
  }
}
