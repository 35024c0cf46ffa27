import type { PluginState } from '@corral/types'
import { describe, expect, it } from 'vitest'
import type { StateTransition } from './manager-api.js'
import { PluginLifecycle } from './plugin-lifecycle.js'

describe('PluginLifecycle', () => {
  function lifecycle(historySize = 50, history: StateTransition[] = []) {
    const seen: StateTransition[] = []
    let now = 0
    const machine = new PluginLifecycle({
      plugin: 'alpha',
      historySize,
      history,
      onTransition: (t) => seen.push(t),
      now: () => ++now,
    })
    return { machine, seen }
  }

  it('moves through the lifecycle, reporting and keeping every transition with its reason', () => {
    const { machine, seen } = lifecycle()
    const path: PluginState[] = ['loading', 'running', 'degraded', 'running', 'stopping', 'stopped']
    for (const to of path) machine.move(to, `to ${to}`)
    expect(machine.state).toBe('stopped')
    expect(seen.map((t) => t.to)).toEqual(path)
    expect(machine.history).toEqual(seen)
    expect(seen[0]).toEqual({ at: 1, from: 'discovered', to: 'loading', reason: 'to loading' })
  })

  it('refuses a transition the lifecycle does not have, changing nothing', () => {
    const { machine, seen } = lifecycle()
    expect(() => machine.move('running', 'skipping loading')).toThrow(
      /no transition from discovered to running/,
    )
    machine.move('loading', 'load')
    expect(() => machine.move('stopped', 'no stopping')).toThrow(/internal/)
    expect(machine.state).toBe('loading')
    expect(seen).toHaveLength(1)
  })

  it('keeps at most historySize transitions, the newest, after those it was given', () => {
    const earlier: StateTransition = { at: 0, from: 'running', to: 'stopping', reason: 'before a restart' }
    const { machine } = lifecycle(3, [earlier])
    machine.move('loading', 'a')
    expect(machine.history.map((t) => t.reason)).toEqual(['before a restart', 'a'])
    machine.move('running', 'b')
    machine.move('degraded', 'c')
    expect(machine.history.map((t) => t.reason)).toEqual(['a', 'b', 'c'])
  })
})
