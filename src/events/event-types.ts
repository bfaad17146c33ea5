/** Every event type, in the order the README lists them. */
export const EVENT_TYPES = [
  'booking.confirmed',
  'booking.cancelled',
  'booking.rescheduled',
  'hold.created',
  'hold.confirmed',
  'hold.released',
  'hold.expired',
  'waitlist.joined',
  'waitlist.offered',
  'waitlist.accepted',
  'waitlist.declined',
  'waitlist.expired',
  'waitlist.left',
  'match.created',
  'match.updated',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** An event as the feed and the webhooks carry it: `data` is the resource after the change, as the API shows it. */
export interface DomainEvent {
  /** Unique, and the same on every redelivery (the webhook-id). */
  id: string;
  type: EventType;
  occurredAt: string;
  data: Record<string, unknown>;
}
