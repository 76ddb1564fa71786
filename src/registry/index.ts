/** Wires the registry layer: transport → authenticator → client → copy engine. */
import { Authenticator } from './auth.ts';
import { BlobTransferPool, defaultTransferThreads } from './blob-transfer.ts';
import { RegistryClient } from './client.ts';
import { CopyEngine, type CopyEngineOptions } from './copy.ts';
import { CredentialStore } from './credentials.ts';
import { Transport, transportOptionsOf, type TransportOptions } from './transport.ts';

export interface RegistryStack {
  readonly transport: Transport;
  readonly client: RegistryClient;
  readonly engine: CopyEngine;
  close(): Promise<void>;
}

export interface RegistryStackOptions extends TransportOptions, CopyEngineOptions {
  /** Current credentials; a function so a reloaded auth file applies to the next request. */
  readonly credentials?: () => CredentialStore;
  /** Worker threads that move blob bytes; 0 moves them on the calling thread. */
  readonly transferThreads?: number;
}

export function createRegistryStack(options: RegistryStackOptions = {}): RegistryStack {
  const transport = new Transport(options);
  const empty = CredentialStore.empty();
  const auth = new Authenticator(transport, options.credentials ?? (() => empty));
  const client = new RegistryClient(transport, auth);
  const pool = new BlobTransferPool(
    transportOptionsOf(options),
    options.transferThreads ?? defaultTransferThreads(),
  );
  const engine = new CopyEngine(client, pool, options);
  return { transport, client, engine, close: async () => void (await Promise.all([pool.close(), transport.close()])) };
}
