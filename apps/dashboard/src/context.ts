import { createContext, useContext } from 'react';
import type { ApiClient } from './api/client';
import type { Project, Role } from './api/types';
import type { Route } from './lib/route';
import type { Permissions } from './lib/session';

export interface AppState {
  api: ApiClient;
  project: string;
  projects: Project[];
  role: Role | null;
  can: Permissions;
  navigate: (r: Route) => void;
  /** signed in as a user (not with an API token): may create projects */
  user: boolean;
  /** re-read `GET /v1/projects` (after creating one) */
  reloadProjects: () => void;
  switchProject: (slug: string) => void;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const s = useContext(AppContext);
  if (!s) throw new Error('useApp outside AppContext');
  return s;
}
