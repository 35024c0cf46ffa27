import type { PluginErrorData } from '@corral/types'
import type { AbiName } from './guest-abi.js'
import type { WasiOptions } from './wasi.js'

/** The one postMessage the host sends an instance worker: what to instantiate, and its channel. */
export interface WorkerStartMessage {
  module: WebAssembly.Module
  abi: AbiName
  plugin: string
  buffer: SharedArrayBuffer
  maxOutputBytes: number
  memoryMb: number
  wasi: WasiOptions | undefined
}

/** The one postMessage an instance worker sends back: instantiated, or why not. */
export type WorkerStatusMessage =
  | { type: 'ready' }
  | { type: 'failed'; error: PluginErrorData & { discard: boolean } }
