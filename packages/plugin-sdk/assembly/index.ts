// @corral/plugin-sdk for AssemblyScript: the guest side of Corral ABI v1 (see ABI.md).
// A plugin's entry file re-exports the ABI functions and exports its own functions through `handle`:
//
//   export { corral_abi_version, corral_alloc, corral_init } from '@corral/plugin-sdk/assembly'
//   export function greet(ptr: usize, len: usize): u64 {
//     return handle(ptr, len, (input: JsonValue): JsonValue => {
//       const args = new Arguments(input)
//       const name = args.getString('name')
//       return args.ok ? JsonValue.str('Hello, ' + name) : args.fail()
//     })
//   }
export { Arguments } from './arguments'
export { decodeBase64, encodeBase64 } from './base64'
export {
  cache,
  db,
  email,
  events,
  HostError,
  HostResult,
  hostCall,
  hostConfig,
  hostLog,
  http,
  i18n,
  plugins,
} from './host'
export { JsonKind, JsonValue, quote } from './json'
export {
  config,
  corral_abi_version,
  corral_alloc,
  corral_init,
  fail,
  handle,
  logMessage,
  takeInput,
} from './plugin'
