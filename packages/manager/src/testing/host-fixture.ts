/** A sandboxed host API over real backends and a real policy store, for the suites. */
import type { HostCallContext, Permission, RateLimits } from '@corral/types'
import { expect } from 'vitest'
import type { Backends } from '../backends/create-backends.js'
import { createPolicyGrantLookup } from '../host-api/grant-lookup.js'
import { createSandboxedHostApi, type SandboxedHostApiOptions } from '../host-api/sandboxed-host-api.js'
import { createSqlPolicyStore, type PolicyStore } from '../policy-store/policy-store.js'

/** A plugin of a test: what it asks for, which is also what its approved policy grants. */
export interface TestPlugin {
  name: string
  permissions: Permission[]
  rateLimits?: Partial<RateLimits>
  secretConfigKeys?: string[]
}

/** A host API with its policy store, and a short way to call it as a plugin. */
export interface TestHost {
  hostApi: ReturnType<typeof createSandboxedHostApi>
  policies: PolicyStore
  /** One host call as plugin `plugin` with token `tok-<plugin>` unless the context says otherwise. */
  call(plugin: string, method: string, args: unknown, context?: Partial<HostCallContext>): Promise<unknown>
}

/** Stores an approved policy for each plugin and builds the sandboxed host API over `backends`. */
export async function createTestHost(
  backends: Backends,
  plugins: TestPlugin[],
  options: Partial<SandboxedHostApiOptions> = {},
): Promise<TestHost> {
  const policies = createSqlPolicyStore(backends.database, { cacheMs: 0 })
  for (const plugin of plugins) {
    await policies.put({
      plugin: plugin.name,
      status: 'approved',
      // A policy lists access only for the types that have it.
      grants: plugin.permissions.map(({ access, ...rest }) =>
        access.length > 0 ? { ...rest, access } : rest,
      ),
      ...(plugin.rateLimits ? { rate_limits: plugin.rateLimits } : {}),
      ...(plugin.secretConfigKeys ? { secret_config_keys: plugin.secretConfigKeys } : {}),
    })
  }
  const requests = new Map(plugins.map((p) => [p.name, { permissions: p.permissions }]))
  const hostApi = createSandboxedHostApi({
    backends,
    grants: createPolicyGrantLookup({ policies, requestOf: (name) => requests.get(name) }),
    logger: { log() {} },
    ...options,
  })
  return {
    hostApi,
    policies,
    call: (plugin, method, args, context = {}) =>
      hostApi.forPlugin(plugin)(method, args, { plugin, token: `tok-${plugin}`, ...context }),
  }
}

/** Asserts that a host call is refused with `code`. */
export async function expectRefused(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ name: 'PluginError', code })
}
