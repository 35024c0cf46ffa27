import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadPolicies, parsePolicies } from './parse-policies.js'

const one = 'plugin: stats\nstatus: approved\ngrants:\n  - { type: db, access: [read], scope: ["stats_*"] }\n'

describe('parsePolicies', () => {
  it('reads one policy, as corral policy prints it, and a list of them, alike', () => {
    const single = parsePolicies(one)
    expect(single).toHaveLength(1)
    expect(single[0]).toMatchObject({ plugin: 'stats', status: 'approved' })
    const list = parsePolicies(`- ${one.replaceAll('\n', '\n  ')}\n- plugin: kv\n  status: blocked\n`)
    expect(list.map((p) => p.plugin)).toEqual(['stats', 'kv'])
    expect(list[0]).toEqual(single[0])
  })

  it('holds no policy in a file of comments only', () => {
    expect(parsePolicies('# nothing decided yet\n')).toEqual([])
  })

  it('names the file and gives each problem its line and column, in a policy and in a list', () => {
    const typo =
      'plugin: stats\nstatus: aproved\ngrants:\n  - { type: db, acess: [read], access: [read], scope: ["x"] }\n'
    expect(() => parsePolicies(typo, { source: 'policy.yaml' })).toThrow(
      expect.objectContaining({
        code: 'invalid_argument',
        message: expect.stringMatching(
          /^\[invalid_argument\] policy\.yaml has 2 problems:\n {2}2:9 status: /,
        ),
        fields: [
          expect.objectContaining({ field: 'status', line: 2, column: 9 }),
          expect.objectContaining({
            field: 'grants[0].acess',
            line: 4,
            message: 'is not a known field (did you mean "access"?)',
          }),
        ],
      }),
    )
    expect(() =>
      parsePolicies('- plugin: stats\n  status: approved\n- plugin: kv\n  stauts: approved\n'),
    ).toThrow(
      expect.objectContaining({
        fields: expect.arrayContaining([
          expect.objectContaining({ field: '[1].stauts', line: 4, column: 3 }),
        ]),
      }),
    )
  })

  it('refuses YAML that does not read, with its line', () => {
    expect(() => parsePolicies('plugin: stats\nstatus: approved\ngrants: [\n', { source: 'p.yaml' })).toThrow(
      expect.objectContaining({ fields: [expect.objectContaining({ field: '(yaml)', line: 4 })] }),
    )
  })

  it('refuses a plugin given two entries, on the line of the second', () => {
    expect(() =>
      parsePolicies('- plugin: stats\n  status: approved\n- plugin: stats\n  status: blocked\n'),
    ).toThrow(
      expect.objectContaining({
        fields: [
          {
            field: '[1].plugin',
            message: 'stats has a policy already, in entry 1',
            line: 3,
            column: 11,
          },
        ],
      }),
    )
  })
})

describe('loadPolicies', () => {
  it('reads a file, naming it in its problems, and fails with not_found for one that is not there', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'corral-policies-'))
    try {
      const file = path.join(dir, 'policies.yaml')
      await writeFile(file, one)
      expect(await loadPolicies(file)).toHaveLength(1)
      await writeFile(file, 'plugin: stats\n')
      await expect(loadPolicies(file)).rejects.toThrow(`${file} has 1 problem`)
      await expect(loadPolicies(path.join(dir, 'missing.yaml'))).rejects.toMatchObject({
        code: 'not_found',
        message: expect.stringContaining('cannot read policies'),
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
