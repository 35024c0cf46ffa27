import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { Logger } from '@corral/types'
import { PluginError, pluginLogFields } from '@corral/types'
import { LineReader, logLineLimits, parseHclogLine } from './plugin-log.js'
import type { PluginUser } from './plugin-user.js'

/** How a plugin process ended. */
export interface ProcessExit {
  code: number | null
  signal: NodeJS.Signals | null
  /** Its last lines on stderr since the handshake (about 1 KiB at most): they usually say why it ended. */
  stderr?: string
}

/** What {@link spawnPluginProcess} needs. */
export interface SpawnPluginOptions {
  command: string
  args: readonly string[]
  cwd?: string
  /** The plugin's whole environment: nothing of the host's is added. */
  env: Record<string, string>
  /** Written to the plugin's stdin as soon as it starts (the pipe stays open after it). */
  stdinLine?: string
  /** How long until the handshake line must have arrived. */
  startTimeoutMs: number
  logger: Logger
  /** Names the plugin in errors and log lines. */
  name: string
  /** Run as this user and group, without supplementary groups (Node drops them when it switches). */
  user?: PluginUser
}

/** A started plugin process and its handshake line. */
export interface PluginProcess {
  readonly pid: number
  readonly handshakeLine: string
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>
  hasExited(): boolean
  /** Force: SIGKILL to the plugin's whole process group (the plugin and anything it started). */
  kill(): void
}

// The launcher between the host and a plugin, one program exec'd before the plugin (each exec costs
// a few milliseconds of every start).
//
// Parent-death signal: if the host dies, even by SIGKILL, the kernel kills the plugin. Node has no
// prctl of its own; perl's `syscall` makes it, by the number prctl has on this machine. It reads the
// signal back, and checks that its parent is still the host: one that died before the prctl would
// go unnoticed.
//
// Descriptors: Node opens its own close-on-exec, but not those the host inherited without it (a
// socket from systemd, a pipe of whatever started the host): a child would get them all. Node
// cannot close a descriptor in a child before exec, so the launcher closes every descriptor above 2
// and execs the plugin, its environment untouched. Each is closed through a handle opened on it
// (`<&=`, or `>&=` for a write-only one), not POSIX::close: loading the POSIX module costs some
// 30 ms on every plugin start.
//
// perl-base is part of every Debian. Where perl or the prctl number is missing, util-linux's
// setpriv sets the parent-death signal instead, in an exec of its own.
const perl = process.platform === 'linux' && existsSync('/usr/bin/perl') ? '/usr/bin/perl' : undefined
const setpriv =
  process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined
/** prctl's system call number on Linux, by `process.arch` (the kernel's syscall tables). */
const prctlNumbers: Partial<Record<NodeJS.Architecture, number>> = {
  x64: 157,
  ia32: 172,
  arm: 172,
  arm64: 167,
  riscv64: 167,
  loong64: 167,
  ppc64: 171,
  s390x: 172,
}
const prctl = prctlNumbers[process.arch]
const setParentDeathSignal =
  'my ($prctl, $host) = splice(@ARGV, 0, 2); my $signal = pack("i", 0); ' +
  // PR_SET_PDEATHSIG (1) to SIGKILL (9), then PR_GET_PDEATHSIG (2).
  'syscall($prctl, 1, 9) == 0 && syscall($prctl, 2, $signal) == 0 && unpack("i", $signal) == 9 ' +
  'or die "corral: cannot set the parent-death signal: $!\\n"; ' +
  'getppid() == $host or die "corral: the host is gone\\n"; '
const closeInheritedFds =
  'opendir(my $d, "/proc/self/fd") or die "corral: no /proc/self/fd: $!\\n"; ' +
  'my @fds = grep { /^\\d+$/ && $_ > 2 } readdir($d); closedir($d); ' +
  'for my $fd (@fds) { open(my $f, "<&=", $fd) or open($f, ">&=", $fd) or next; close($f) } ' +
  'exec { $ARGV[0] } @ARGV or die "corral: cannot run $ARGV[0]: $!\\n"'

/** The program and arguments that start `command`: under the launcher, where there is one. */
function launchCommand(command: string, args: readonly string[]): [string, string[]] {
  let argv = [command, ...args]
  if (perl !== undefined && prctl !== undefined) {
    argv = [
      perl,
      '-e',
      setParentDeathSignal + closeInheritedFds,
      '--',
      String(prctl),
      String(process.pid),
      ...argv,
    ]
  } else {
    if (perl !== undefined) argv = [perl, '-e', closeInheritedFds, '--', ...argv]
    if (setpriv !== undefined) argv = [setpriv, '--pdeathsig', 'SIGKILL', '--', ...argv]
  }
  return [argv[0] as string, argv.slice(1)]
}

const maxHandshakeBytes = 64 * 1024
const stderrTailBytes = 2048
/** How much of the end of its stderr an exit reports, in characters. */
const exitStderrChars = 1024
/** Beyond this a second, the host stops reading a plugin's output pipe until the second is over. */
const maxOutputBytesPerSecond = 1 << 20
const throttleWindowMs = 1000
/** How long a plugin that exited before its handshake has to flush its stderr (it usually says why). */
const stderrDrainMs = 200

/**
 * Starts a plugin in a process group of its own, with exactly the environment given, and waits for
 * its handshake line. Every failure kills the group before it is thrown.
 */
