/**
 * Webhook dispatch and relay off: the default of every service a test starts. They query every
 * 250 ms, which would show up in tests that watch the service's sessions, locks, pool and
 * COMMITs. The webhook tests turn them on.
 */
export const QUIET_WEBHOOKS = { WEBHOOK_DISPATCH_INTERVAL_MS: '0', WEBHOOK_RELAY_INTERVAL_MS: '0' };
