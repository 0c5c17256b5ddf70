import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../sdk/protocol/errors.js';
import { openStore, redactUrl, resolveStoreOptions } from '../../../host/store/sql.js';

describe('store options', () => {
  test('uses the embedded database in .cwh of the working directory by default', () => {
    const resolved = resolveStoreOptions({}, {});
    expect(resolved.databaseUrl).toBeNull();
    expect(resolved.dataDir).toBe(path.resolve(process.cwd(), '.cwh'));
    expect(resolved.maxConnections).toBe(4);
  });

  test.each([
    ['DATABASE_URL from the environment', {}, { DATABASE_URL: 'postgres://a@h/db' }, 'postgres://a@h/db'],
    ['an empty DATABASE_URL as unset', {}, { DATABASE_URL: '' }, null],
    [
      'the option over the environment',
      { databaseUrl: 'postgresql://o@h/db' },
      { DATABASE_URL: 'postgres://e@h/db' },
      'postgresql://o@h/db',
    ],
  ])('takes %s', (_case, options, env, expected) => {
    expect(resolveStoreOptions(options, env).databaseUrl).toBe(expected);
  });

  test.each([
    [{ databaseUrl: 'mysql://u:pw@h/db' }, 'Expected `DATABASE_URL` to be a postgres:// URL, got "mysql://u:***@h/db"'],
    [{ databaseUrl: 'not a url' }, 'Expected `DATABASE_URL` to be a postgres:// URL, got "not a url"'],
    [{ maxConnections: 0 }, 'Expected `maxConnections` to be an integer from 1 to 100, got 0'],
  ])('rejects %o with a ConfigError', (options, message) => {
    expect(() => resolveStoreOptions(options, {})).toThrow(ConfigError);
    expect(() => resolveStoreOptions(options, {})).toThrow(message);
  });

  test('redacts the password of a connection URL', () => {
    expect(redactUrl('postgres://user:s3cret@127.0.0.1:5432/db')).toBe('postgres://user:***@127.0.0.1:5432/db');
    expect(redactUrl('postgres://user@127.0.0.1/db')).toBe('postgres://user@127.0.0.1/db');
  });

  test('fails to open an unreachable Postgres without showing its password', async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const error = await openStore({ databaseUrl: 'postgres://user:s3cret@127.0.0.1:1/db' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^cannot connect to Postgres at postgres:\/\/user:\*\*\*@127\.0\.0\.1:1\/db: /,
    );
    expect((error as Error).message).not.toContain('s3cret');
  });
});
