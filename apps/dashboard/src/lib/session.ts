import type { Project, Role } from '../api/types';

/** What survives a reload: kept in sessionStorage (per tab, gone when the tab closes), never localStorage. */
export interface StoredSession {
  token: string;
  kind: 'login' | 'api-token';
  email?: string;
  project?: string;
}

const KEY = 'berth.session';

export function loadSession(storage: Pick<Storage, 'getItem'>): StoredSession | null {
  try {
    const raw = storage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as StoredSession;
    return typeof s.token === 'string' && s.token && (s.kind === 'login' || s.kind === 'api-token') ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(storage: Pick<Storage, 'setItem' | 'removeItem'>, s: StoredSession | null): void {
  if (s) storage.setItem(KEY, JSON.stringify(s));
  else storage.removeItem(KEY);
}

export interface Permissions {
  /** deploy, roll back, scale, create services, resolve images */
  deploy: boolean;
  /** drain / undrain nodes: admin of an operator project */
  manageNodes: boolean;
}

const RANK: Record<Role, number> = { viewer: 1, deployer: 2, admin: 3 };

/** The role the API reported for the chosen project decides which controls exist at all. */
export function permissionsFor(role: Role | null, projects: Pick<Project, 'operator' | 'role'>[]): Permissions {
  return {
    deploy: role !== null && RANK[role] >= RANK.deployer,
    manageNodes: projects.some((p) => p.operator && p.role === 'admin'),
  };
}

/**
 * The project to open: the one this tab already uses if still a member, else the one last used (in
 * any tab), else `default`, else the first listed — never just "the newest".
 */
export function pickProject(projects: Pick<Project, 'slug'>[], wanted: string | undefined, lastUsed?: string | null): string | null {
  for (const slug of [wanted, lastUsed, 'default']) if (slug && projects.some((p) => p.slug === slug)) return slug;
  return projects[0]?.slug ?? null;
}

const LAST_PROJECT = 'berth.lastProject';

/** The slug of the project last chosen: kept in localStorage (no secret in it) so a new tab opens on it. */
export function loadLastProject(storage: Pick<Storage, 'getItem'>): string | null {
  try {
    return storage.getItem(LAST_PROJECT);
  } catch {
    return null;
  }
}

export function saveLastProject(storage: Pick<Storage, 'setItem'>, slug: string): void {
  try {
    storage.setItem(LAST_PROJECT, slug);
  } catch {
    // storage unavailable: the next tab opens on `default`
  }
}
