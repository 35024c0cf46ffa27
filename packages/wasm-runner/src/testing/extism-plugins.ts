/**
 * Test support: Extism-ABI plugins written in WAT, compiled from source with wabt when a test runs.
 * They use only `extism:host/env` (and `extism:host/user.corral_host_call`), as a plugin built with
 * an Extism PDK does.
 */
import wabtInit from 'wabt'

type Wabt = Awaited<ReturnType<typeof wabtInit>>
let wabt: Promise<Wabt> | undefined

/** Compiles WAT text to a module binary. */
export async function compileWat(wat: string): Promise<Uint8Array<ArrayBuffer>> {
  wabt ??= wabtInit()
  const module = (await wabt).parseWat('plugin.wat', wat, { bulk_memory: true })
  try {
    return new Uint8Array(module.toBinary({}).buffer)
  } finally {
    module.destroy()
  }
}

/** A string constant placed in a data segment: `at` and `len` for WAT expressions. */
interface StringConstant {
  at: number
  len: number
}

/** Builds the WAT of one plugin: `body` declares exports and gets string constants from `str`. */
function plugin(
  body: (str: (text: string) => StringConstant) => string,
  memory = '(memory (export "memory") 40)',
) {
  const segments: string[] = []
  let next = 0x400
  const str = (text: string): StringConstant => {
    const bytes = new TextEncoder().encode(text)
    const constant = { at: next, len: bytes.byteLength }
    segments.push(
      `(data (i32.const ${next}) "${[...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('')}")`,
    )
    next += bytes.byteLength
    return constant
  }
  const exports = body(str)
  return `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "length_unsafe" (func $length_unsafe (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "error_get" (func $error_get (result i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $http_status_code (result i32)))
  (import "extism:host/env" "http_headers" (func $http_headers (result i64)))
  (import "extism:host/env" "log_trace" (func $log_trace (param i64)))
  (import "extism:host/env" "log_debug" (func $log_debug (param i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "log_warn" (func $log_warn (param i64)))
  (import "extism:host/env" "log_error" (func $log_error (param i64)))
  (import "extism:host/env" "get_log_level" (func $get_log_level (result i32)))
  (import "extism:host/user" "corral_host_call" (func $corral_host_call (param i64 i64) (result i64)))
  ${memory}
  ${segments.join('\n  ')}

  ;; Copies the input to guest memory at $dst; returns its length.
  (func $input_to_mem (param $dst i32) (result i32)
    (local $n i32) (local $i i32)
    (local.set $n (i32.wrap_i64 (call $input_length)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i)) (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $n))

  ;; Copies guest memory [$ptr, $ptr + $len) into a new kernel block; returns its handle.
  (func $mem_to_block (param $ptr i32) (param $len i32) (result i64)
    (local $h i64) (local $i i32)
    (local.set $h (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $h))

  ;; Copies kernel block $h to guest memory at $dst; returns its length.
  (func $block_to_mem (param $h i64) (param $dst i32) (result i32)
    (local $n i32) (local $i i32)
    (local.set $n (i32.wrap_i64 (call $length (local.get $h))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i)) (call $load_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $n))

  ;; Sets the output to a copy of guest memory [$ptr, $ptr + $len).
  (func $output_mem (param $ptr i32) (param $len i32)
    (call $output_set (call $mem_to_block (local.get $ptr) (local.get $len)) (i64.extend_i32_u (local.get $len))))

  ;; Sets the output to kernel block $h, whole.
  (func $output_block (param $h i64)
    (if (i64.ne (local.get $h) (i64.const 0)) (then (call $output_set (local.get $h) (call $length (local.get $h))))))

  ;; Writes $n in decimal at $dst; returns the number of digits.
  (func $utoa (param $n i64) (param $dst i32) (result i32)
    (local $len i32) (local $t i64) (local $i i32)
    (local.set $t (local.get $n))
    (loop $count
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $t (i64.div_u (local.get $t) (i64.const 10)))
      (br_if $count (i64.ne (local.get $t) (i64.const 0))))
    (local.set $i (local.get $len))
    (local.set $t (local.get $n))
    (loop $write
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i)) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $t) (i64.const 10)))))
      (local.set $t (i64.div_u (local.get $t) (i64.const 10)))
      (br_if $write (i32.ne (local.get $i) (i32.const 0))))
    (local.get $len))

  ;; Sets the output to $n in decimal.
  (func $output_number (param $n i64)
    (call $output_mem (i32.const 0x100) (call $utoa (local.get $n) (i32.const 0x100))))

  ${exports}
)`
}

