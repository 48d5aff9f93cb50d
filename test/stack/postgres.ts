/**
 * A private PostgreSQL server for tests: found on this machine (PATH, then /usr/lib/postgresql/<version>/bin),
 * initialised in a temporary directory, listening on a free loopback port, with one database created.
 * Root may not run the server, so as root every command runs as the `postgres` user (`runuser`) in a directory
 * that user owns. When no server is installed, the error says what to install.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./harness";

const run = promisify(execFile);

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/<database> (trust authentication: loopback only). */
  databaseUrl: string;
  port: number;
  directory: string;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
}

function postgresMissing(env: NodeJS.ProcessEnv): string {
  const where = env.POSTGRES_BIN_DIR ? `in POSTGRES_BIN_DIR (${env.POSTGRES_BIN_DIR})` : "on PATH or under /usr/lib/postgresql/*/bin";
  return [
    `PostgreSQL is not installed: initdb and pg_ctl were not found ${where}.`,
    "The Postgres stack test starts its own private server from those binaries. Install them:",
    "  Debian/Ubuntu: sudo apt-get install -y postgresql",
    "  Fedora:        sudo dnf install -y postgresql-server",
    "  macOS:         brew install postgresql@16",
    "or point POSTGRES_BIN_DIR at the directory holding initdb and pg_ctl (SKIP_POSTGRES_TESTS=1 skips the test).",
  ].join("\n");
}

/** The directory holding initdb and pg_ctl, or undefined. */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const holds = (directory: string) => existsSync(path.join(directory, "initdb")) && existsSync(path.join(directory, "pg_ctl"));
  if (env.POSTGRES_BIN_DIR) return holds(env.POSTGRES_BIN_DIR) ? env.POSTGRES_BIN_DIR : undefined;
  for (const directory of (env.PATH ?? "").split(path.delimiter)) {
    if (directory && holds(directory)) return directory;
  }
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((name) => /^\d+(\.\d+)?$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const directory = path.join(debian, version, "bin");
      if (holds(directory)) return directory;
    }
  }
  return undefined;
}

async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

export async function startPostgres(options: { database?: string } = {}): Promise<PrivatePostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error(postgresMissing(process.env));
  const database = options.database ?? "chainbill";
  const directory = await mkdtemp(path.join(os.tmpdir(), "chainbill-pg-"));
  const dataDir = path.join(directory, "data");
  const logFile = path.join(directory, "postgres.log");

  // initdb refuses to run as root: run the server as the unprivileged `postgres` user, in a directory it owns.
  const asRoot = process.getuid?.() === 0;
  let wrap = (command: string, args: string[]): [string, string[]] => [command, args];
  if (asRoot) {
    const ids = await userIds("postgres");
    if (!ids) {
      throw new Error("Running as root, and there is no `postgres` user to run the server as (installing Debian's postgresql package creates it).");
    }
    await chown(directory, ids.uid, ids.gid);
    wrap = (command, args) => ["runuser", ["-u", "postgres", "--", command, ...args]];
  }
  const exec = async (command: string, args: string[]) => {
    const [file, fileArgs] = wrap(path.join(bin, command), args);
    try {
      return await run(file, fileArgs, { cwd: directory, env: { ...process.env, LC_ALL: "C" } });
    } catch (error) {
      const { stderr, stdout } = error as { stderr?: string; stdout?: string };
      throw new Error(`${command} failed: ${(stderr || stdout || String(error)).trim()}`);
    }
  };

  await exec("initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"]);
  const port = await freePort();
  const settings = [
    "-c listen_addresses=127.0.0.1",
    `-p ${port}`,
    `-c unix_socket_directories=${directory}`,
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
    "-c max_connections=200",
  ].join(" ");
  await exec("pg_ctl", ["-D", dataDir, "-o", settings, "-l", logFile, "-w", "-t", "60", "start"]);

  // A test run that dies without calling stop() must not leave the server running.
  const [stopFile, stopArgs] = wrap(path.join(bin, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "stop"]);
  const stopOnExit = () => {
    try {
      execFileSync(stopFile, stopArgs, { stdio: "ignore" });
    } catch {
      // already stopped
    }
  };
  process.once("exit", stopOnExit);
  const stop = async () => {
    process.removeListener("exit", stopOnExit);
    await exec("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"]).catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
  };
  try {
    const { Client } = await import("pg");
    // pg_ctl -w returned once the server accepts connections.
    const admin = new Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}"`);
    await admin.end();
  } catch (error) {
    await stop();
    throw error;
  }
  return { databaseUrl: `postgres://postgres@127.0.0.1:${port}/${database}`, port, directory, stop };
}
