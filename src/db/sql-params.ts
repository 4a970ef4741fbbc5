/**
 * psql-style named parameters in SQL text:
 *
 *   :'name'   the value as a quoted literal          WHERE period = :'period'
 *   :"name"   the value as a quoted identifier       FROM :"schema".accounts
 *
 * The SQL is scanned the way PostgreSQL's lexer splits it, so nothing inside a string literal
 * ('…', E'…' with backslash escapes, U&'…'), a quoted identifier, a comment (-- … and nested
 * slash-star comments), a dollar-quoted body ($$…$$, $tag$…$tag$) or a `::type` cast is touched.
 * psql's bare `:name` (raw text substitution) is not supported, because it is an injection hole:
 * using it with a given parameter's name is an error that says which form to use.
 */
import { UserError } from '../errors.js';

/** Quotes a value as an SQL string literal, e.g. pg's `escapeLiteral`. */
export type EscapeFn = (value: string) => string;

/** Parameter values; numbers and booleans are written as their text. */
export type SqlParams = Readonly<Record<string, string | number | boolean | bigint>>;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * Quotes an identifier: wrapped in double quotes, inner ones doubled. NUL cannot appear in an
 * identifier, so it is refused.
 */
export function quoteIdentifier(name: string): string {
  if (name.includes('\0')) throw new UserError(`identifier ${JSON.stringify(name)} contains a NUL character`);
  if (name === '') throw new UserError('an identifier cannot be empty');
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Replaces `:'name'` and `:"name"` in `sql` with the quoted value of `params[name]`. A reference to a
 * parameter that was not given is a {@link UserError} naming it and listing those that were.
 */
export function bindNamedParams(
  sql: string,
  params: SqlParams,
  escapeLiteral: EscapeFn,
  escapeIdentifier: EscapeFn = quoteIdentifier,
): string {
  const given = (): string => {
    const names = Object.keys(params);
    return names.length > 0 ? names.join(', ') : '(none)';
  };
  const lookup = (name: string): string => {
    if (!Object.hasOwn(params, name)) {
      throw new UserError(
        `the query uses parameter '${name}', which was not given; parameters given: ${given()}`,
      );
    }
    const value = params[name];
    if (value === undefined || value === null) {
      throw new UserError(`parameter '${name}' has no value; parameters given: ${given()}`);
    }
    return String(value);
  };

  let out = '';
  let i = 0;
  let copied = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "'") {
      // A literal; E'…' (checked below) also knows backslash escapes.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !NAME_CHAR.test(sql[i - 2]!));
      i = skipQuoted(sql, i, "'", escapes);
    } else if (c === '"') {
      i = skipQuoted(sql, i, '"', false);
    } else if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (c === '$' && (i === 0 || !NAME_CHAR.test(sql[i - 1]!))) {
      i = skipDollarQuoted(sql, i);
    } else if (c === ':' && next === ':') {
      i += 2;
    } else if (c === ':' && (next === "'" || next === '"')) {
      const end = sql.indexOf(next, i + 2);
      const name = end < 0 ? '' : sql.slice(i + 2, end);
      if (name === '' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        // Not a parameter reference (e.g. a slice bound followed by a literal): leave it to PostgreSQL.
        i++;
        continue;
      }
      const value = lookup(name);
      out += sql.slice(copied, i) + (next === "'" ? escapeLiteral(value) : escapeIdentifier(value));
      i = end + 1;
      copied = i;
    } else if (c === ':' && next !== undefined && NAME_START.test(next) && (i === 0 || sql[i - 1] !== ':')) {
      let end = i + 1;
      while (end < n && NAME_CHAR.test(sql[end]!)) end++;
      const name = sql.slice(i + 1, end);
      if (Object.hasOwn(params, name)) {
        throw new UserError(
          `the query uses :${name}; write :'${name}' for a value or :"${name}" for an identifier (raw :${name} substitution is not supported)`,
        );
      }
      i = end;
    } else {
      i++;
    }
  }
  return out + sql.slice(copied);
}

/** Index after the closing quote of the quoted text starting at `start`; a doubled quote stays inside. */
function skipQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** Index after a block comment starting at `start`; PostgreSQL's block comments nest. */
function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}

/**
 * Index after a dollar-quoted string starting at `start` (`$$…$$` or `$tag$…$tag$`); `start + 1`
 * when the `$` does not open one (a positional parameter `$1`, or a `$` inside an identifier).
 */
function skipDollarQuoted(sql: string, start: number): number {
  const m = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(start, start + 66));
  if (!m) return start + 1;
  const tag = m[0];
  const end = sql.indexOf(tag, start + tag.length);
  return end < 0 ? sql.length : end + tag.length;
}

/** Names the SQL references as `:'name'` / `:"name"` that `params` does not give. */
export function unboundParams(sql: string, params: Record<string, string>): string[] {
  const missing = new Set<string>();
  const all = new Proxy(params, {
    getOwnPropertyDescriptor: (t, k) =>
      Object.getOwnPropertyDescriptor(t, k) ?? {
        value: '',
        configurable: true,
        enumerable: true,
        writable: true,
      },
    get: (t, k: string) => {
      if (!Object.hasOwn(t, k)) missing.add(k);
      return t[k] ?? '';
    },
  });
  try {
    bindNamedParams(
      sql,
      all,
      (v) => v,
      (v) => v,
    );
  } catch {
    // A raw :name the scan refused; the run reports it with its own words.
  }
  return [...missing];
}