/** The `echo` export: the input, copied eight bytes at a time, as the output. */
const echoExport = `(func (export "echo") (result i32)
    (local $n i64) (local $h i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $h (call $alloc (local.get $n)))
    (block $done (loop $next
      (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
      (call $store_u64 (i64.add (local.get $h) (local.get $i)) (call $input_load_u64 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $next)))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $h) (local.get $i)) (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (call $output_set (local.get $h) (local.get $n))
    (i32.const 0))`

/**
 * A plugin with only `echo`, importing only the kernel functions it uses: any Extism runtime runs
 * it, Extism's own JS SDK too (which has no `corral_host_call` to give).
 */
export const extismEchoWat = `(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  ${echoExport})`

/**
 * A plugin with one export per behaviour the tests check. Guest memory: constants from 0x400,
 * scratch from 0x1000.
 */
export const behaviourPluginWat = plugin((str) => {
  const countPrefix = str('{"count":')
  const callsKey = str('calls')
  const blobKey = str('blob')
  const failure = str('something went wrong')
  const getPrefix = str('{"method":"get","url":"')
  const postPrefix = str('{"method":"POST","url":"')
  const jsonEnd = str('"}')
  const urlKey = str('url')
  const cacheGet = str('cache.get')
  const varSetMethod = str('extism.var_set')
  return `
  ;; count-vowels: {"count": N} for the input text.
  (func (export "count_vowels") (result i32)
    (local $n i32) (local $i i32) (local $c i32) (local $count i64) (local $len i32)
    (local.set $n (call $input_to_mem (i32.const 0x1000)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.or (i32.load8_u (i32.add (i32.const 0x1000) (local.get $i))) (i32.const 0x20)))
      (if (i32.or
            (i32.or (i32.eq (local.get $c) (i32.const 97)) (i32.eq (local.get $c) (i32.const 101)))
            (i32.or (i32.or (i32.eq (local.get $c) (i32.const 105)) (i32.eq (local.get $c) (i32.const 111)))
                    (i32.eq (local.get $c) (i32.const 117))))
        (then (local.set $count (i64.add (local.get $count) (i64.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (memory.copy (i32.const 0x800) (i32.const ${countPrefix.at}) (i32.const ${countPrefix.len}))
    (local.set $len (call $utoa (local.get $count) (i32.const ${0x800 + countPrefix.len})))
    (i32.store8 (i32.add (i32.const ${0x800 + countPrefix.len}) (local.get $len)) (i32.const 125))
    (call $output_mem (i32.const 0x800) (i32.add (local.get $len) (i32.const ${countPrefix.len + 1})))
    (i32.const 0))

  ${echoExport}

  ;; The config value named by the input; no output when there is none.
  (func (export "get_config") (result i32)
    (local $n i32)
    (local.set $n (call $input_to_mem (i32.const 0x1000)))
    (call $output_block (call $config_get (call $mem_to_block (i32.const 0x1000) (local.get $n))))
    (i32.const 0))

  ;; As get_config, but frees the key afterwards although config_get consumed it, as some PDKs
  ;; (Haskell's) do: the value must survive.
  (func (export "get_config_freeing_key") (result i32)
    (local $key i64) (local $value i64)
    (local.set $key (call $mem_to_block (i32.const 0x1000) (call $input_to_mem (i32.const 0x1000))))
    (local.set $value (call $config_get (local.get $key)))
    (call $free (local.get $key))
    (call $output_block (local.get $value))
    (i32.const 0))

  ;; Increments the var "calls" (a u64) and outputs its new value.
  (func (export "count_calls") (result i32)
    (local $h i64) (local $count i64) (local $v i64)
    (local.set $h (call $var_get (call $mem_to_block (i32.const ${callsKey.at}) (i32.const ${callsKey.len}))))
    (if (i64.ne (local.get $h) (i64.const 0)) (then (local.set $count (call $load_u64 (local.get $h)))))
    (local.set $count (i64.add (local.get $count) (i64.const 1)))
    (local.set $v (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $v) (local.get $count))
    (call $var_set (call $mem_to_block (i32.const ${callsKey.at}) (i32.const ${callsKey.len})) (local.get $v))
    (call $output_number (local.get $count))
    (i32.const 0))

  ;; Stores the input as the var "blob".
  (func (export "store_blob") (result i32)
    (local $n i32)
    (local.set $n (call $input_to_mem (i32.const 0x1000)))
    (call $var_set
      (call $mem_to_block (i32.const ${blobKey.at}) (i32.const ${blobKey.len}))
      (call $mem_to_block (i32.const 0x1000) (local.get $n)))
    (i32.const 0))

  ;; Deletes the var "blob".
  (func (export "delete_blob") (result i32)
    (call $var_set (call $mem_to_block (i32.const ${blobKey.at}) (i32.const ${blobKey.len})) (i64.const 0))
    (i32.const 0))

  ;; Deletes the var "blob" 1000 times over: a flood of var_set.
  (func (export "flood_vars") (result i32)
    (local $i i32)
    (loop $again
      (call $var_set (call $mem_to_block (i32.const ${blobKey.at}) (i32.const ${blobKey.len})) (i64.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1000))))
    (i32.const 0))

  ;; The var "blob", or no output.
  (func (export "get_blob") (result i32)
    (call $output_block (call $var_get (call $mem_to_block (i32.const ${blobKey.at}) (i32.const ${blobKey.len}))))
    (i32.const 0))

  ;; Sets an error message and returns 1.
  (func (export "fail") (result i32)
    (call $error_set (call $mem_to_block (i32.const ${failure.at}) (i32.const ${failure.len})))
    (i32.const 1))

  ;; Sets an error message but returns 0: the error alone fails the call.
  (func (export "fail_quietly") (result i32)
    (call $error_set (call $mem_to_block (i32.const ${failure.at}) (i32.const ${failure.len})))
    (i32.const 0))

  ;; Returns 7 without an error.
  (func (export "exit_code") (result i32) (i32.const 7))

  ;; An export without a result, which Extism accepts as success.
  (func (export "no_result") (call $output_number (i64.const 42)))

  (func (export "trap") (result i32) unreachable)

  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))

  ;; Grows guest memory 16 pages at a time until it cannot; outputs the final page count.
  (func (export "grow_memory") (result i32)
    (block $done (loop $next
      (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
      (br $next)))
    (call $output_number (i64.extend_i32_u (memory.size)))
    (i32.const 0))

  ;; The guest memory's size in pages.
  (func (export "memory_pages") (result i32)
    (call $output_number (i64.extend_i32_u (memory.size)))
    (i32.const 0))

  ;; Allocates 1 MiB kernel blocks until alloc returns 0; outputs how many it got.
  (func (export "alloc_bomb") (result i32)
    (local $count i64)
    (block $done (loop $next
      (br_if $done (i64.eqz (call $alloc (i64.const 1048576))))
      (local.set $count (i64.add (local.get $count) (i64.const 1)))
      (br $next)))
    (call $output_number (local.get $count))
    (i32.const 0))

  ;; Probes outside every range: the sum of what comes back must be 0, and nothing traps.
  (func (export "probe") (result i32)
    (local $sum i64) (local $h i64) (local $n i64)
    (local.set $n (call $input_length))
    (local.set $h (call $alloc (i64.const 4)))
    (call $store_u8 (i64.const 0x10000000000) (i32.const 1))
    (call $store_u64 (i64.const -8) (i64.const 1))
    (call $store_u64 (local.get $h) (i64.const -1))
    (call $free (i64.const 0))
    (call $free (i64.const 123456789))
    (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (call $load_u8 (i64.const 0)))))
    (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (call $load_u8 (i64.const 0x10000000000)))))
    (local.set $sum (i64.add (local.get $sum) (call $load_u64 (i64.const -8))))
    (local.set $sum (i64.add (local.get $sum) (call $load_u64 (i64.add (local.get $h) (i64.const 4)))))
    (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (call $input_load_u8 (local.get $n)))))
    (local.set $sum (i64.add (local.get $sum) (call $input_load_u64 (i64.sub (local.get $n) (i64.const 4)))))
    ;; Offsets past the input that land in block $h (all 0xff bytes): still 0.
    (local.set $sum (i64.add (local.get $sum)
      (i64.extend_i32_u (call $input_load_u8 (i64.sub (local.get $h) (call $input_offset))))))
    (local.set $sum (i64.add (local.get $sum)
      (call $input_load_u64 (i64.sub (i64.sub (local.get $h) (call $input_offset)) (i64.const 4)))))
    (local.set $sum (i64.add (local.get $sum) (call $length (i64.const 12345))))
    (local.set $sum (i64.add (local.get $sum) (call $length_unsafe (i64.const -1))))
    (local.set $sum (i64.add (local.get $sum) (call $alloc (i64.const 0))))
    (local.set $sum (i64.add (local.get $sum) (call $error_get)))
    (local.set $sum (i64.add (local.get $sum) (call $http_headers)))
    (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (call $http_status_code))))
    (call $output_number (local.get $sum))
    (i32.const 0))

  ;; Frees the input, then reports its length (0: the data is gone, as under Extism).
  (func (export "free_input") (result i32)
    (call $free (call $input_offset))
    (call $output_number (call $input_length))
    (i32.const 0))

  ;; Passes a handle that is not a block to config_get: the kernel fails the call.
  (func (export "bad_handle") (result i32)
    (drop (call $config_get (i64.const 99999)))
    (i32.const 0))

  ;; Builds {"method":M,"url":"<prefix + input>"} at 0x1000; returns its length.
  (func $request_json (param $prefixAt i32) (param $prefixLen i32) (param $urlHandle i64) (result i32)
    (local $p i32)
    (memory.copy (i32.const 0x1000) (local.get $prefixAt) (local.get $prefixLen))
    (local.set $p (i32.add (i32.const 0x1000) (local.get $prefixLen)))
    (if (i64.eqz (local.get $urlHandle))
      (then (local.set $p (i32.add (local.get $p) (call $input_to_mem (local.get $p)))))
      (else (local.set $p (i32.add (local.get $p) (call $block_to_mem (local.get $urlHandle) (local.get $p))))))
    (memory.copy (local.get $p) (i32.const ${jsonEnd.at}) (i32.const ${jsonEnd.len}))
    (i32.sub (i32.add (local.get $p) (i32.const ${jsonEnd.len})) (i32.const 0x1000)))

  ;; GET the URL given as input; output the response body.
  (func $get (result i64)
    (call $http_request
      (call $mem_to_block (i32.const 0x1000)
        (call $request_json (i32.const ${getPrefix.at}) (i32.const ${getPrefix.len}) (i64.const 0)))
      (i64.const 0)))

  (func (export "fetch") (result i32)
    (call $output_block (call $get))
    (i32.const 0))

  (func (export "fetch_status") (result i32)
    (drop (call $get))
    (call $output_number (i64.extend_i32_u (call $http_status_code)))
    (i32.const 0))

  (func (export "fetch_headers") (result i32)
    (drop (call $get))
    (call $output_block (call $http_headers))
    (i32.const 0))

  ;; POST the input to the URL in config "url"; output the response body.
  (func (export "post") (result i32)
    (local $len i32) (local $body i64) (local $n i32)
    (local.set $n (call $input_to_mem (i32.const 0x8000)))
    (local.set $body (call $mem_to_block (i32.const 0x8000) (local.get $n)))
    (local.set $len (call $request_json (i32.const ${postPrefix.at}) (i32.const ${postPrefix.len})
      (call $config_get (call $mem_to_block (i32.const ${urlKey.at}) (i32.const ${urlKey.len})))))
    (call $output_block (call $http_request (call $mem_to_block (i32.const 0x1000) (local.get $len)) (local.get $body)))
    (i32.const 0))

  ;; Logs the input at every level; outputs get_log_level.
  (func (export "log_all") (result i32)
    (local $n i32)
    (local.set $n (call $input_to_mem (i32.const 0x1000)))
    (call $log_trace (call $mem_to_block (i32.const 0x1000) (local.get $n)))
    (call $log_debug (call $mem_to_block (i32.const 0x1000) (local.get $n)))
    (call $log_info (call $mem_to_block (i32.const 0x1000) (local.get $n)))
    (call $log_warn (call $mem_to_block (i32.const 0x1000) (local.get $n)))
    (call $log_error (call $mem_to_block (i32.const 0x1000) (local.get $n)))
    (call $output_number (i64.extend_i32_u (call $get_log_level)))
    (i32.const 0))

  ;; corral_host_call("cache.get", input); outputs the response.
  (func (export "cache_get") (result i32)
    (local $n i32)
    (local.set $n (call $input_to_mem (i32.const 0x1000)))
    (call $output_block (call $corral_host_call
      (call $mem_to_block (i32.const ${cacheGet.at}) (i32.const ${cacheGet.len}))
      (call $mem_to_block (i32.const 0x1000) (local.get $n))))
    (i32.const 0))

  ;; corral_host_call("extism.var_set", input): a reserved name, refused.
  (func (export "reserved_host_call") (result i32)
    (local $n i32)
    (local.set $n (call $input_to_mem (i32.const 0x1000)))
    (call $output_block (call $corral_host_call
      (call $mem_to_block (i32.const ${varSetMethod.at}) (i32.const ${varSetMethod.len}))
      (call $mem_to_block (i32.const 0x1000) (local.get $n))))
    (i32.const 0))
`
})

