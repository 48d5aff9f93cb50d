/**
 * Live status for the hosted checkout: one poller per watched invoice, however many pages watch it. Each second
 * it reads the customer's view (the same read `GET /pay/{id}/view` makes) and hands it to every subscriber when
 * anything but the clock changed. Streams are capped in number, so a crowd of open pages cannot exhaust the API.
 */
import type { CheckoutView } from "../../checkout/src/types";

export interface CheckoutLive {
  /** Calls `listener` with every changed view of `id` (first the current one); returns the unsubscribe function. */
  subscribe(id: string, listener: (view: CheckoutView) => void, onError: (error: unknown) => void): () => void;
  /** Open subscriptions, all invoices together. */
  size(): number;
  /** Whether another stream may open. */
  hasRoom(): boolean;
  stop(): void;
}

interface Watch {
  listeners: Set<{ listener: (view: CheckoutView) => void; onError: (error: unknown) => void }>;
  last?: CheckoutView;
  lastKey?: string;
  timer?: ReturnType<typeof setTimeout>;
  running: boolean;
}

/** The view without its clock reading: two views with the same key show the customer the same thing. */
function changeKey(view: CheckoutView): string {
  return JSON.stringify({ ...view, now: undefined });
}

export function createCheckoutLive(load: (id: string) => Promise<CheckoutView>, options: { intervalMs?: number; maxStreams?: number } = {}): CheckoutLive {
  const intervalMs = options.intervalMs ?? 1_000;
  const maxStreams = options.maxStreams ?? 2_000;
  const watches = new Map<string, Watch>();
  let streams = 0;
  let stopped = false;

  async function poll(id: string, watch: Watch): Promise<void> {
    if (watch.running || stopped) return;
    watch.running = true;
    try {
      const view = await load(id);
      const key = changeKey(view);
      if (key !== watch.lastKey) {
        watch.last = view;
        watch.lastKey = key;
        for (const { listener } of watch.listeners) listener(view);
      }
    } catch (error) {
      for (const { onError } of watch.listeners) onError(error);
    } finally {
      watch.running = false;
      if (watch.listeners.size > 0 && !stopped) watch.timer = setTimeout(() => void poll(id, watch), intervalMs);
    }
  }

  return {
    subscribe(id, listener, onError) {
      let watch = watches.get(id);
      const entry = { listener, onError };
      streams += 1;
      if (!watch) {
        watch = { listeners: new Set([entry]), running: false };
        watches.set(id, watch);
        void poll(id, watch);
      } else {
        watch.listeners.add(entry);
        if (watch.last) listener(watch.last);
      }
      const current = watch;
      return () => {
        if (!current.listeners.delete(entry)) return;
        streams -= 1;
        if (current.listeners.size === 0) {
          if (current.timer) clearTimeout(current.timer);
          watches.delete(id);
        }
      };
    },
    size: () => streams,
    hasRoom: () => streams < maxStreams,
    stop() {
      stopped = true;
      for (const watch of watches.values()) if (watch.timer) clearTimeout(watch.timer);
      watches.clear();
    },
  };
}
