import { isPluginError, type RouteRequest } from '@corral/types'
import { describe, expect, expectTypeOf, it } from 'vitest'
import * as z from 'zod'
import { type CallContext, withArgs } from './define-plugin.js'
import { jsonRoute } from './json-route.js'

const context = {} as CallContext

/** A request as the host's plugin routes pass it (apps/host/src/plugin-routes.ts). */
function request(overrides: Partial<RouteRequest> = {}): RouteRequest {
  return {
    method: 'POST',
    path: '/greet',
    params: {},
    query: {},
    headers: { 'content-type': 'application/json' },
    body: '',
    user: null,
    ...overrides,
  }
}

async function failureOf(promise: unknown): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a failure')
}

describe('jsonRoute', () => {
  const greet = withArgs(z.object({ name: z.string() }), ({ name }) => ({ message: `Hello, ${name}!` }))
  const route = jsonRoute(greet)

  it("calls the function with the request's JSON body and answers its result as JSON, 200", async () => {
    expect(await route(request({ body: '{"name":"Ada"}' }), context)).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"message":"Hello, Ada!"}',
    })
  })

  it('takes the arguments from the query and the path too: query, then body, then params', async () => {
    const echo = jsonRoute((args) => args)
    const answer = await echo(
      request({
        query: { name: 'from-query', day: 'q' },
        body: '{"day": "body", "key": "body"}',
        params: { key: 'param' },
      }),
      context,
    )
    expect(JSON.parse(answer.body)).toEqual({ name: 'from-query', day: 'body', key: 'param' })
    expect(JSON.parse((await route(request({ query: { name: 'Bo' } }), context)).body)).toEqual({
      message: 'Hello, Bo!',
    })
  })

  it("fails with the function's own error: a schema's invalid_argument names the field", async () => {
    const error = await failureOf(route(request({ body: '{}' }), context))
    expect(isPluginError(error) && error.code).toBe('invalid_argument')
    expect(isPluginError(error) && error.fields).toEqual([{ field: 'name', message: expect.any(String) }])
  })

  it('refuses a body that is not a JSON object with invalid_argument, before the function runs', async () => {
    let ran = false
    const watched = jsonRoute(() => {
      ran = true
      return null
    })
    for (const body of ['name=Ada', '[1]', 'null', '"Ada"']) {
      const error = await failureOf(watched(request({ body }), context))
      expect(isPluginError(error) && error.code).toBe('invalid_argument')
    }
    expect(ran).toBe(false)
  })

  it('refuses a call that is not a route request, saying what it takes', async () => {
    const error = await failureOf(route({ name: 'Ada' } as never, context))
    expect(isPluginError(error) && error.code).toBe('invalid_argument')
    expect(isPluginError(error) && error.rawMessage).toMatch(/answers a route/)
  })

  it('answers null for a function that returns nothing', async () => {
    expect((await jsonRoute(() => undefined)(request(), context)).body).toBe('null')
  })

  it('is typed as a function of a RouteRequest, for a typed client', () => {
    expectTypeOf(route).parameter(0).toEqualTypeOf<unknown>()
    expectTypeOf(route['~args']).toEqualTypeOf<RouteRequest | undefined>()
  })
})