/** A module importing an Extism kernel function that does not exist. */
export const unknownImportWat = `(module
  (import "extism:host/env" "teleport" (func (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (i32.const 0)))`

/**
 * A module with language-runtime start functions, each of which appends its digit to a global
 * (`_initialize` 1, `hs_init` 2, `__wasm_call_ctors` 3); `order` outputs the global as a u64.
 */
export function runtimeStartWat(starts: Array<'_initialize' | 'hs_init' | '__wasm_call_ctors'>): string {
  const digit = { _initialize: 1, hs_init: 2, __wasm_call_ctors: 3 }
  const bodies = starts.map(
    (name) => `(func (export "${name}") ${name === 'hs_init' ? '(param i32 i32)' : ''}
    ${name === 'hs_init' ? '(if (i32.or (local.get 0) (local.get 1)) (then unreachable))' : ''}
    (global.set $log (i64.add (i64.mul (global.get $log) (i64.const 10)) (i64.const ${digit[name]}))))`,
  )
  return `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $log (mut i64) (i64.const 0))
  ${bodies.join('\n  ')}
  (func (export "order") (result i32)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $h) (global.get $log))
    (call $output_set (local.get $h) (i64.const 8))
    (i32.const 0)))`
}

/**
 * A plugin that calls user host functions (Extism's `functions`): `greet` hands its input handle
 * to `extism:host/user.hello(i64) -> i64` and outputs the block it gets back; `add` outputs, as
 * one byte, what `env.add_numbers(i32, i32) -> i32` makes of 40 and 2 (a namespace of the host's choice).
 */
export const hostFunctionPluginWat = `(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/user" "hello" (func $hello (param i64) (result i64)))
  (import "env" "add_numbers" (func $add_numbers (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "greet") (result i32)
    (local $h i64)
    (local.set $h (call $hello (call $input_offset)))
    (call $output_set (local.get $h) (call $length (local.get $h)))
    (i32.const 0))
  (func (export "add") (result i32)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $h) (call $add_numbers (i32.const 40) (i32.const 2)))
    (call $output_set (local.get $h) (i64.const 1))
    (i32.const 0)))`
