// The host imports of Corral ABI v1. AssemblyScript imports a declared function from the module
// named after its file: these are `corral.host_call`, `corral.log` and `corral.error`.

/** Calls a host API method; returns the packed (ptr << 32 | len) response, 0 if it could not be allocated. */
export declare function host_call(methodPtr: usize, methodLen: usize, argsPtr: usize, argsLen: usize): u64

/** Logs a message at a level (0 trace … 4 error). */
export declare function log(level: i32, ptr: usize, len: usize): void

/** Sets the current call's error. */
export declare function error(ptr: usize, len: usize): void
