import { Client } from 'pg';

/** A comparable description of the `public` schema: columns, constraints, indexes, enums. */
export interface Catalog {
  columns: string[];
  constraints: string[];
  indexes: string[];
  enums: string[];
}

export async function readCatalog(connectionString: string): Promise<Catalog> {
  const c = new Client({ connectionString });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query<{ x: string }>(sql)).rows.map((r) => r.x).sort();
    return {
      columns: await q(`
        select format('%s.%s %s%s%s', cl.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                      case when a.attnotnull then ' not null' else '' end,
                      coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')) as x
        from pg_attribute a
        join pg_class cl on cl.oid = a.attrelid
        join pg_namespace n on n.oid = cl.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where n.nspname = 'public' and cl.relkind = 'r' and a.attnum > 0 and not a.attisdropped
          and cl.relname <> '_prisma_migrations'`),
      constraints: await q(`
        select format('%s %s %s', cl.relname, con.conname, pg_get_constraintdef(con.oid)) as x
        from pg_constraint con
        join pg_class cl on cl.oid = con.conrelid
        join pg_namespace n on n.oid = cl.relnamespace
        where n.nspname = 'public' and cl.relname <> '_prisma_migrations'`),
      indexes: await q(`
        select indexdef as x from pg_indexes
        where schemaname = 'public' and tablename <> '_prisma_migrations'`),
      enums: await q(`
        select format('%s(%s)', t.typname, string_agg(e.enumlabel, ',' order by e.enumsortorder)) as x
        from pg_type t
        join pg_enum e on e.enumtypid = t.oid
        join pg_namespace n on n.oid = t.typnamespace
        where n.nspname = 'public'
        group by t.typname`),
    };
  } finally {
    await c.end();
  }
}

/** Lines present in one catalog and not the other, prefixed with - (only in a) or + (only in b). */
export function catalogDiff(a: Catalog, b: Catalog): string[] {
  const out: string[] = [];
  for (const k of Object.keys(a) as (keyof Catalog)[]) {
    const sa = new Set(a[k]);
    const sb = new Set(b[k]);
    for (const x of a[k]) if (!sb.has(x)) out.push(`- ${k}: ${x}`);
    for (const x of b[k]) if (!sa.has(x)) out.push(`+ ${k}: ${x}`);
  }
  return out;
}
