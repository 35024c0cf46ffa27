// The user host functions the plugin imports, declared as Extism's AssemblyScript PDK documents:
// `@external` names the module and the function. AssemblyScript imports only those a module calls.
// (Biome cannot parse a decorator on a function: this file is left out of its checks.)

/** Corral's host API, which Corral offers every Extism plugin: method and JSON args in, JSON answer out. */
@external('extism:host/user', 'corral_host_call')
export declare function corral_host_call(method: u64, args: u64): u64

/** A host function of the host's own: a handle to the input in, a handle to its answer out. */
@external('extism:host/user', 'hello')
export declare function hello(input: u64): u64
