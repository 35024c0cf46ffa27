import { describe, expect, it } from 'vitest'
import { LineReader, parseHclogLine } from './plugin-log.js'

describe('parseHclogLine', () => {
  it('reads an hclog JSON line: level, message, fields, module', () => {
    const line =
      '{"@level":"warn","@message":"slow","@timestamp":"2026-11-22T00:00:00Z","@module":"kv","ms":12}'
    expect(parseHclogLine(line)).toEqual({ level: 'warn', message: 'slow', fields: { ms: 12, module: 'kv' } })
  })

  it('logs anything else as text at warn (a panic or a stack trace, mostly)', () => {
    expect(parseHclogLine('panic: oops')).toEqual({ level: 'warn', message: 'panic: oops', fields: {} })
    expect(parseHclogLine('{"not":"hclog"}')).toMatchObject({ level: 'warn', message: '{"not":"hclog"}' })
  })
})

describe('LineReader', () => {
  const collect = (options: { maxLineBytes?: number; maxLinesPerSecond?: number } = {}) => {
    const lines: string[] = []
    const dropped: number[] = []
    const reader = new LineReader({
      maxLineBytes: options.maxLineBytes ?? 100,
      maxLinesPerSecond: options.maxLinesPerSecond ?? 1000,
      onLine: (line) => lines.push(line),
      onDropped: (count) => dropped.push(count),
    })
    return { reader, lines, dropped }
  }

  it('joins lines split across chunks and drops CRs and empty lines', () => {
    const { reader, lines } = collect()
    reader.push(Buffer.from('one\r\ntw'))
    reader.push(Buffer.from('o\n\nthr'))
    reader.end()
    expect(lines).toEqual(['one', 'two', 'thr'])
  })

  it('cuts a line that is too long and skips the rest of it', () => {
    const { reader, lines } = collect({ maxLineBytes: 5 })
    reader.push(Buffer.from('abcdefgh'))
    reader.push(Buffer.from('ijk\nnext\n'))
    expect(lines).toEqual(['abcde…', 'next'])
  })

  it('passes at most maxLinesPerSecond lines and counts the others', () => {
    const { reader, lines, dropped } = collect({ maxLinesPerSecond: 3 })
    reader.push(Buffer.from('a\nb\nc\nd\ne\n'))
    reader.end()
    expect(lines).toEqual(['a', 'b', 'c'])
    expect(dropped).toEqual([2])
  })
})
