// One persistent channel between two hops (docs/PROTOCOL.md §2), as the relay, the final
// hop and the client use it: the Channel interface and its types (channel-types.ts), and
// the WebSocket-over-TLS implementation's constructors (ws-channel.ts). The frame checks
// and AUTH (§2.3) live once in channel-base.ts; an in-memory pair for tests is in
// test/helpers/memory-channel.ts.
export { CLOSE, MAX_QUEUED_BYTES, type Channel, type ChannelAuthSigner, type ChannelAuthVerifier, type ChannelEvents } from './channel-types.js'
export { acceptChannel, connectChannel, type ConnectInit } from './ws-channel.js'
