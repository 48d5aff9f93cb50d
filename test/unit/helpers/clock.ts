/**
 * A hand-driven `Date.now`, for the few behaviours measured in real minutes (token bucket refills, cache
 * lifetimes, the idempotency wait). Always restored, also when the body throws.
 */
export async function withClock<T>(start: number, body: (clock: { now: number; advance(ms: number): void }) => T | Promise<T>): Promise<T> {
  const real = Date.now;
  const clock = {
    now: start,
    advance(ms: number) {
      clock.now += ms;
    },
  };
  Date.now = () => clock.now;
  try {
    return await body(clock);
  } finally {
    Date.now = real;
  }
}
