import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PluginError } from '@corral/types'

/**
 * The `node_modules` folder holding the CLI's own `@corral/plugin-sdk`: where a plugin made by
 * `corral new` finds the SDK (AssemblyScript's `--path`, esbuild's `nodePaths`) without an install.
 */
export function sdkModulesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, 'node_modules')
    if (existsSync(path.join(candidate, '@corral', 'plugin-sdk', 'package.json'))) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) throw new PluginError('not_found', 'cannot find @corral/plugin-sdk beside the CLI')
    dir = parent
  }
}

/**
 * A file of the CLI's own `@corral/plugin-sdk`, by its path in the package: `c/corral.h`, which
 * `corral new` copies into a C plugin, or `go/build-plugin.sh`, which `corral build` runs on a Go one.
 */
export function sdkFile(relative: string): string {
  return path.join(sdkModulesDir(), '@corral', 'plugin-sdk', relative)
}
