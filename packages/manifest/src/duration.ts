const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const

/**
 * Milliseconds in a duration written as a number and a unit: `250ms`, `1.5s`, `5m`, `1h`.
 * Returns `undefined` for anything else, bare numbers included: a unit is never guessed.
 */
export function parseDuration(text: string): number | undefined {
  const match = durationPattern.exec(text.trim())
  if (match === null) return undefined
  return Math.round(Number(match[1]) * unitMs[match[2] as keyof typeof unitMs])
}
