import { type HostCallRequest, type HostCallResponse, hostService } from '@corral/proto'
import { PluginError } from '@corral/types'
import { type Client, type ClientDuplexStream, Metadata } from '@grpc/grpc-js'

interface PendingHostCall {
  method: string
  resolve(response: HostCallResponse): void
  reject(error: PluginError): void
  timer: NodeJS.Timeout | undefined
}

/**
 * The plugin's host calls on one `HostService/CallStream`, each tagged with an id: a unary `Call`
 * costs a new HTTP/2 stream each way, several times a call on the stream (see performance.md,
 * `grpc.host_call`). Opened at the first host call, and again at the next after it breaks; a break
 * fails the host calls waiting on it with `unavailable`.
 */
export class HostCallStream {
  readonly #client: Client
  readonly #pending = new Map<number, PendingHostCall>()
  #stream: ClientDuplexStream<HostCallRequest, HostCallResponse> | undefined
  #nextId = 0

  constructor(client: Client) {
    this.#client = client
  }

  /** Sends one host call; fails with `deadline_exceeded` at `deadline` (epoch ms) if unanswered. */
  call(request: Omit<HostCallRequest, 'id'>, deadline: number | undefined): Promise<HostCallResponse> {
    const stream = this.#open()
    const id = this.#nextId
    this.#nextId = (id + 1) >>> 0
    return new Promise<HostCallResponse>((resolve, reject) => {
      const method = request.method ?? ''
      const timer =
        deadline === undefined
          ? undefined
          : setTimeout(
              () => {
                this.#pending.delete(id)
                reject(
                  new PluginError(
                    'deadline_exceeded',
                    `host call ${method} failed: the call's deadline passed`,
                  ),
                )
              },
              Math.max(0, deadline - Date.now()),
            )
      this.#pending.set(id, { method, resolve, reject, timer })
      stream.write({ ...request, id })
    })
  }

  /** Closes the connection; the host calls waiting on it fail. */
  close(): void {
    this.#stream?.cancel()
    this.#client.close()
  }

  #open(): ClientDuplexStream<HostCallRequest, HostCallResponse> {
    if (this.#stream !== undefined) return this.#stream
    const { path, requestSerialize, responseDeserialize } = hostService.callStream
    const stream = this.#client.makeBidiStreamRequest(
      path,
      requestSerialize,
      responseDeserialize,
      new Metadata(),
    )
    stream.on('data', (response: HostCallResponse) => {
      const id = response.id ?? 0
      const pending = this.#pending.get(id)
      if (pending === undefined) return // its deadline passed first
      this.#pending.delete(id)
      clearTimeout(pending.timer)
      pending.resolve(response)
    })
    const broken = (why: string) => {
      if (this.#stream !== stream) return
      this.#stream = undefined
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer)
        pending.reject(new PluginError('unavailable', `host call ${pending.method} failed: ${why}`))
      }
      this.#pending.clear()
    }
    stream.on('error', (error: Error) => broken(error.message))
    stream.on('end', () => broken('the host ended the host call stream'))
    this.#stream = stream
    return stream
  }
}
