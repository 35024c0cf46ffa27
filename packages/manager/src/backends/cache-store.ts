/**
 * A key-value cache with TTL. Keys live in namespaces (the host API uses one per plugin), and no
 * operation reaches across namespaces.
 */
export interface CacheStore {
  get(namespace: string, key: string): Promise<Buffer | null>
  /** Stores `value`; with `ttlMs`, it expires that many milliseconds later. */
  set(namespace: string, key: string, value: Buffer, ttlMs?: number): Promise<void>
  /** Whether there was a value to delete. */
  delete(namespace: string, key: string): Promise<boolean>
  close(): Promise<void>
}
