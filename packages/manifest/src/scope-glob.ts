/**
 * Scope globs: `*` matches any run of characters (also none, also dots); every other character
 * matches itself. This is the only pattern language of Corral's permissions.
 */

const regexCache = new Map<string, RegExp>()

function globToRegExp(pattern: string): RegExp {
  let regex = regexCache.get(pattern)
  if (regex === undefined) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')
    regex = new RegExp(`^${source}$`, 's')
    if (regexCache.size > 4096) regexCache.clear()
    regexCache.set(pattern, regex)
  }
  return regex
}

/**
 * Whether `value` matches the scope glob `pattern`.
 *
 * @example
 * matchScope('stats_*', 'stats_daily') // true
 */
export function matchScope(pattern: string, value: string): boolean {
  return globToRegExp(pattern).test(value)
}

/** Whether `value` matches any of the globs in `scope`. */
export function matchAnyScope(scope: readonly string[], value: string): boolean {
  return scope.some((pattern) => matchScope(pattern, value))
}

/**
 * Whether glob `outer` matches everything glob `inner` matches. Testing `outer` against `inner`'s
 * text is exact for this glob language: each `*` of `inner` can only be consumed by a `*` of
 * `outer`, which then consumes whatever that `*` stands for.
 */
export function scopeCovers(outer: string, inner: string): boolean {
  return matchScope(outer, inner)
}

/**
 * The globs matching only what both lists match. Where two globs overlap without one covering the
 * other (`a_*` and `*_b`), the overlap is dropped: a grant may come out narrower than the exact
 * intersection, never wider.
 */
export function intersectScopes(requested: readonly string[], granted: readonly string[]): string[] {
  const result = new Set<string>()
  for (const r of requested) {
    for (const g of granted) {
      if (scopeCovers(g, r)) result.add(r)
      else if (scopeCovers(r, g)) result.add(g)
    }
  }
  return [...result]
}
