import { PluginError } from '@corral/types'
import type { AbiCheck, CheckedModule, LifecycleFunction } from '../guest-abi.js'
import { wasiFunctionNames, wasiModuleName } from '../wasi-names.js'
import type { FuncType, ModuleInfo } from '../wasm-binary.js'
import { formatFuncType, isFuncType } from '../wasm-binary.js'
import type { HostFunctionImport } from './host-function-call.js'
import type { ExtismSignature } from './import-object.js'
import {
  corralHostCallSignature,
  extismEnvModule,
  extismEnvSignatures,
  extismUserModule,
} from './import-object.js'

/** Start functions of language runtimes, run once by the instance and never by `Plugin.call`. */
const startFunctions: ReadonlySet<string> = new Set(['_initialize', '_start', '__wasm_call_ctors', 'hs_init'])

/** Exports `Plugin.call` never reaches: start functions, and names of the Corral lifecycle. */
function isReservedExport(name: string): boolean {
  return startFunctions.has(name) || name.startsWith('corral_')
}

function matches(type: FuncType | undefined, [params, results]: ExtismSignature): boolean {
  return isFuncType(type, [...params], [...results])
}

function describe([params, results]: ExtismSignature): string {
  return formatFuncType({ params: [...params], results: [...results] })
}

/**
 * The Extism ABI, host side: a module that imports from `extism:host/env` is an Extism plugin. Its
 * imports must be kernel functions with Extism's signatures, `extism:host/user.corral_host_call`,
 * or WASI preview 1; every export `() -> i32` (or `() -> ()`) is callable. Config reaches it
 * through `corral_init`, which the Extism guest turns into what `config_get` reads.
 */
export const extismAbiCheck: AbiCheck = {
  name: 'extism',

  recognizes(info: ModuleInfo): boolean {
    return info.imports.some((i) => i.module === extismEnvModule)
  },

  check(info: ModuleInfo, hostFunctions: ReadonlySet<string> = new Set()): CheckedModule {
    const problems: string[] = []
    let usesWasi = false
    const declared: HostFunctionImport[] = []
    for (const imp of info.imports) {
      const where = `${imp.module}.${imp.name}`
      const signature =
        imp.module === extismEnvModule
          ? extismEnvSignatures[imp.name]
          : imp.module === extismUserModule && imp.name === 'corral_host_call'
            ? corralHostCallSignature
            : undefined
      if (signature !== undefined) {
        if (imp.kind !== 'function' || !matches(imp.type, signature)) {
          problems.push(`import ${where} must be ${describe(signature)}, not ${formatFuncType(imp.type)}`)
        }
      } else if (
        imp.module === wasiModuleName &&
        imp.kind === 'function' &&
        wasiFunctionNames.has(imp.name)
      ) {
        usesWasi = true
      } else if (hostFunctions.has(`${imp.module}.${imp.name}`) && imp.kind === 'function' && imp.type) {
        declared.push({
          module: imp.module,
          name: imp.name,
          params: imp.type.params,
          results: imp.type.results,
        })
      } else {
        problems.push(`unknown import ${where}`)
      }
    }
    if (problems.length > 0) {
      throw new PluginError('load_failed', `not a valid Extism plugin: ${problems.join('; ')}`)
    }
    const callable = new Set<string>()
    for (const exp of info.exports) {
      if (exp.kind !== 'function' || isReservedExport(exp.name)) continue
      if (isFuncType(exp.type, [], ['i32']) || isFuncType(exp.type, [], [])) callable.add(exp.name)
    }
    const lifecycle = new Set<LifecycleFunction>(['corral_init'])
    return { abi: 'extism', callable, lifecycle, usesWasi, hostFunctions: declared }
  },
}
