/**
 * The byte-moving step of a copy: GET a blob from the source, verify its size and digest while it
 * streams, and PUT it into an upload session of the target, never holding it whole in memory.
 * Authentication, retries and bookkeeping stay with the caller: this step gets ready-made URLs and
 * Authorization headers.
 *
 * (Measured: running this on worker threads made a 200 MiB copy slower on 2 cores, 1.35 s against
 * 1.08 s wall and 1.4 s against 0.9 s CPU, because the threads compete with the registries for the
 * same cores; so it runs on the main thread.)
 */
import { RegistryError } from '../errors.ts';
import { failure } from './client.ts';
import { DigestVerifier } from './digest.ts';
import type { Transport } from './transport.ts';
import { abandonBody } from '../util/bounded-body.ts';

export interface BlobTransferSpec {
  readonly sourceUrl: string;
  readonly sourceAuthorization: string | undefined;
  /**
   * Opens the upload session (its URL with `digest` set), called only once the source has
   * answered 200: a GET that fails first leaves no session to abandon, and its retry opens none.
   */
  readonly startUpload: () => Promise<{ readonly url: string; readonly authorization: string | undefined }>;
  readonly digest: string;
  readonly size: number;
  /** Names the blob and image in errors. */
  readonly what: string;
  /** The blob's deadline, from its size: ends both the download and the upload with its reason (required: a blob outlasts a request's default). */
  readonly signal: AbortSignal;
}

export async function transferBlob(transport: Transport, spec: BlobTransferSpec): Promise<void> {
  const signal = { signal: spec.signal };
  const source = await transport.send({
    method: 'GET',
    url: spec.sourceUrl,
    headers: { authorization: spec.sourceAuthorization },
    what: `GET ${spec.what}`,
    ...signal,
  });
  if (source.status !== 200) throw await failure(source, `GET ${spec.what}`);
  const length = source.headers['content-length'];
  if (length !== undefined && Number(length) !== spec.size) {
    abandonBody(source.body);
    throw new RegistryError(`${spec.what}: the registry sent Content-Length ${length}, but the manifest declares ${spec.size} bytes`);
  }
  // Piped at once, so that an error of the body while the session opens reaches the verifier
  // (a listener added later would miss it, and the upload would wait forever); the pipe's
  // backpressure holds the body meanwhile.
  const verifier = new DigestVerifier(spec.digest, spec.size, spec.what);
  // Until the upload takes the verifier, its error must not be uncaught; the upload then sees it errored.
  verifier.on('error', () => {});
  source.body.on('error', (error) => verifier.destroy(error));
  source.body.pipe(verifier);
  const what = `upload ${spec.what} (${spec.size} bytes)`;
  try {
    const session = await spec.startUpload();
    const upload = await transport.send({
      method: 'PUT',
      url: session.url,
      headers: { authorization: session.authorization, 'content-type': 'application/octet-stream', 'content-length': String(spec.size) },
      body: verifier,
      what,
      ...signal,
    });
    if (upload.status !== 201) throw await failure(upload, what);
    await upload.body.dump().catch(() => undefined);
  } finally {
    abandonBody(source.body);
    verifier.destroy();
  }
}
