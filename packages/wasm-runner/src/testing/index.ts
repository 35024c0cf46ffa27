/**
 * Test support for Corral's own tests (the `./testing` subpath): WASM plugins written in WAT,
 * compiled at test time with wabt, and a clock the tests move by hand. Not for plugin or host authors.
 */
export * from './extism-plugins.js'
export * from './manual-clock.js'
export * from './plugin-state.js'
export * from './wat-plugin.js'
