import { logLevels } from '@corral/types'
import type { GuestInstance, HostBridge } from '../abi/guest-abi.js'
import { GuestCallError, guestFailure } from '../abi/guest-abi.js'
import type { WorkerChannelEnd } from '../channel/channel.js'
import { MessageKind } from '../channel/channel.js'

const encoder = new TextEncoder()

/**
 * Runs the next call the host queues (blocking until there is one) and replies with its output or
 * its failure; true when the failure discards the instance.
 */
export function serveNextCall(end: WorkerChannelEnd, guest: GuestInstance, plugin: string): boolean {
  const call = end.nextCall()
  let discard = false
  try {
    end.reply(MessageKind.result, 0, guest.call(call.fn, call.input))
  } catch (error) {
    const failure = guestFailure(error, call.fn)
    discard = failure.discard
    const data = encoder.encode(JSON.stringify(failure.toData(plugin)))
    end.reply(MessageKind.failure, discard ? 1 : 0, data)
  }
  end.finish()
  return discard
}

/** The guest's way to the host: host calls and logs through the channel, each blocking until answered. */
export function bridgeOver(end: WorkerChannelEnd): HostBridge {
  const bridge: HostBridge = {
    hostCall(method, args) {
      const name = encoder.encode(method)
      const payload = new Uint8Array(name.length + args.length)
      payload.set(name)
      payload.set(args, name.length)
      end.send(MessageKind.hostCall, name.length, 0, payload)
      const reply = end.receive()
      if (reply.kind !== MessageKind.hostResult) {
        throw new GuestCallError(
          'internal',
          `host call ${method}: unexpected channel message ${reply.kind}`,
          true,
        )
      }
      return reply.payload
    },
    log(level, message) {
      bridge.hostCall('log', encoder.encode(JSON.stringify({ level: logLevels[level], message })))
    },
  }
  return bridge
}
