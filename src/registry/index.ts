/** Wires the registry layer: transport → authenticator → client (with the registries' pull quotas) → copy engine. */
import { Authenticator } from './auth.ts';
import { RegistryClient } from './client.ts';
import { CopyEngine, type CopyEngineOptions } from './copy.ts';
import { CredentialStore } from './credentials.ts';
import { PullQuotas, type RegistryRate } from './pull-quota.ts';
import { Transport, type TransportOptions } from './transport.ts';
import { DEFAULT_RETRY_POLICY } from '../util/retry.ts';

export interface RegistryStack {
  readonly transport: Transport;
  readonly client: RegistryClient;
  /** The same registries without any credentials: what a kubelet with none can pull. */
  readonly anonymous: RegistryClient;
  readonly engine: CopyEngine;
  /** Each registry's pull quota, as learned or set, shared by both clients. */
  readonly quotas: PullQuotas;
  close(): Promise<void>;
}

export interface RegistryStackOptions extends TransportOptions, CopyEngineOptions {
  /** Current credentials; a function so a reloaded auth file applies to the next request. */
  readonly credentials?: () => CredentialStore;
  /** --registry-rate: manifest GETs per period for registries that publish no quota headers. */
  readonly registryRates?: ReadonlyMap<string, RegistryRate>;
}

export function createRegistryStack(options: RegistryStackOptions = {}): RegistryStack {
  const transport = new Transport(options);
  const empty = CredentialStore.empty();
  const quotas = new PullQuotas({
    ...(options.registryRates ? { rates: options.registryRates } : {}),
    maxWaitMs: (options.retry ?? DEFAULT_RETRY_POLICY).maxRetryAfterSeconds * 1000,
  });
  const auth = new Authenticator(transport, options.credentials ?? (() => empty));
  const client = new RegistryClient(transport, auth, quotas);
  const engine = new CopyEngine(client, transport, options);
  const anonymous = new RegistryClient(transport, new Authenticator(transport, () => empty), quotas);
  return { transport, client, anonymous, engine, quotas, close: () => transport.close() };
}
