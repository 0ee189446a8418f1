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

/** The project to show: the stored one if still a member, else the first. */
export function pickProject(projects: Pick<Project, 'slug'>[], wanted: string | undefined): string | null {
  if (wanted && projects.some((p) => p.slug === wanted)) return wanted;
  return projects[0]?.slug ?? null;
}
