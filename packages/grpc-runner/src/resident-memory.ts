import { readFile } from 'node:fs/promises'

const kibPerMib = 1024

/**
 * The resident set of process `pid` in MiB, from `/proc/<pid>/status` (Linux). `undefined` where
 * there is no /proc or the process is gone: the memory limit is then not checked.
 */
export async function residentSetMiB(pid: number): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8')
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text)
    return match?.[1] === undefined ? undefined : Number(match[1]) / kibPerMib
  } catch {
    return undefined
  }
}
