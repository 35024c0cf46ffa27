import { execFileSync } from 'node:child_process'
import { closeSync, openSync, readdirSync, readlinkSync, realpathSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Plugin } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createWasmRunner } from '../host/wasm-runner.js'
import { corralWat, type TestPlugin, writeTestPlugin } from '../testing/wat-plugin.js'
import { errno } from './fs-sandbox.js'

/**
 * A guest that drives WASI by hand. Input is a JSON string `"<fd>|<path>"`: the preopen to use
 * (3 = `data`, read-only; 4 = `out`, writable) and a path relative to it. Exports answer the WASI
 * errno as a JSON number, or (`read`) the file's bytes. `race`, `hog` and `spin` are the attacks
 * below.
 */
const wasiGuest = corralWat(
  `
  ;; errno (0..99) as a JSON number at 4096
  (func $errno (param $e i32) (result i64)
    (if (i32.lt_u (local.get $e) (i32.const 10))
      (then
        (i32.store8 (i32.const 4096) (i32.add (i32.const 48) (local.get $e)))
        (return (call $pack (i32.const 4096) (i32.const 1)))))
    (i32.store8 (i32.const 4096) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
    (i32.store8 (i32.const 4097) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
    (call $pack (i32.const 4096) (i32.const 2)))
  ;; $v in decimal at $ptr; returns where it ends
  (func $itoa (param $v i32) (param $ptr i32) (result i32)
    (local $div i32)
    (local.set $div (i32.const 1))
    (block $counted (loop $more
      (br_if $counted (i32.lt_u (local.get $v) (i32.mul (local.get $div) (i32.const 10))))
      (local.set $div (i32.mul (local.get $div) (i32.const 10)))
      (br $more)))
    (block $written (loop $digit
      (i32.store8 (local.get $ptr)
        (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $v) (local.get $div)) (i32.const 10))))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
      (br_if $written (i32.eq (local.get $div) (i32.const 1)))
      (local.set $div (i32.div_u (local.get $div) (i32.const 10)))
      (br $digit)))
    (local.get $ptr))
  ;; path_open on the input's fd and path; the new fd lands at 4200
  (func $open (param $ptr i32) (param $len i32) (param $oflags i32) (param $rights i64) (result i32)
    (call $path_open
      (i32.sub (i32.load8_u (i32.add (local.get $ptr) (i32.const 1))) (i32.const 48))
      (i32.const 1)
      (i32.add (local.get $ptr) (i32.const 3))
      (i32.sub (local.get $len) (i32.const 4))
      (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 4200)))
  ;; the input's fd
  (func $fdIn (param $ptr i32) (result i32)
    (i32.sub (i32.load8_u (i32.add (local.get $ptr) (i32.const 1))) (i32.const 48)))
  (func (export "mkdir") (param $ptr i32) (param $len i32) (result i64)
    (call $errno (call $path_create_directory
      (call $fdIn (local.get $ptr)) (i32.add (local.get $ptr) (i32.const 3)) (i32.sub (local.get $len) (i32.const 4)))))
  (func (export "rmdir") (param $ptr i32) (param $len i32) (result i64)
    (call $errno (call $path_remove_directory
      (call $fdIn (local.get $ptr)) (i32.add (local.get $ptr) (i32.const 3)) (i32.sub (local.get $len) (i32.const 4)))))
  (func (export "unlink") (param $ptr i32) (param $len i32) (result i64)
    (call $errno (call $path_unlink_file
      (call $fdIn (local.get $ptr)) (i32.add (local.get $ptr) (i32.const 3)) (i32.sub (local.get $len) (i32.const 4)))))
  ;; renames the input's path to "renamed" in the same directory
  (data (i32.const 5040) "renamed")
  (func (export "rename") (param $ptr i32) (param $len i32) (result i64)
    (call $errno (call $path_rename
      (call $fdIn (local.get $ptr)) (i32.add (local.get $ptr) (i32.const 3)) (i32.sub (local.get $len) (i32.const 4))
      (call $fdIn (local.get $ptr)) (i32.const 5040) (i32.const 7))))
  ;; opens the input's directory and keeps its fd at 4800 for readdir_held
  (func (export "open_dir") (param $ptr i32) (param $len i32) (result i64)
    (local $e i32)
    (local.set $e (call $open (local.get $ptr) (local.get $len) (i32.const 2) (i64.const 2)))
    (i32.store (i32.const 4800) (i32.load (i32.const 4200)))
    (call $errno (local.get $e)))
  ;; fd_readdir on the kept directory: the bytes of entries it wrote, as a JSON number
  (func (export "readdir_held") (param i32 i32) (result i64)
    (i32.store (i32.const 4308) (i32.const 0))
    (drop (call $fd_readdir (i32.load (i32.const 4800)) (i32.const 8192) (i32.const 4096) (i64.const 0) (i32.const 4308)))
    (call $pack (i32.const 4600) (i32.sub (call $itoa (i32.load (i32.const 4308)) (i32.const 4600)) (i32.const 4600))))
  (func (export "open_read") (param $ptr i32) (param $len i32) (result i64)
    (call $errno (call $open (local.get $ptr) (local.get $len) (i32.const 0) (i64.const 2))))
  (func (export "open_write") (param $ptr i32) (param $len i32) (result i64)
    (call $errno (call $open (local.get $ptr) (local.get $len) (i32.const 9) (i64.const 66))))
  (func (export "write") (param $ptr i32) (param $len i32) (result i64)
    (local $e i32)
    (local.set $e (call $open (local.get $ptr) (local.get $len) (i32.const 9) (i64.const 66)))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    ;; one iovec at 4300 → the 2 bytes "42" at 4400
    (i32.store16 (i32.const 4400) (i32.const 0x3234))
    (i32.store (i32.const 4300) (i32.const 4400))
    (i32.store (i32.const 4304) (i32.const 2))
    (local.set $e (call $fd_write (i32.load (i32.const 4200)) (i32.const 4300) (i32.const 1) (i32.const 4308)))
    (drop (call $fd_close (i32.load (i32.const 4200))))
    (call $errno (local.get $e)))
  (func (export "read") (param $ptr i32) (param $len i32) (result i64)
    (local $e i32)
    (local.set $e (call $open (local.get $ptr) (local.get $len) (i32.const 0) (i64.const 2)))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    (i32.store (i32.const 4300) (i32.const 8192))
    (i32.store (i32.const 4304) (i32.const 1000))
    (drop (call $fd_read (i32.load (i32.const 4200)) (i32.const 4300) (i32.const 1) (i32.const 4308)))
    (drop (call $fd_close (i32.load (i32.const 4200))))
    (call $pack (i32.const 8192) (i32.load (i32.const 4308))))
  ;; Opens the input's file (read) without closing it until refused: the JSON [opened, errno].
  (func (export "hog") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $e i32) (local $at i32)
    (block $refused (loop $more
      (local.set $e (call $open (local.get $ptr) (local.get $len) (i32.const 0) (i64.const 2)))
      (br_if $refused (local.get $e))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    (i32.store8 (i32.const 4096) (i32.const 91))
    (local.set $at (call $itoa (local.get $n) (i32.const 4097)))
    (i32.store8 (local.get $at) (i32.const 44))
    (local.set $at (call $itoa (local.get $e) (i32.add (local.get $at) (i32.const 1))))
    (i32.store8 (local.get $at) (i32.const 93))
    (call $pack (i32.const 4096) (i32.sub (i32.add (local.get $at) (i32.const 1)) (i32.const 4096))))
  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (unreachable))
  ;; 2000 times, in preopen 3: read the first byte of a/d/f.json ('x' if refused), then create
  ;; a/d/w.json and write "42" ('W' if it worked, else 'x'). The JSON string of those letters.
  (data (i32.const 5000) "a/d/f.json")
  (data (i32.const 5020) "a/d/w.json")
  (func (export "race") (param i32 i32) (result i64)
    (local $i i32) (local $at i32)
    (i32.store8 (i32.const 20000) (i32.const 34))
    (local.set $at (i32.const 20001))
    (loop $next
      (i32.store8 (local.get $at) (i32.const 120))
      (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const 5000) (i32.const 10)
            (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 4200)))
        (then
          (i32.store (i32.const 4300) (local.get $at))
          (i32.store (i32.const 4304) (i32.const 1))
          (drop (call $fd_read (i32.load (i32.const 4200)) (i32.const 4300) (i32.const 1) (i32.const 4308)))
          (drop (call $fd_close (i32.load (i32.const 4200))))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at) (i32.const 120))
      (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const 5020) (i32.const 10)
            (i32.const 9) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 4200)))
        (then
          (i32.store16 (i32.const 4400) (i32.const 0x3234))
          (i32.store (i32.const 4300) (i32.const 4400))
          (i32.store (i32.const 4304) (i32.const 2))
          (drop (call $fd_write (i32.load (i32.const 4200)) (i32.const 4300) (i32.const 1) (i32.const 4308)))
          (drop (call $fd_close (i32.load (i32.const 4200))))
          (i32.store8 (local.get $at) (i32.const 87))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 2000))))
    (i32.store8 (local.get $at) (i32.const 34))
    (call $pack (i32.const 20000) (i32.sub (i32.add (local.get $at) (i32.const 1)) (i32.const 20000))))
  (func (export "clock_random") (param i32 i32) (result i64)
    (call $errno
      (i32.add
        (i32.add
          (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 4500))
          (call $random_get (i32.const 4508) (i32.const 32)))
        (i32.add
          (call $args_sizes_get (i32.const 4540) (i32.const 4544))
          (i32.add (i32.load (i32.const 4540)) (i32.load (i32.const 4544)))))))`,
  {
    imports: `
    (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_create_directory" (func $path_create_directory (param i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_remove_directory" (func $path_remove_directory (param i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink_file (param i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_rename" (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))`,
  },
)

