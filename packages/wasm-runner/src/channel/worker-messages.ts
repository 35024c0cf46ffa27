import type { PluginErrorData } from '@corral/types'
import type { AbiName, ExtismLimits } from '../abi/guest-abi.js'
import type { WasiOptions } from '../worker/wasi.js'

/**
 * Sent to a spare worker as soon as it is spawned, with the worker's channel buffer; the worker
 * answers `warmed`. A worker thread's first message takes about a millisecond longer to arrive than
 * the next ones, unless the worker has already answered one (measured on Node 20): this exchange
 * moves that cost, and the buffer's transfer, out of the load that later takes the spare.
 */
export interface WorkerWarmUpMessage {
  type: 'warm-up'
  buffer: SharedArrayBuffer
}

/**
 * The one postMessage that makes a worker an instance: what to instantiate (its channel came with
 * the warm-up).
 */
export interface WorkerStartMessage {
  type: 'start'
  module: WebAssembly.Module
  abi: AbiName
  plugin: string
  maxOutputBytes: number
  memoryMb: number
  wasi: WasiOptions | undefined
  extism: ExtismLimits
}

/** What a worker sends back: warmed up; then instantiated, or why not. */
export type WorkerStatusMessage =
  | { type: 'warmed' }
  | { type: 'ready' }
  | { type: 'failed'; error: PluginErrorData & { discard: boolean } }
