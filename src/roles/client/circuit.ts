// The client's circuit under its former path, for the relay tests and the bench that
// import it from here; the code is in circuits/ (channel-pool, circuit, streams).
export { ChannelPool } from './circuits/channel-pool.js'
export { Circuit, type CircuitInit, type CircuitEvents } from './circuits/circuit.js'
export { CircuitError } from './circuits/circuit-error.js'
export { describeHop } from '../../onion/circuits/client-build.js'