describe('WASI preview 1', () => {
  const runner = createWasmRunner()
  let test: TestPlugin
  let outside: string
  let plugin: Plugin

  beforeAll(async () => {
    outside = await mkdtemp(path.join(tmpdir(), 'corral-outside-'))
    await writeFile(path.join(outside, 'secret.json'), '{"secret":true}')
    test = await writeTestPlugin(wasiGuest, {
      files: {
        'data/hello.json': '{"msg":"hi"}',
        'data/sub/a': '',
        'out/.keep': '',
        'private.json': '{"private":true}',
      },
      permissions: [
        { type: 'fs', access: ['read'], scope: ['data'] },
        { type: 'fs', access: ['read', 'write'], scope: ['out'] },
      ],
    })
    await symlink(path.join(outside, 'secret.json'), path.join(test.dir, 'data', 'escape.json'))
    await symlink(outside, path.join(test.dir, 'data', 'escape-dir'))
    await symlink(outside, path.join(test.dir, 'out', 'escape-dir'))
    await symlink(path.join(outside, 'missing.json'), path.join(test.dir, 'out', 'dangling.json'))
    await symlink(path.join(test.dir, 'data', 'hello.json'), path.join(test.dir, 'data', 'alias.json'))
    plugin = await runner.load(test)
    await plugin.init({})
  })
  afterAll(async () => {
    await runner.close()
    await test.remove()
    await rm(outside, { recursive: true, force: true })
  })

  it('reads a file in a granted directory, also through a symlink that stays inside', async () => {
    expect(await plugin.call('read', '3|hello.json')).toEqual({ msg: 'hi' })
    expect(await plugin.call('read', '3|alias.json')).toEqual({ msg: 'hi' })
  })

  it.each([
    ['3|../private.json', '.. out of the granted directory'],
    ['3|../../../../etc/passwd', '.. far out'],
    ['3|/etc/passwd', 'an absolute path'],
    ['3|escape.json', 'a symlink to a file outside'],
    ['3|escape-dir/secret.json', 'a symlinked directory outside'],
    ['4|../data/hello.json', '.. from one grant into another'],
  ])('refuses %s (%s) with ENOTCAPABLE', async (input) => {
    expect(await plugin.call('open_read', input)).toBe(errno.notcapable)
  })

  it('refuses writes where only read is granted, with EROFS', async () => {
    expect(await plugin.call('open_write', '3|new.json')).toBe(errno.rofs)
    expect(await plugin.call('open_write', '3|hello.json')).toBe(errno.rofs)
  })

  it('writes where write is granted, but not through a dangling symlink out', async () => {
    expect(await plugin.call('write', '4|answer.json')).toBe(0)
    expect(await readFile(path.join(test.dir, 'out', 'answer.json'), 'utf8')).toBe('42')
    expect(await plugin.call('open_write', '4|dangling.json')).toBe(errno.notcapable)
    await expect(readFile(path.join(outside, 'missing.json'))).rejects.toThrow()
  })

  it('creates, renames and removes inside a writable grant, and nowhere else', async () => {
    expect(await plugin.call('mkdir', '4|made')).toBe(0)
    expect(await plugin.call('rename', '4|made')).toBe(0)
    expect(await plugin.call('rmdir', '4|renamed')).toBe(0)
    expect(await readdir(path.join(test.dir, 'out'))).not.toContain('renamed')
    expect(await plugin.call('mkdir', '3|made')).toBe(errno.rofs)
    expect(await plugin.call('mkdir', '4|../made')).toBe(errno.notcapable)
    expect(await plugin.call('mkdir', '4|escape-dir/made')).toBe(errno.notcapable)
    expect(await plugin.call('rename', '4|escape-dir/secret.json')).toBe(errno.notcapable)
    expect(await plugin.call('unlink', '4|escape-dir/secret.json')).toBe(errno.notcapable)
    expect(await readdir(outside)).toEqual(['secret.json'])
  })

  it('keeps a directory handle on the directory it opened, not on a symlink renamed into its path', async () => {
    expect(await plugin.call('open_dir', '3|sub')).toBe(0)
    await rename(path.join(test.dir, 'data', 'sub'), path.join(test.dir, 'data', 'sub-moved'))
    await symlink(outside, path.join(test.dir, 'data', 'sub'))
    // Three entries of 24 bytes and their names: '.', '..' and 'a' (outside would be 'secret.json').
    expect(await plugin.call('readdir_held')).toBe(3 * 24 + 1 + 2 + 1)
  })

  it('answers ENOENT for a missing file and EBADF for a directory that is not granted', async () => {
    expect(await plugin.call('open_read', '3|nope.json')).toBe(errno.noent)
    expect(await plugin.call('open_read', '5|hello.json')).toBe(errno.badf)
  })

  it('gives clocks and random, and no arguments or environment', async () => {
    expect(await plugin.call('clock_random')).toBe(0)
  })
})

