// One error handler for every fastify app: a MarshmelloError or a validation error
// becomes `{ error: { code, message } }` with a 4xx; anything else a generic 500
// that reveals nothing. Unknown routes get a JSON 404.
import type { FastifyInstance } from 'fastify'
import { isMarshmelloError } from '../../errors.js'

export function installErrorHandler (app: FastifyInstance): void {
  app.setErrorHandler((err: any, _req, reply) => {
    if (isMarshmelloError(err)) {
      return reply.code(err.statusCode).send({ error: { code: err.code, message: err.message } })
    }
    if (err.validation) {
      return reply.code(400).send({ error: { code: 'MM_ERR_VALIDATION', message: err.message } })
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    const code = status === 500 ? 'MM_ERR_INTERNAL' : (err.code ?? 'MM_ERR_BAD_REQUEST')
    return reply.code(status).send({ error: { code, message: status === 500 ? 'internal error' : err.message } })
  })
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: { code: 'MM_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0].slice(0, 200)}` } })
  })
}
