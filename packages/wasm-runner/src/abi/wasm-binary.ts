import { PluginError } from '@corral/types'

/** A WebAssembly value type, as the ABI checks need it. */
export type ValueType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref'

/** A function signature: `(i32, i32) -> i64`. */
export interface FuncType {
  params: ValueType[]
  results: ValueType[]
}

/** A memory's size limits, in 64 KiB pages. */
export interface MemoryLimits {
  initial: number
  maximum: number | undefined
  shared: boolean
  memory64: boolean
}

export type ExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag'

/** One import of a module; `type` is set for functions. */
export interface ModuleImport {
  module: string
  name: string
  kind: ExternKind
  type?: FuncType
}

/** One export of a module; `type` is set for functions. */
export interface ModuleExport {
  name: string
  kind: ExternKind
  type?: FuncType
}

/** What the runner needs to know about a module before it compiles it. */
export interface ModuleInfo {
  imports: ModuleImport[]
  exports: ModuleExport[]
  /** Memories the module defines (not imported ones). */
  memories: MemoryLimits[]
}

/** Bytes in one WebAssembly page. */
export const wasmPageBytes = 65_536

const magic = [0x00, 0x61, 0x73, 0x6d]
const sectionId = { type: 1, import: 2, function: 3, memory: 5, export: 7 } as const
const externKinds: ExternKind[] = ['function', 'table', 'memory', 'global', 'tag']
const valueTypes: Record<number, ValueType> = {
  127: 'i32',
  126: 'i64',
  125: 'f32',
  124: 'f64',
  123: 'v128',
  112: 'funcref',
  111: 'externref',
}

function malformed(message: string): PluginError {
  return new PluginError('load_failed', `not a valid WebAssembly module: ${message}`)
}

/**
 * Reads just enough of a WebAssembly binary to check it against an ABI and to cap its memory:
 * the type, import, function, memory and export sections. Everything else is skipped unread;
 * the engine validates the whole module when it compiles it.
 */
class BinaryReader {
  offset = 0
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.offset >= this.bytes.length
  }

  byte(): number {
    const b = this.bytes[this.offset++]
    if (b === undefined) throw malformed('unexpected end of the module')
    return b
  }

  /** An unsigned LEB128 number (u32, or u64 for memory64 limits, which stay below 2^53 in practice). */
  uleb(): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      const b = this.byte()
      result += (b & 0x7f) * scale
      if ((b & 0x80) === 0) return result
      scale *= 128
    }
    throw malformed('a LEB128 number is too long')
  }

  name(): string {
    const length = this.uleb()
    const end = this.offset + length
    if (end > this.bytes.length) throw malformed('a name runs past the end of its section')
    const text = new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(this.offset, end))
    this.offset = end
    return text
  }

  valueType(): ValueType {
    const code = this.byte()
    const type = valueTypes[code]
    if (type === undefined) throw malformed(`unsupported value type 0x${code.toString(16)}`)
    return type
  }

  limits(): MemoryLimits {
    const flags = this.byte()
    if (flags > 0x07) throw malformed(`unknown limits flags 0x${flags.toString(16)}`)
    const initial = this.uleb()
    const maximum = flags & 0x01 ? this.uleb() : undefined
    return { initial, maximum, shared: (flags & 0x02) !== 0, memory64: (flags & 0x04) !== 0 }
  }
}

interface Section {
  id: number
  /** Offset of the section's id byte. */
  start: number
  /** Offset of the section's contents. */
  contentStart: number
  end: number
}

function readSections(bytes: Uint8Array): Section[] {
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b)) throw malformed('missing the \\0asm header')
  const version = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true)
  if (version !== 1) throw malformed(`binary format version ${version} (expected 1)`)
  const reader = new BinaryReader(bytes)
  reader.offset = 8
  const sections: Section[] = []
  while (!reader.done) {
    const start = reader.offset
    const id = reader.byte()
    const size = reader.uleb()
    const contentStart = reader.offset
    const end = contentStart + size
    if (end > bytes.length) throw malformed(`section ${id} runs past the end of the module`)
    sections.push({ id, start, contentStart, end })
    reader.offset = end
  }
  return sections
}

/**
 * Reads a module's imports, exports (with function signatures) and memories.
 * Fails with `load_failed` on bytes that are not a WebAssembly module.
 */
