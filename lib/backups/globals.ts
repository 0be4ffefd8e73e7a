/**
 * What a stored globals file (`pg_dumpall --globals-only --no-role-passwords`) asks of a server, read into what a
 * disaster-recovery restore applies: each role with the statements that make it what it was (attributes, comment,
 * settings), and the role memberships. Tablespaces (their locations belong to the old machine) and per-database
 * role settings (their database may not exist yet) are not applied, and are named as skipped.
 *
 * The file is pg_dumpall's own output: one statement per line, identifiers double-quoted when they need it, and
 * psql meta-commands (`\restrict`) that are not SQL.
 */

export interface GlobalsRole {
  name: string;
  /** CREATE ROLE and what follows it for this role, in the file's order. */
  statements: string[];
}

export interface GlobalsPlan {
  roles: GlobalsRole[];
  /** `GRANT role TO member`, without `GRANTED BY` (the grantor may not exist where it is applied). */
  memberships: { role: string; member: string; statement: string }[];
  /** Statements not applied, as they were. */
  skipped: string[];
}

const IDENT = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const CREATE_ROLE = new RegExp(`^CREATE ROLE ${IDENT};$`);
const ROLE_STATEMENT = new RegExp(`^(?:ALTER ROLE|COMMENT ON ROLE|SECURITY LABEL FOR \\S+ ON ROLE) ${IDENT} `);
const MEMBERSHIP = new RegExp(`^GRANT ${IDENT} TO ${IDENT}(.*?)(?: GRANTED BY ${IDENT})?;$`);

/** A role name as pg_dumpall wrote it, unquoted. */
export const unquoteIdent = (ident: string) =>
  ident.startsWith('"') ? ident.slice(1, -1).replace(/""/g, '"') : ident.toLowerCase();

/** The statements of a globals file: comments, blank lines and psql meta-commands dropped. */
function statements(sql: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const line of sql.split('\n')) {
    if (current === '' && (line.trim() === '' || line.startsWith('--') || line.startsWith('\\'))) continue;
    current = current ? `${current}\n${line}` : line;
    if (line.trimEnd().endsWith(';')) {
      out.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

export function planGlobals(sql: string): GlobalsPlan {
  const plan: GlobalsPlan = { roles: [], memberships: [], skipped: [] };
  const byName = new Map<string, GlobalsRole>();
  for (const statement of statements(sql)) {
    if (/^SET \w+ = /.test(statement)) continue; // the session settings pg_dumpall starts with
    const created = CREATE_ROLE.exec(statement);
    if (created) {
      const role = { name: unquoteIdent(created[1]!), statements: [statement] };
      byName.set(role.name, role);
      plan.roles.push(role);
      continue;
    }
    const member = MEMBERSHIP.exec(statement);
    if (member) {
      const [, role, to, options] = member;
      plan.memberships.push({
        role: unquoteIdent(role!),
        member: unquoteIdent(to!),
        statement: `GRANT ${role} TO ${to}${options ?? ''};`,
      });
      continue;
    }
    const about = ROLE_STATEMENT.exec(statement);
    const role = about ? byName.get(unquoteIdent(about[1]!)) : undefined;
    if (role && !/ IN DATABASE /.test(statement)) role.statements.push(statement);
    else plan.skipped.push(statement);
  }
  return plan;
}