export function spawnPluginProcess(options: SpawnPluginOptions): Promise<PluginProcess> {
  const { name, logger } = options
  const [file, args] = launchCommand(options.command, options.args)
  let child: ChildProcess
  try {
    child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      ...(options.user === undefined ? {} : { uid: options.user.uid, gid: options.user.gid }),
      // stdin stays an open pipe: its end tells a Corral SDK plugin that the host is gone.
      stdio: ['pipe', 'pipe', 'pipe'],
    })
  } catch (error) {
    return Promise.reject(PluginError.from(error, 'load_failed', name))
  }
  let gone = false
  let stderrTail = ''
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = true
      // The plugin is gone; anything it started in its group goes too.
      killGroup(child.pid)
      // Its last stderr lines are read first (bounded: a grandchild may hold the pipe open).
      const report = () => {
        clearTimeout(drained)
        const stderr = lastLines(stderrTail, exitStderrChars)
        resolve(stderr === '' ? { code, signal } : { code, signal, stderr })
      }
      const drained = setTimeout(report, stderrDrainMs)
      child.once('close', report)
    })
  })
  child.stdin?.on('error', () => {})
  if (options.stdinLine !== undefined) child.stdin?.write(options.stdinLine)

  const stderrLines = new LineReader({
    ...logLineLimits,
    onLine(line) {
      stderrTail = `${stderrTail}${line}\n`.slice(-stderrTailBytes)
      const entry = parseHclogLine(line)
      logger.log(entry.level, entry.message, pluginLogFields(entry.fields, { plugin: name }))
    },
    onDropped(count) {
      logger.log('warn', `dropped ${count} stderr lines of a plugin writing too fast`, { plugin: name })
    },
  })
  child.stderr?.on('data', (chunk: Buffer) => stderrLines.push(chunk))
  if (child.stderr) throttle(child.stderr)
  child.stderr?.on('end', () => stderrLines.end())

  return new Promise<PluginProcess>((resolve, reject) => {
    let stdout = Buffer.alloc(0)
    let settled = false
    const fail = (error: PluginError) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      killGroup(child.pid)
      child.kill('SIGKILL')
      reject(error)
    }
    const timer = setTimeout(() => {
      fail(
        new PluginError('deadline_exceeded', `no handshake line within ${options.startTimeoutMs} ms`, {
          plugin: name,
        }),
      )
    }, options.startTimeoutMs)
    const onData = (chunk: Buffer) => {
      stdout = Buffer.concat([stdout, chunk])
      const newline = stdout.indexOf(10)
      if (newline === -1) {
        if (stdout.length > maxHandshakeBytes) {
          fail(
            new PluginError(
              'load_failed',
              `handshake: no newline in the first ${maxHandshakeBytes} bytes of stdout`,
              { plugin: name },
            ),
          )
        }
        return
      }
      if (settled) return
      settled = true
      clearTimeout(timer)
      stderrTail = ''
      child.stdout?.off('data', onData)
      child.off('exit', onEarlyExit)
      const stdoutLines = new LineReader({
        ...logLineLimits,
        onLine: (line) => logger.log('info', line, { plugin: name, stream: 'stdout' }),
        onDropped: (count) => logger.log('warn', `dropped ${count} stdout lines`, { plugin: name }),
      })
      const rest = stdout.subarray(newline + 1)
      if (rest.length > 0) stdoutLines.push(rest)
      child.stdout?.on('data', (more: Buffer) => stdoutLines.push(more))
      if (child.stdout) throttle(child.stdout)
      child.stdout?.on('end', () => stdoutLines.end())
      resolve({
        pid: child.pid as number,
        handshakeLine: stdout.subarray(0, newline).toString('utf8'),
        exited,
        hasExited: () => gone,
        kill: () => killGroup(child.pid),
      })
    }
    const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) => {
      // Let stderr drain first (bounded: a grandchild may hold it open): it usually says why, such
      // as a wrong magic cookie or a missing library.
      const report = () => {
        clearTimeout(drained)
        const how = signal === null ? `with code ${code}` : `by ${signal}`
        const why = stderrTail.trim() === '' ? '' : `; stderr: ${stderrTail.trim()}`
        fail(new PluginError('load_failed', `exited ${how} before the handshake${why}`, { plugin: name }))
      }
      const drained = setTimeout(report, stderrDrainMs)
      child.once('close', report)
    }
    child.stdout?.on('data', onData)
    child.once('exit', onEarlyExit)
    child.once('error', (error) => fail(PluginError.from(error, 'load_failed', name)))
  })
}

/** The whole lines within the last `maxChars` characters of `text`, trimmed. */
function lastLines(text: string, maxChars: number): string {
  const trimmed = text.trim()
  if (trimmed.length <= maxChars) return trimmed
  const end = trimmed.slice(-maxChars)
  const newline = end.indexOf('\n')
  return newline === -1 ? end : end.slice(newline + 1)
}

/**
 * Bounds what reading a plugin's output costs the host: past {@link maxOutputBytesPerSecond} in a
 * second the pipe is left unread for the rest of that second, so a plugin that floods it blocks on
 * its own writes.
 */
function throttle(stream: NodeJS.ReadableStream): void {
  let windowStart = Date.now()
  let bytes = 0
  stream.on('data', (chunk: Buffer) => {
    const now = Date.now()
    if (now - windowStart >= throttleWindowMs) {
      windowStart = now
      bytes = 0
    }
    bytes += chunk.length
    if (bytes <= maxOutputBytesPerSecond || stream.isPaused()) return
    stream.pause()
    setTimeout(
      () => {
        windowStart = Date.now()
        bytes = 0
        stream.resume()
      },
      throttleWindowMs - (now - windowStart),
    ).unref()
  })
}

/** SIGKILL to a process group; a group already gone is no error. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // ESRCH: nothing left in the group.
  }
}
