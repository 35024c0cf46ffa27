import { describe, expect, it } from 'vitest'
import { type ExecutorRequest, encodeFrame, FrameReader } from './sqlite-executor-protocol.js'

const request: ExecutorRequest = {
  kind: 'run',
  id: 7,
  sql: 'SELECT day FROM bench_daily WHERE day = $1',
  params: ['2026-11-21 – ünïcode'],
  readOnly: true,
  returnRows: true,
}

function thrownBy(work: () => void): unknown {
  try {
    work()
  } catch (error) {
    return error
  }
  throw new Error('nothing was thrown')
}

function collect(maxBytes?: number): { reader: FrameReader; messages: unknown[] } {
  const messages: unknown[] = []
  return { reader: new FrameReader((message) => messages.push(message), maxBytes), messages }
}

describe('FrameReader', () => {
  it('reads back what encodeFrame wrote, several frames in one chunk', () => {
    const { reader, messages } = collect()
    const second = { kind: 'commit', id: 8 } as const
    reader.push(Buffer.concat([encodeFrame(request), encodeFrame(second)]))
    expect(messages).toEqual([request, second])
  })

  it('joins a frame split across chunks anywhere, its header included', () => {
    const frames = Buffer.concat([encodeFrame(request), encodeFrame({ ...request, id: 9 })])
    for (const size of [1, 2, 3, 5, 17]) {
      const { reader, messages } = collect()
      for (let at = 0; at < frames.length; at += size) reader.push(frames.subarray(at, at + size))
      expect(messages).toEqual([request, { ...request, id: 9 }])
    }
  })

  it('keeps its own copy of a partial frame: the caller may reuse its buffer', () => {
    const { reader, messages } = collect()
    const frame = encodeFrame(request)
    const buffer = Buffer.alloc(frame.length)
    frame.copy(buffer, 0, 0, 10)
    reader.push(buffer.subarray(0, 10))
    buffer.fill(0)
    frame.copy(buffer, 0, 10)
    reader.push(buffer.subarray(0, frame.length - 10))
    expect(messages).toEqual([request])
  })

  it('refuses a frame over its limit as soon as the header says so', () => {
    const { reader, messages } = collect(1024)
    const header = Buffer.alloc(4)
    header.writeUInt32LE(1025)
    expect(thrownBy(() => reader.push(header))).toMatchObject({
      name: 'PluginError',
      code: 'resource_exhausted',
      message: expect.stringContaining('1025 bytes'),
    })
    expect(messages).toEqual([])
  })

  it('takes a frame of exactly its limit', () => {
    const frame = encodeFrame(request)
    const { reader, messages } = collect(frame.length - 4)
    reader.push(frame)
    expect(messages).toEqual([request])
  })

  it('refuses a frame that is not JSON', () => {
    const garbled = Buffer.from('\u0003\u0000\u0000\u0000{x}', 'latin1')
    expect(thrownBy(() => collect().reader.push(garbled))).toMatchObject({
      name: 'PluginError',
      code: 'unavailable',
      message: expect.stringContaining('malformed'),
    })
  })
})
