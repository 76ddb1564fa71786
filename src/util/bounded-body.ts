/**
 * Reads a response body into memory only up to a limit: a manifest, a token or an API answer is
 * small, and a hostile or broken server must not make us buffer an endless body.
 */
export async function readBounded(body: AsyncIterable<Uint8Array> & { destroy(): unknown }, limit: number): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > limit) {
      abandonBody(body);
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

/**
 * Stops reading a body we will not use. Destroying an undici body emits an AbortError; without a
 * listener that would be an uncaught exception that takes the whole process down.
 */
export function abandonBody(body: { destroy(): unknown; on?(event: 'error', listener: () => void): unknown }): void {
  body.on?.('error', () => {});
  body.destroy();
}
