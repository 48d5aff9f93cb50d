/**
 * Child-process supervision for the local stack: start a child with its output in a log file (or passed
 * through), wait for it to be ready, and stop every child cleanly on Ctrl-C or when one dies.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";

export interface Supervised {
  name: string;
  child: ChildProcess;
  logFile?: string;
  /** Resolves with the exit code when the child ends. */
  exited: Promise<number | null>;
}

const running = new Set<Supervised>();
let stopping = false;

/** Whether a shutdown is under way (children exiting then are expected, not failures). */
export function isStopping(): boolean {
  return stopping;
}

/** Starts a child. With `logFile`, stdout and stderr go there; otherwise they are inherited. */
export function startChild(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions & { logFile?: string } = {},
): Supervised {
  const { logFile, ...spawnOptions } = options;
  let stdio: SpawnOptions["stdio"] = "inherit";
  if (logFile) {
    mkdirSync(path.dirname(logFile), { recursive: true });
    stdio = ["ignore", "pipe", "pipe"];
  }
  const child = spawn(command, args, { stdio, ...spawnOptions });
  if (logFile) {
    const sink = createWriteStream(logFile, { flags: "a" });
    child.stdout?.pipe(sink);
    child.stderr?.pipe(sink);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(-1));
  });
  const supervised: Supervised = { name, child, logFile, exited };
  running.add(supervised);
  void exited.then(() => running.delete(supervised));
  return supervised;
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(supervised: Supervised, graceMs = 5_000): Promise<void> {
  if (supervised.child.exitCode !== null || supervised.child.signalCode !== null) return;
  supervised.child.kill("SIGTERM");
  const timer = setTimeout(() => supervised.child.kill("SIGKILL"), graceMs);
  await supervised.exited;
  clearTimeout(timer);
}

/** Stops every running child, newest first (so consumers stop before what they depend on). */
export async function stopAll(): Promise<void> {
  stopping = true;
  for (const supervised of [...running].reverse()) await stopChild(supervised);
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

/** Runs a command to completion with inherited output; throws when it fails. */
export async function runToCompletion(name: string, command: string, args: string[], options: SpawnOptions = {}): Promise<void> {
  const supervised = startChild(name, command, args, options);
  const code = await supervised.exited;
  if (code !== 0) throw new Error(`${name} failed (exit code ${code})`);
}

/** Calls `onSignal` once on SIGINT/SIGTERM, then exits with `exitCode`. */
export function onShutdown(onSignal: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping…\n`);
    onSignal()
      .catch((error: unknown) => process.stderr.write(`error while stopping: ${String(error)}\n`))
      .finally(() => process.exit(0));
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
