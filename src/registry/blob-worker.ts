/** Entry point of a blob transfer thread (see BlobTransferPool in ./blob-transfer.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError, transferBlob, type WorkerReply, type WorkerRequest } from './blob-transfer.ts';
import { Transport, type TransportOptions } from './transport.ts';

const transport = new Transport(workerData as TransportOptions);
parentPort?.on('message', ({ id, spec }: WorkerRequest) => {
  transferBlob(transport, spec).then(
    () => parentPort?.postMessage({ id } satisfies WorkerReply),
    (error: unknown) => parentPort?.postMessage({ id, error: serializeError(error) } satisfies WorkerReply),
  );
});
