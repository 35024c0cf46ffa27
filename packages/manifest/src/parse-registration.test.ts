import { describe, expect, it } from 'vitest'
import { parseManifest } from './parse-manifest.js'
import { parseRegistration, parseRegistrationJson, registrationFromManifest } from './parse-registration.js'

const manifest = parseManifest(`
name: stats
version: 1.0.0
runtime: wasm
entry: { wasm: a.wasm }
resources:
  permissions:
    - { type: db, access: [read, write], scope: ["stats_*"] }
provides:
  widgets: [{ id: daily, title: Daily, handler: daily_widget }]
`)

describe('parseRegistration', () => {
  it('fills defaults for everything a plugin leaves out', () => {
    expect(parseRegistration({ name: 'stats', version: '1.0.0' }, manifest)).toEqual({
      name: 'stats',
      version: '1.0.0',
      routes: [],
      menu_items: [],
      widgets: [],
      jobs: [],
      templates: [],
      error_codes: [],
      groups: [],
      hidden_menu_items: [],
      permissions: [],
    })
  })

  it('takes the identity a registration leaves out from the manifest', () => {
    const described = parseManifest(`
name: stats
version: 1.0.0
description: Counts events.
license: MIT
runtime: grpc
entry: { node: main.js }
`)
    const routes = [{ method: 'GET', path: '/summary', handler: 'summary', middleware: [] }]
    expect(parseRegistration({ routes }, described)).toMatchObject({
      name: 'stats',
      version: '1.0.0',
      description: 'Counts events.',
      license: 'MIT',
      routes,
      widgets: [],
    })
    expect(parseRegistration({}, described).description).toBe('Counts events.')
    expect(parseRegistration({ description: 'Its own words.' }, described).description).toBe('Its own words.')
  })

  it('takes event subscriptions, and refuses a bad type glob or handler naming the field', () => {
    const events = [{ type: 'stats.*', handler: 'on_stats' }]
    expect(parseRegistration({ name: 'stats', version: '1.0.0', events }, manifest).events).toEqual(events)
    expect(() =>
      parseRegistration(
        { name: 'stats', version: '1.0.0', events: [{ type: 'a b', handler: 'on-x' }] },
        manifest,
      ),
    ).toThrow(
      expect.objectContaining({
        fields: [
          expect.objectContaining({ field: 'events[0].type' }),
          expect.objectContaining({ field: 'events[0].handler' }),
        ],
      }),
    )
  })

  it('refuses a registration whose identity differs from the manifest', () => {
    expect(() => parseRegistration({ name: 'other', version: '2.0.0' }, manifest)).toThrow(
      expect.objectContaining({
        code: 'load_failed',
        fields: [expect.objectContaining({ field: 'name' }), expect.objectContaining({ field: 'version' })],
      }),
    )
  })

  it('refuses a permission the manifest did not request', () => {
    const claimed = [
      { type: 'db', access: ['read'], scope: ['stats_daily'] },
      { type: 'db', access: ['read'], scope: ['users'] },
    ]
    expect(() =>
      parseRegistration({ name: 'stats', version: '1.0.0', permissions: claimed }, manifest),
    ).toThrow(expect.objectContaining({ fields: [expect.objectContaining({ field: 'permissions[1]' })] }))
  })

  it('takes a job timeout as the milliseconds its type says, or as a duration', () => {
    const jobs = [
      { id: 'typed', cron: '* * * * *', handler: 'typed', timeout: 30_000 },
      { id: 'written', cron: '* * * * *', handler: 'written', timeout: '30s' },
    ]
    const parsed = parseRegistration({ name: 'stats', version: '1.0.0', jobs }, manifest)
    expect(parsed.jobs.map((job) => job.timeout)).toEqual([30_000, 30_000])
    expect(() =>
      parseRegistration({ name: 'stats', version: '1.0.0', jobs: [{ ...jobs[0], timeout: 0.5 }] }, manifest),
    ).toThrow(expect.objectContaining({ fields: [expect.objectContaining({ field: 'jobs[0].timeout' })] }))
  })

  it('reports malformed capabilities with their path', () => {
    expect(() =>
      parseRegistration(
        { name: 'stats', version: '1.0.0', jobs: [{ id: 'x', cron: 'never', handler: 'x' }] },
        manifest,
      ),
    ).toThrow(expect.objectContaining({ fields: [expect.objectContaining({ field: 'jobs[0].cron' })] }))
  })
})

describe('parseRegistrationJson', () => {
  const bytes = (text: string) => new TextEncoder().encode(text)

  it('reads the JSON bytes a plugin answered with', () => {
    expect(parseRegistrationJson(bytes('{"name":"stats","version":"1.0.0"}'), manifest)).toEqual(
      parseRegistration({ name: 'stats', version: '1.0.0' }, manifest),
    )
  })

  it('rejects bytes that are not JSON with load_failed, naming the plugin', () => {
    expect(() => parseRegistrationJson(bytes('{"name": '), manifest)).toThrow(
      expect.objectContaining({
        code: 'load_failed',
        plugin: 'stats',
        rawMessage: 'register() returned a registration that is not JSON',
      }),
    )
  })

  it('takes no bytes as no registration: invalid, as null is', () => {
    expect(() => parseRegistrationJson(new Uint8Array(0), manifest)).toThrow(
      /register\(\) returned an invalid registration/,
    )
  })
})

describe('registrationFromManifest', () => {
  it('builds the registration from identity, provides and requested permissions', () => {
    const registration = registrationFromManifest(manifest)
    expect(registration.widgets).toEqual([
      { id: 'daily', title: 'Daily', handler: 'daily_widget', size: 'medium' },
    ])
    expect(registration.permissions).toEqual(manifest.resources.permissions)
  })
})

describe('registrationFromManifest with permissions of every type', () => {
  it('accepts the parsed form of each permission type (a parsed permission parses again to itself)', () => {
    const everyType = parseManifest(`
name: everything
version: 1.0.0
runtime: grpc
entry: { node: main.js }
resources:
  permissions:
    - { type: db, access: [read], scope: ["everything_*"] }
    - { type: cache, scope: ["*"] }
    - { type: http, scope: [api.example.com] }
    - { type: email, scope: [example.com] }
    - { type: config, scope: ["smtp.*"] }
    - { type: plugin_call, scope: [billing] }
    - { type: events, scope: ["ticket.*"] }
    - { type: fs, access: [read], scope: [data] }
`)
    expect(registrationFromManifest(everyType).permissions).toEqual(everyType.resources.permissions)
  })
})