export function readModuleInfo(bytes: Uint8Array): ModuleInfo {
  const types: FuncType[] = []
  const functionTypes: number[] = []
  const info: ModuleInfo = { imports: [], exports: [], memories: [] }
  const rawExports: { name: string; kind: ExternKind; index: number }[] = []
  for (const section of readSections(bytes)) {
    const reader = new BinaryReader(bytes.subarray(0, section.end))
    reader.offset = section.contentStart
    switch (section.id) {
      case sectionId.type:
        for (let n = reader.uleb(); n > 0; n--) {
          const form = reader.byte()
          if (form !== 0x60) throw malformed(`unsupported type form 0x${form.toString(16)}`)
          const params = Array.from({ length: reader.uleb() }, () => reader.valueType())
          const results = Array.from({ length: reader.uleb() }, () => reader.valueType())
          types.push({ params, results })
        }
        break
      case sectionId.import:
        for (let n = reader.uleb(); n > 0; n--) {
          const module = reader.name()
          const name = reader.name()
          const kind = externKinds[reader.byte()]
          if (kind === undefined) throw malformed(`import ${module}.${name} has an unknown kind`)
          const imported: ModuleImport = { module, name, kind }
          if (kind === 'function') {
            const typeIndex = reader.uleb()
            functionTypes.push(typeIndex)
            imported.type = types[typeIndex]
          } else if (kind === 'table') {
            reader.valueType()
            reader.limits()
          } else if (kind === 'memory') {
            reader.limits()
          } else if (kind === 'global') {
            reader.valueType()
            reader.byte()
          } else {
            reader.byte()
            reader.uleb()
          }
          info.imports.push(imported)
        }
        break
      case sectionId.function:
        for (let n = reader.uleb(); n > 0; n--) functionTypes.push(reader.uleb())
        break
      case sectionId.memory:
        for (let n = reader.uleb(); n > 0; n--) info.memories.push(reader.limits())
        break
      case sectionId.export:
        for (let n = reader.uleb(); n > 0; n--) {
          const name = reader.name()
          const kind = externKinds[reader.byte()]
          if (kind === undefined) throw malformed(`export ${name} has an unknown kind`)
          rawExports.push({ name, kind, index: reader.uleb() })
        }
        break
    }
  }
  for (const { name, kind, index } of rawExports) {
    const exported: ModuleExport = { name, kind }
    if (kind === 'function') {
      const typeIndex = functionTypes[index]
      exported.type = typeIndex === undefined ? undefined : types[typeIndex]
    }
    info.exports.push(exported)
  }
  return info
}

/** `value` as an unsigned LEB128, as the binary format writes sizes, counts and indices. */
export function uleb(value: number): number[] {
  const out: number[] = []
  do {
    let b = value % 128
    value = Math.floor(value / 128)
    if (value > 0) b |= 0x80
    out.push(b)
  } while (value > 0)
  return out
}

/**
 * Returns the module with every memory it defines limited to `maxPages`: a declared maximum above
 * it is lowered, a missing one is set. The engine then refuses `memory.grow` past the cap inside
 * the guest, and the host's own memory never grows for it. Fails with `load_failed` when a memory
 * starts larger than the cap, or is shared or 64-bit (which the runner does not support).
 */
export function capModuleMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  const sections = readSections(bytes)
  const memory = sections.find((s) => s.id === sectionId.memory)
  if (memory === undefined) return bytes
  const reader = new BinaryReader(bytes.subarray(0, memory.end))
  reader.offset = memory.contentStart
  const count = reader.uleb()
  const content: number[] = [...uleb(count)]
  for (let i = 0; i < count; i++) {
    const limits = reader.limits()
    if (limits.shared || limits.memory64) {
      throw new PluginError('load_failed', 'shared and 64-bit memories are not supported')
    }
    if (limits.initial > maxPages) {
      throw new PluginError(
        'load_failed',
        `the module's memory starts at ${limits.initial} pages, above the granted ${maxPages} pages`,
      )
    }
    content.push(0x01, ...uleb(limits.initial), ...uleb(Math.min(limits.maximum ?? maxPages, maxPages)))
  }
  const header = [sectionId.memory, ...uleb(content.length)]
  const out = new Uint8Array(bytes.length - (memory.end - memory.start) + header.length + content.length)
  out.set(bytes.subarray(0, memory.start), 0)
  out.set(header, memory.start)
  out.set(content, memory.start + header.length)
  out.set(bytes.subarray(memory.end), memory.start + header.length + content.length)
  return out
}

/** `(i32, i32) -> i64` and the like, for messages. */
export function formatFuncType(type: FuncType | undefined): string {
  if (type === undefined) return '(unknown signature)'
  const results = type.results.length === 0 ? '()' : type.results.join(', ')
  return `(${type.params.join(', ')}) -> ${results}`
}

/** Whether `type` is exactly `params -> results`. */
export function isFuncType(type: FuncType | undefined, params: ValueType[], results: ValueType[]): boolean {
  return (
    type !== undefined &&
    type.params.length === params.length &&
    type.results.length === results.length &&
    type.params.every((p, i) => p === params[i]) &&
    type.results.every((r, i) => r === results[i])
  )
}
