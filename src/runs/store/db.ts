/**
 * What a store function runs its statement on: the pool, a client of the caller's transaction
 * (so a record commits with the work it describes), or a connection of its own.
 */
import type pg from 'pg';

export type Db = Pick<pg.Pool, 'query'> | Pick<pg.ClientBase, 'query'>;