/** The host descriptors of this process that point inside `dir`. */
function hostFdsInside(dir: string): number {
  const real = realpathSync(dir)
  let count = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${real}/`)) count++
    } catch {
      // closed while listed (readdir's own descriptor)
    }
  }
  return count
}

describe('WASI against a racing renamer', () => {
  const runner = createWasmRunner()
  let test: TestPlugin
  let outside: string
  let plugin: Plugin

  beforeAll(async () => {
    outside = await mkdtemp(path.join(tmpdir(), 'corral-outside-'))
    await writeFile(path.join(outside, 'f.json'), 'outside')
    test = await writeTestPlugin(wasiGuest, {
      files: { 'box/a/d/f.json': 'inside' },
      permissions: [{ type: 'fs', access: ['read', 'write'], scope: ['box'] }],
    })
    // box/b/d is a symlink out; the renamer keeps swapping box/a and box/b.
    await mkdir(path.join(test.dir, 'box', 'b'))
    await symlink(outside, path.join(test.dir, 'box', 'b', 'd'))
    plugin = await runner.load(test)
    await plugin.init({})
  })
  afterAll(async () => {
    await runner.close()
    await test.remove()
    await rm(outside, { recursive: true, force: true })
  })

  it('never reads or writes outside the granted folder while directories and symlinks swap', async () => {
    const stop = new Int32Array(new SharedArrayBuffer(4))
    const renamer = new Worker(
      `const { workerData } = require('node:worker_threads')
      const fs = require('node:fs')
      const path = require('node:path')
      const stop = new Int32Array(workerData.stop)
      const [a, b, swap] = ['a', 'b', 'swap'].map((name) => path.join(workerData.box, name))
      while (Atomics.load(stop, 0) === 0) {
        fs.renameSync(a, swap)
        fs.renameSync(b, a)
        fs.renameSync(swap, b)
      }`,
      { eval: true, workerData: { box: path.join(test.dir, 'box'), stop: stop.buffer } },
    )
    const outcomes: string[] = []
    try {
      for (let round = 0; round < 10; round++) {
        outcomes.push((await plugin.call('race', null, { timeoutMs: 60_000 })) as string)
      }
    } finally {
      Atomics.store(stop, 0, 1)
      await new Promise((resolve) => renamer.once('exit', resolve))
    }
    const all = outcomes.join('')
    const count = (letter: string) => all.split(letter).length - 1
    expect(all).toHaveLength(10 * 2000 * 2)
    expect(count('o')).toBe(0) // reads of outside/f.json
    expect(await readdir(outside)).toEqual(['f.json']) // no w.json created outside
    expect(await readFile(path.join(outside, 'f.json'), 'utf8')).toBe('outside')
    // The race ran both ways: reads inside succeeded, and some were refused.
    expect(count('i')).toBeGreaterThan(0)
    expect(count('x')).toBeGreaterThan(0)
  }, 120_000) // 40 000 opens against a renamer on a loaded machine take their time
})

describe('WASI descriptor limit', () => {
  const maxOpenFiles = 8
  const runner = createWasmRunner()
  let test: TestPlugin
  let plugin: Plugin

  beforeAll(async () => {
    test = await writeTestPlugin(wasiGuest, {
      files: { 'data/hello.json': '{}' },
      permissions: [{ type: 'fs', access: ['read'], scope: ['data'] }],
      limits: { max_open_files: maxOpenFiles },
    })
    plugin = await runner.load(test)
    await plugin.init({})
  })
  afterAll(async () => {
    await runner.close()
    await test.remove()
  })

  it('refuses a guest opening files in a loop with EMFILE at max_open_files; the host still opens files', async () => {
    expect(await plugin.call('hog', '3|hello.json')).toEqual([maxOpenFiles, errno.mfile])
    expect(hostFdsInside(test.dir)).toBe(1 + maxOpenFiles) // the preopen and the guest's files
    closeSync(openSync(path.join(test.dir, 'data', 'hello.json'), 'r'))
  })

  it('releases every descriptor of an instance stopped at its deadline, and at shutdown', async () => {
    await expect(plugin.call('spin', null, { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'deadline_exceeded',
    })
    // The host closes them once the terminated worker has exited.
    await vi.waitFor(() => expect(hostFdsInside(test.dir)).toBe(0), { timeout: 5_000, interval: 20 })
    // The next instance starts with none held.
    expect(await plugin.call('hog', '3|hello.json')).toEqual([maxOpenFiles, errno.mfile])
    await runner.close()
    expect(hostFdsInside(test.dir)).toBe(0)
  })
})

describe('WASI descriptor limit, changed live', () => {
  const runner = createWasmRunner()
  let test: TestPlugin

  afterAll(async () => {
    await runner.close()
    await test.remove()
  })

  it('a lowered max_open_files holds from the next call on: EMFILE sooner', async () => {
    test = await writeTestPlugin(wasiGuest, {
      files: { 'data/hello.json': '{}' },
      permissions: [{ type: 'fs', access: ['read'], scope: ['data'] }],
      limits: { max_open_files: 8 },
    })
    const plugin = await runner.load(test)
    await plugin.init({})
    expect(await plugin.call('hog', '3|hello.json')).toEqual([8, errno.mfile])
    plugin.updateGrant({ ...test.grant, limits: { ...test.grant.limits, max_open_files: 3 } })
    expect(await plugin.call('hog', '3|hello.json')).toEqual([3, errno.mfile])
  })
})

describe('WASI special files', () => {
  const runner = createWasmRunner()
  let test: TestPlugin
  let plugin: Plugin
  let threadsBefore: number

  beforeAll(async () => {
    test = await writeTestPlugin(wasiGuest, {
      files: { 'data/.keep': '', 'out/.keep': '' },
      permissions: [
        { type: 'fs', access: ['read'], scope: ['data'] },
        { type: 'fs', access: ['read', 'write'], scope: ['out'] },
      ],
    })
    execFileSync('mkfifo', [path.join(test.dir, 'data', 'pipe')])
    execFileSync('mkfifo', [path.join(test.dir, 'out', 'pipe')])
    threadsBefore = readdirSync('/proc/self/task').length
    plugin = await runner.load(test)
    await plugin.init({})
  })
  afterAll(async () => {
    await runner.close()
    await test.remove()
  })

  it('refuses a FIFO at once with ENOTSUP, read or write, and leaves no thread behind', async () => {
    expect(await plugin.call('open_read', '3|pipe', { timeoutMs: 2_000 })).toBe(errno.notsup)
    expect(await plugin.call('open_write', '4|pipe', { timeoutMs: 2_000 })).toBe(errno.notsup)
    await runner.close()
    expect(readdirSync('/proc/self/task').length).toBeLessThanOrEqual(threadsBefore)
  })
})
