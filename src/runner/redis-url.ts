/**
 * The forms REDIS_URL takes. A plain `redis://` or `rediss://` URL names one server, as ioredis reads
 * it. Two more name a group of servers, host:port pairs separated by commas (which WHATWG URLs
 * cannot hold, so they are read here):
 *
 *   redis+sentinel://[[user]:password@]host:port[,host:port…]/<master name>[?db=N&sentinel_password=…]
 *   redis+cluster://[[user]:password@]host:port[,host:port…]
 *
 * Sentinel: the sentinels are asked where the master is, and again after a failover. Cluster: the
 * nodes given are the seeds; BullMQ's keys then need a hash tag (src/runner/queue.ts).
 */

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'sentinel';
      sentinels: HostPort[];
      name: string;
      username?: string;
      password?: string;
      sentinelPassword?: string;
      db: number;
    }
  | { kind: 'cluster'; nodes: HostPort[]; username?: string; password?: string };

/** The URL schemes REDIS_URL accepts. */
export const REDIS_SCHEMES = ['redis:', 'rediss:', 'redis+sentinel:', 'redis+cluster:'];

const GROUP =
  /^(redis\+sentinel|redis\+cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/i;

/**
 * Reads REDIS_URL, or throws an Error whose message says what is wrong without quoting the value
 * (it may hold a password).
 */
export function parseRedisUrl(value: string): RedisTarget {
  if (!/^redis\+(sentinel|cluster):/i.test(value)) return { kind: 'single', url: value };
  const m = GROUP.exec(value);
  if (!m)
    throw new Error(
      'expected redis+sentinel://host:port[,host:port…]/master or redis+cluster://host:port[,host:port…]',
    );
  const [, scheme, user, pass, hostList, pathPart, query] = m;
  const hosts = hostList!.split(',').map((hp) => {
    const at = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(hp.trim());
    const port = at ? Number(at[2]) : NaN;
    if (!at || port < 1 || port > 65535)
      throw new Error(`'${hp.trim()}' is not host:port with a port from 1 to 65535`);
    return { host: at[1]!.replace(/^\[|\]$/g, ''), port };
  });
  const params = new URLSearchParams(query ?? '');
  const username = user ? decodeURIComponent(user) : undefined;
  const password = pass !== undefined && pass !== '' ? decodeURIComponent(pass) : undefined;
  const path = (pathPart ?? '').replace(/^\//, '');
  if (scheme!.toLowerCase() === 'redis+cluster') {
    if (path !== '') throw new Error('a redis+cluster:// URL has no path: a cluster has no databases but 0');
    return { kind: 'cluster', nodes: hosts, username, password };
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(path)) {
    throw new Error(
      'a redis+sentinel:// URL names the master after the hosts: redis+sentinel://host:port/mymaster',
    );
  }
  const db = params.get('db') ?? '0';
  if (!/^\d+$/.test(db)) throw new Error('the db parameter is not a number');
  return {
    kind: 'sentinel',
    sentinels: hosts,
    name: path,
    username,
    password,
    sentinelPassword: params.get('sentinel_password') ?? undefined,
    db: Number(db),
  };
}
