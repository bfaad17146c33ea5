// Jest runs the TypeScript sources through SWC (decorator metadata on) and transforms the
// ESM-only packages (@nestjs, jose, and content-disposition of @fastify/static) to CommonJS; plain ts-jest cannot load them.
const fs = require('node:fs');
const swcConfig = JSON.parse(fs.readFileSync(`${__dirname}/.swcrc`, 'utf8'));

/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.(t|j)s$': ['@swc/jest', { ...swcConfig, swcrc: false }] },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|jose|content-disposition)/)'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: Number(process.env.TEST_TIMEOUT_MS ?? 60_000),
  maxWorkers: process.env.TEST_WORKERS ?? 2,
  // A failing test must not leave the run hanging on a connection it could not close;
  // look for leaks with --detectOpenHandles.
  forceExit: true,
};
