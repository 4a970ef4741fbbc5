/**
 * The process logger (pino). Errors are logged under one key, `err`, as the Error itself:
 * `log.warn({ err }, 'what failed')`. Its serializer keeps the type, code, message and stack, with
 * URL passwords redacted (a driver's message may carry a connection string).
 */
import { pino, type DestinationStream, type Logger } from 'pino';

/** Keys whose values never reach a log line, at any depth we log. */
const REDACT_KEYS = [
  'password',
  'passphrase',
  'privateKey',
  'private_key',
  'token',
  'secret',
  'apiKey',
  'authorization',
];
const REDACT_PATHS = REDACT_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/**
 * Replaces the password of any URL-looking connection string inside `text`: `scheme://user:pw@`,
 * the scheme-less `//:pw@` some libraries print, and `password=` parameters.
 */
export function redactUrls(text: string): string {
  return text
    .replace(/((?:\b[a-z][a-z0-9+.-]*:)?\/\/[^:/?#\s@]*):([^@\s]*)@/gi, '$1:***@')
    .replace(/([?&;\s](?:password|pass|pwd|passwd)=)[^&\s]*/gi, '$1***');
}

/** pino's `err` serializer, with URL passwords redacted from the message and the stack. */
export function serializeErr(err: unknown): unknown {
  if (!(err instanceof Error)) return typeof err === 'string' ? redactUrls(err) : err;
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  for (const key of ['message', 'stack'] as const) {
    if (typeof out[key] === 'string') out[key] = redactUrls(out[key]);
  }
  return out;
}

/**
 * Creates the process logger: JSON lines when stderr is not a TTY, pino-pretty when it is.
 * Logs go to stderr so that command output on stdout stays machine-readable.
 */
export function createLogger(
  level: string,
  pretty = process.stderr.isTTY === true,
  /** Where JSON lines go (stderr by default). */
  destination?: DestinationStream,
): Logger {
  const options = {
    level,
    redact: { paths: REDACT_PATHS, censor: '***' },
    serializers: { err: serializeErr },
    formatters: {
      log(obj: Record<string, unknown>) {
        for (const [k, v] of Object.entries(obj)) {
          if (typeof v === 'string' && v.includes('://')) obj[k] = redactUrls(v);
        }
        return obj;
      },
    },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? redactUrls(a) : a)),
        );
      },
    },
  };
  if (pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } },
    });
  }
  return pino(options, destination ?? pino.destination(2));
}
