import { PluginError } from '@corral/types'
import type { AbiCheck, CheckedModule, LifecycleFunction } from '../guest-abi.js'
import { lifecycleFunctions } from '../guest-abi.js'
import { wasiFunctionNames, wasiModuleName } from '../wasi-names.js'
import type { FuncType, ModuleInfo, ValueType } from '../wasm-binary.js'
import { formatFuncType, isFuncType } from '../wasm-binary.js'

/** The Corral ABI version this runner implements (ABI.md). */
export const corralAbiVersion = 1

/** The import module of the Corral host functions. */
export const corralImportModule = 'corral'

type Signature = [params: ValueType[], results: ValueType[]]

const callSignature: Signature = [['i32', 'i32'], ['i64']]

/** The host imports of ABI v1 and their signatures. */
const hostImports: Record<string, Signature> = {
  host_call: [['i32', 'i32', 'i32', 'i32'], ['i64']],
  log: [['i32', 'i32', 'i32'], []],
  error: [['i32', 'i32'], []],
}

/** The module of AssemblyScript's `abort`, which the host implements. */
export const abortImportModule = 'env'

/** `abort(message, fileName, line, column)`: AssemblyScript's, pointers to its strings. */
const abortSignature: Signature = [['i32', 'i32', 'i32', 'i32'], []]

/** Exports with a fixed meaning, and their signatures. */
const requiredExports: Record<string, Signature> = {
  corral_abi_version: [[], ['i32']],
  corral_alloc: [['i32'], ['i32']],
}
const optionalExports: Record<string, Signature> = {
  corral_free: [['i32', 'i32'], []],
  _initialize: [[], []],
  ...Object.fromEntries(lifecycleFunctions.map((name) => [name, callSignature])),
}

/** Export names `Plugin.call` never reaches: the ABI's own, and WASI's `_start`. */
export function isReservedExport(name: string): boolean {
  return name.startsWith('corral_') || name === '_initialize' || name === '_start' || name === 'memory'
}

function matches(type: FuncType | undefined, [params, results]: Signature): boolean {
  return isFuncType(type, params, results)
}

/**
 * Corral ABI v1, host side: a module is a Corral plugin when it exports `corral_abi_version`;
 * its imports must all be `corral.*` functions of the right signature, AssemblyScript's `env.abort`
 * or WASI preview 1 functions;
 * it must export `memory`, `corral_abi_version` and `corral_alloc`. The version itself is read
 * once the module is instantiated.
 */
export const corralAbiCheck: AbiCheck = {
  name: 'corral',

  recognizes(info) {
    return info.exports.some((e) => e.name === 'corral_abi_version')
  },

  check(info: ModuleInfo): CheckedModule {
    const problems: string[] = []
    let usesWasi = false
    for (const imp of info.imports) {
      const where = `${imp.module}.${imp.name}`
      if (imp.module === corralImportModule) {
        const signature = hostImports[imp.name]
        if (signature === undefined) problems.push(`unknown import ${where}`)
        else if (imp.kind !== 'function' || !matches(imp.type, signature)) {
          problems.push(
            `import ${where} must be ${formatFuncType({ params: signature[0], results: signature[1] })}, not ${formatFuncType(imp.type)}`,
          )
        }
      } else if (imp.module === abortImportModule && imp.name === 'abort') {
        if (imp.kind !== 'function' || !matches(imp.type, abortSignature)) {
          problems.push(
            `import ${where} must be ${formatFuncType({ params: abortSignature[0], results: [] })}`,
          )
        }
      } else if (
        imp.module === wasiModuleName &&
        imp.kind === 'function' &&
        wasiFunctionNames.has(imp.name)
      ) {
        usesWasi = true
      } else {
        problems.push(`unknown import ${where}`)
      }
    }
    const exports = new Map(info.exports.map((e) => [e.name, e]))
    if (exports.get('memory')?.kind !== 'memory') problems.push('missing export memory')
    for (const [name, signature] of Object.entries(requiredExports)) {
      const exp = exports.get(name)
      if (exp === undefined || exp.kind !== 'function') problems.push(`missing export ${name}`)
      else if (!matches(exp.type, signature)) {
        problems.push(
          `export ${name} must be ${formatFuncType({ params: signature[0], results: signature[1] })}`,
        )
      }
    }
    for (const [name, signature] of Object.entries(optionalExports)) {
      const exp = exports.get(name)
      if (exp !== undefined && (exp.kind !== 'function' || !matches(exp.type, signature))) {
        problems.push(
          `export ${name} must be ${formatFuncType({ params: signature[0], results: signature[1] })}`,
        )
      }
    }
    if (problems.length > 0) {
      throw new PluginError('load_failed', `not a valid Corral ABI v1 module: ${problems.join('; ')}`)
    }
    const callable = new Set<string>()
    const lifecycle = new Set<LifecycleFunction>()
    for (const exp of info.exports) {
      if (exp.kind !== 'function' || !matches(exp.type, callSignature)) continue
      if ((lifecycleFunctions as readonly string[]).includes(exp.name))
        lifecycle.add(exp.name as LifecycleFunction)
      else if (!isReservedExport(exp.name)) callable.add(exp.name)
    }
    return { abi: 'corral', callable, lifecycle, usesWasi }
  },
}
