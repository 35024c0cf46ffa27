import { createGrpcRunner } from '@corral/grpc-runner'
import type { Logger, PluginRuntime, Runner } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import type { PluginManagerOptions } from './manager-api.js'

/**
 * The runners the manager uses: those given, and for each runtime not given one it creates (and
 * closes with itself) with the host's version, logger, restart options and plugin user.
 */
export function resolveRunners(
  options: PluginManagerOptions,
  logger: Logger,
): Record<PluginRuntime, Runner> & { owned: Runner[] } {
  const owned: Runner[] = []
  const own = <R extends Runner>(runner: R): R => {
    owned.push(runner)
    return runner
  }
  const { runners: given, restart, hostVersion, pluginUser } = options
  return {
    wasm: given?.wasm ?? own(createWasmRunner({ logger, restart })),
    grpc: given?.grpc ?? own(createGrpcRunner({ hostVersion, logger, restart, pluginUser })),
    owned,
  }
}
