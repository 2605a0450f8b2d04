import winston from 'winston';

export type AppLogger = winston.Logger;

/** JSON lines on stdout, one object per event. */
export function createLogger(level: string, defaultMeta: Record<string, unknown> = {}): AppLogger {
  return winston.createLogger({
    level,
    defaultMeta: { pid: process.pid, ...defaultMeta },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}
