import wabtInit from 'wabt'

/** Compiles WebAssembly text to a module's bytes (the bench's plugins are written in WAT). */
export async function compileWat(source: string): Promise<Uint8Array> {
  const wabt = await wabtInit()
  const module = wabt.parseWat('plugin.wat', source)
  try {
    return new Uint8Array(module.toBinary({}).buffer)
  } finally {
    module.destroy()
  }
}
