import { describe, expect, it } from 'vitest'
import { maxPluginLogFieldsLength, pluginLogFields } from './log-fields.js'

describe('pluginLogFields', () => {
  it('keeps a plugin’s own fields and adds the host’s attribution', () => {
    expect(pluginLogFields({ free: 3, disk: '/var' }, { plugin: 'stats', token: 'call-7' })).toEqual({
      free: 3,
      disk: '/var',
      plugin: 'stats',
      token: 'call-7',
    })
    expect(pluginLogFields(undefined, { plugin: 'stats' })).toEqual({ plugin: 'stats' })
  })

  it('drops the fields the host sets, even where the host sets no value for them', () => {
    const forged = { level: 'error', message: 'fake', plugin: 'admin', token: 'forged', free: 3 }
    expect(pluginLogFields(forged, { plugin: 'stats' })).toEqual({
      free: 3,
      plugin: 'stats',
      dropped_fields: 4,
    })
  })

  it('caps the size of the fields, keeping those that fit', () => {
    const fields = pluginLogFields(
      {
        a: 1,
        big: 'x'.repeat(maxPluginLogFieldsLength),
        b: 2,
        c: 'y'.repeat(3000),
        d: 'z'.repeat(3000),
      },
      { plugin: 'stats' },
    )
    expect(fields).toEqual({ a: 1, b: 2, c: 'y'.repeat(3000), plugin: 'stats', dropped_fields: 2 })
    expect(JSON.stringify(fields).length).toBeLessThan(maxPluginLogFieldsLength + 100)
  })

  it('keeps "__proto__" as a plain field, never as the prototype', () => {
    const fields = pluginLogFields(JSON.parse('{"__proto__": {"plugin": "admin"}}'), { plugin: 'stats' })
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype)
    expect(fields.plugin).toBe('stats')
    expect(Object.keys(fields)).toEqual(['__proto__', 'plugin'])
  })
})
