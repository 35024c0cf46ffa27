import type { PluginErrorCode } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { createWasiImports } from '../../worker/wasi.js'
import type { GuestFactory, GuestInstance, GuestOptions } from '../guest-abi.js'
import { GuestCallError, memoryCapFailure } from '../guest-abi.js'
import { wasiModuleName } from '../wasi-names.js'
import { ExtismInstance } from './extism-instance.js'
import type { SyncHostCall } from './kernel.js'
import { remoteVars } from './var-store.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Failures after which an instance's state is suspect: it is discarded and replaced. */
const discarding: ReadonlySet<PluginErrorCode> = new Set(['plugin_trap', 'internal'])

function guestCallError(error: unknown, code: PluginErrorCode): GuestCallError {
  if (error instanceof GuestCallError) return error
  const failure = isPluginError(error) ? error : PluginError.from(error, code)
  return new GuestCallError(failure.code, failure.rawMessage, discarding.has(failure.code))
}

/**
 * The Extism ABI, guest side (inside the worker): an {@link ExtismInstance} whose kernel
 * reaches the host over the worker's bridge. `corral_init` hands the kernel the plugin's config;
 * every other call runs the export with the call's bytes as its input and returns its output as it
 * is, bounded by the grant's output limit (`Plugin.call`'s JSON is the host's business, see
 * `call-data.ts`).
 */
export const createExtismGuest: GuestFactory = async (options: GuestOptions): Promise<GuestInstance> => {
  const { bridge, maxOutputBytes } = options
  const hostCall: SyncHostCall = (method, args) => {
    const response = JSON.parse(
      decoder.decode(bridge.hostCall(method, encoder.encode(JSON.stringify(args)))),
    ) as {
      ok?: unknown
      error?: { code: PluginErrorCode; message: string }
    }
    if (response.error !== undefined) throw new PluginError(response.error.code, response.error.message)
    return response.ok
  }
  let memory: WebAssembly.Memory | undefined
  const otherImports: WebAssembly.Imports = {}
  if (options.wasi !== undefined) {
    otherImports[wasiModuleName] = createWasiImports(
      options.wasi,
      () => {
        if (memory === undefined)
          throw new GuestCallError('plugin_trap', 'WASI needs an exported memory', true)
        return memory
      },
      (stream, text) => bridge.log(stream === 1 ? 2 : 3, text.replace(/\n$/, '')),
    )
  }
  let guest: ExtismInstance
  try {
    guest = ExtismInstance.create({
      module: options.module,
      hostCall,
      vars: remoteVars(hostCall),
      // The kernel's memory is held to max_pages and the grant's limit, beside the guest's own (capped in the module).
      maxKernelBytes: options.extism.maxKernelBytes,
      maxHttpResponseBytes: options.extism.maxHttpResponseBytes,
      hostFunctions: options.extism.hostFunctions ?? [],
      otherImports,
      onInstance: (instance) => {
        const exported = instance.exports.memory
        if (exported instanceof WebAssembly.Memory) memory = exported
      },
    })
  } catch (error) {
    throw guestCallError(error, 'load_failed')
  }
  const cap = { memory, startBytes: memory?.buffer.byteLength ?? 0, memoryMb: options.memoryMb }

  return {
    call(fn: string, input: Uint8Array): Uint8Array {
      if (fn === 'corral_init') {
        const { config } = JSON.parse(decoder.decode(input)) as { config?: Record<string, unknown> }
        guest.init(config ?? {})
        return new Uint8Array(0)
      }
      let output: Uint8Array
      try {
        output = guest.call(fn, input)
      } catch (error) {
        throw memoryCapFailure(error, fn, cap) ?? guestCallError(error, 'plugin_trap')
      }
      if (output.length > maxOutputBytes) {
        throw new GuestCallError(
          'resource_exhausted',
          `${fn} returned ${output.length} bytes, above the limit of ${maxOutputBytes}`,
          false,
        )
      }
      return output
    },
  }
}
