/** `npm run test:faults`: the fault-injection suite (kills the server and the database). */
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/test/faults/**/*.fault.ts'],
  maxWorkers: 1,
};
