/** A pino-shaped logger that records what it is told, for asserting on log lines. */
import type { Logger } from "pino";

export interface LoggedLine {
  level: "info" | "warn" | "error";
  fields: Record<string, unknown>;
  message: string;
}

export function recordingLogger(): { logger: Logger; lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const at = (level: LoggedLine["level"]) => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, fields, message });
  };
  const logger = { info: at("info"), warn: at("warn"), error: at("error"), debug: () => undefined } as unknown as Logger;
  return { logger, lines };
}
