/**
 * Corral's go-plugin handshake: the magic cookie the host sets in a plugin's environment and the
 * application protocol version both sides speak.
 */
export const corralHandshake = {
  protocolVersion: 1,
  magicCookieKey: 'CORRAL_PLUGIN',
  magicCookieValue: 'b6c1d0a4-corral-plugin',
} as const
