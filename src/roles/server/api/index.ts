// The server's API services in one import: the gateway (a function, and as an app), the
// services (a dispatch function, and as an app for split deployments), their route tables, tokens, passwords and upstream transports. Nothing here opens
// a socket; `startServer` (src/roles/server/index.ts) decides what listens where.

export { buildGatewayApi, createGateway, serveGateway, type Gateway, type GatewayApiInit, type GatewayRequest, type GatewayResponse } from './gateway-api.js'
export { buildServiceApp, createServices, type ServiceAppInit, type ServiceName, type Services, type ServicesInit } from './service-app.js'
export { compileRoutes, type Dispatch, type Route, type ServiceCall, type ServiceReply } from './router.js'
export { authRoutes, keyFingerprint, type AuthServiceOptions } from './auth.js'
export { messagesRoutes, type MessagesServiceOptions, type ServiceRoutes } from './messages.js'
export { TokenService, loadOrCreateSecret, type IssuedToken, type TokenServiceComponents, type TokenServiceInit, type VerifiedToken } from './tokens.js'
export { hashPassword, verifyPassword } from './password.js'
export { httpUpstream, inProcessUpstream, remoteRevocationCheck, type HttpUpstreamInit, type Upstream, type UpstreamRequest, type UpstreamResponse } from './upstream.js'
export { HEADER_INTERNAL, HEADER_TOKEN_EXP, HEADER_TOKEN_ID, HEADER_USER } from './http.js'
