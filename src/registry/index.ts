/** Wires the registry layer: transport → authenticator → client → copy engine. */
import { Authenticator } from './auth.ts';
import { RegistryClient } from './client.ts';
import { CopyEngine, type CopyEngineOptions } from './copy.ts';
import { CredentialStore } from './credentials.ts';
import { Transport, type TransportOptions } from './transport.ts';

export interface RegistryStack {
  readonly transport: Transport;
  readonly client: RegistryClient;
  /** The same registries without any credentials: what a kubelet with none can pull. */
  readonly anonymous: RegistryClient;
  readonly engine: CopyEngine;
  close(): Promise<void>;
}

export interface RegistryStackOptions extends TransportOptions, CopyEngineOptions {
  /** Current credentials; a function so a reloaded auth file applies to the next request. */
  readonly credentials?: () => CredentialStore;
}

export function createRegistryStack(options: RegistryStackOptions = {}): RegistryStack {
  const transport = new Transport(options);
  const empty = CredentialStore.empty();
  const auth = new Authenticator(transport, options.credentials ?? (() => empty));
  const client = new RegistryClient(transport, auth);
  const engine = new CopyEngine(client, transport, options);
  const anonymous = new RegistryClient(transport, new Authenticator(transport, () => empty));
  return { transport, client, anonymous, engine, close: () => transport.close() };
}
