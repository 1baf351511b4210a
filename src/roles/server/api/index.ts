// The server's API services in one import: the gateway (a function, and as an app), the per-service app
// builder and plugins, tokens, passwords and upstream transports. Nothing here opens
// a socket; `startServer` (src/roles/server/index.ts) decides what listens where.

export { buildGatewayApi, createGateway, serveGateway, type Gateway, type GatewayApiInit, type GatewayRequest, type GatewayResponse } from './gateway-api.js'
export { buildServiceApp, type ServiceAppInit, type ServiceName } from './service-app.js'
export { authService, keyFingerprint, type AuthServiceOptions } from './auth.js'
export { messagesService, type MessagesServiceOptions } from './messages.js'
export { TokenService, loadOrCreateSecret, type IssuedToken, type TokenServiceComponents, type TokenServiceInit, type VerifiedToken } from './tokens.js'
export { hashPassword, verifyPassword } from './password.js'
export { httpUpstream, inProcessUpstream, remoteRevocationCheck, remoteUserExists, type HttpUpstreamInit, type Upstream, type UpstreamRequest, type UpstreamResponse } from './upstream.js'
export { HEADER_INTERNAL, HEADER_TOKEN_EXP, HEADER_TOKEN_ID, HEADER_USER } from './http.js'
