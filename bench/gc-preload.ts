/**
 * Preloaded into the servers under test (`node --expose-gc -r`): SIGUSR2 runs a full garbage
 * collection, so idle RSS is read without the garbage of the connection handshakes in it.
 * Bench-only; the server's own code is unchanged.
 */
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
});
