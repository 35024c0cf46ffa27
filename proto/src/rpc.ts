import {
  type CallOptions,
  type Client,
  type ClientDuplexStream,
  Metadata,
  type MethodDefinition,
} from '@grpc/grpc-js'

/** Makes one unary call of `method` on `client`, as a promise. */
export function unary<Req, Res>(
  client: Client,
  method: MethodDefinition<Req, Res>,
  request: Req,
  options: CallOptions = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      new Metadata(),
      options,
      (error, response) => (error ? reject(error) : resolve(response as Res)),
    )
  })
}

/** Opens a bidi stream of `method` on `client`. */
export function bidi<Req, Res>(
  client: Client,
  method: MethodDefinition<Req, Res>,
  options: CallOptions = {},
): ClientDuplexStream<Req, Res> {
  return client.makeBidiStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    new Metadata(),
    options,
  )
}

/** A deadline `ms` from now, as grpc-js takes it. */
export function deadlineIn(ms: number): Date {
  return new Date(Date.now() + ms)
}
