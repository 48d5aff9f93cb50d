/**
 * Child-process supervision for the local stack: start a child with its output in a log file (or passed
 * through), wait for it to be ready, and stop every child cleanly on Ctrl-C or when one dies.
 *
 * Children run in their own process group, so Ctrl-C in the terminal reaches only the supervisor, which then
 * stops them in order (newest first: Ponder before the chain it reads) with each child's own stop signal.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createServer } from "node:net";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";

export interface Supervised {
  name: string;
  child: ChildProcess;
  logFile?: string;
  /** Signal that asks this child to shut down cleanly. */
  stopSignal: NodeJS.Signals;
  /** Resolves with the exit code when the child ends (null when a signal ended it). */
  exited: Promise<number | null>;
}

export interface ChildOptions extends SpawnOptions {
  /** stdout and stderr go to this file (appended) instead of the terminal. */
  logFile?: string;
  /** Signal for a clean stop; default SIGTERM (Ponder wants SIGINT). */
  stopSignal?: NodeJS.Signals;
  /** Called with each line of output (with `logFile`): to surface progress lines from a chatty child. */
  onLine?: (line: string) => void;
}

const running = new Set<Supervised>();
let stopping = false;

// A supervisor that dies without stopping its children must not leave them running.
process.once("exit", () => {
  for (const supervised of running) supervised.child.kill("SIGKILL");
});

/** Whether a shutdown is under way (children exiting then are expected, not failures). */
export function isStopping(): boolean {
  return stopping;
}

/** Whether a child of this name is running. */
export function isRunning(name: string): boolean {
  return [...running].some((supervised) => supervised.name === name);
}

/** Starts a child. With `logFile`, stdout and stderr go there; otherwise they are inherited. */
export function startChild(name: string, command: string, args: string[], options: ChildOptions = {}): Supervised {
  const { logFile, stopSignal = "SIGTERM", onLine, ...spawnOptions } = options;
  let stdio: SpawnOptions["stdio"] = ["ignore", "inherit", "inherit"];
  if (logFile) {
    mkdirSync(path.dirname(logFile), { recursive: true });
    stdio = ["ignore", "pipe", "pipe"];
  }
  const child = spawn(command, args, { stdio, detached: true, ...spawnOptions });
  if (logFile) {
    const sink = createWriteStream(logFile, { flags: "a" });
    child.stdout?.pipe(sink);
    child.stderr?.pipe(sink);
    if (onLine) {
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream!, crlfDelay: Infinity }).on("line", onLine);
      }
    }
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(-1));
  });
  const supervised: Supervised = { name, child, logFile, stopSignal, exited };
  running.add(supervised);
  void exited.then(() => running.delete(supervised));
  return supervised;
}

/** Stops a child with its stop signal, then SIGKILL after `graceMs`. */
export async function stopChild(supervised: Supervised, graceMs = 10_000): Promise<void> {
  if (supervised.child.exitCode !== null || supervised.child.signalCode !== null) return;
  supervised.child.kill(supervised.stopSignal);
  const timer = setTimeout(() => supervised.child.kill("SIGKILL"), graceMs);
  await supervised.exited;
  clearTimeout(timer);
}

/** Stops every running child, newest first (so consumers stop before what they depend on). */
export async function stopAll(log?: (line: string) => void): Promise<void> {
  stopping = true;
  for (const supervised of [...running].reverse()) {
    log?.(`stopping ${supervised.name} (${supervised.stopSignal})`);
    await stopChild(supervised);
  }
}

/** Polls `probe` until it returns true, or throws after `timeoutMs` with `what` in the message. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Runs a command to completion (output inherited unless `logFile`); throws when it fails. */
export async function runToCompletion(name: string, command: string, args: string[], options: ChildOptions = {}): Promise<void> {
  const supervised = startChild(name, command, args, options);
  const code = await supervised.exited;
  if (code !== 0 && !stopping) {
    throw new Error(`${name} failed (exit code ${code})${options.logFile ? `; see ${options.logFile}` : ""}`);
  }
}

/** Calls `onSignal` once on SIGINT/SIGTERM/SIGHUP (terminal closed), then exits with code 0. */
export function onShutdown(onSignal: () => Promise<void>): void {
  let handled = false;
  const handler = (signal: NodeJS.Signals) => {
    if (handled) return;
    handled = true;
    process.stderr.write(`\n${signal}: stopping…\n`);
    onSignal()
      .catch((error: unknown) => process.stderr.write(`error while stopping: ${String(error)}\n`))
      .finally(() => process.exit(0));
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  process.on("SIGHUP", handler);
}

/** A free TCP port on the loopback interface (for a child's server). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
    });
  });
}
