import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiClient } from './api/client';
import type { Page, Project, WhoAmI } from './api/types';
import { ErrorBox, Link } from './components/ui';
import { AppContext, type AppState } from './context';
import { parseRoute, routePath, type Route } from './lib/route';
import { loadLastProject, loadSession, permissionsFor, pickProject, saveLastProject, saveSession, type StoredSession } from './lib/session';
import { ImagesPage } from './pages/images';
import { LoginPage } from './pages/login';
import { NodesPage } from './pages/nodes';
import { MembersPage, ProjectsPage, TokensPage } from './pages/projects';
import { ServicePage } from './pages/service';
import { ServicesPage } from './pages/services';

export function App() {
  const [session, setSession] = useState<StoredSession | null>(() => loadSession(sessionStorage));
  const [ended, setEnded] = useState<string | null>(null);
  const sessionRef = useRef(session);
  sessionRef.current = session;

  const update = useCallback((s: StoredSession | null) => {
    saveSession(sessionStorage, s);
    sessionRef.current = s;
    setSession(s);
  }, []);

  const api = useMemo(
    () =>
      new ApiClient(
        () => (sessionRef.current ? { token: sessionRef.current.token, project: sessionRef.current.project ?? null } : null),
        (e) => {
          setEnded(e.message);
          update(null);
        },
      ),
    [update],
  );

  if (!session) {
    return (
      <LoginPage
        api={api}
        notice={ended}
        onLogin={(s) => {
          setEnded(null);
          update(s);
        }}
      />
    );
  }
  return <Workspace api={api} session={session} onChange={update} />;
}

interface Identity {
  projects: Project[];
  who: WhoAmI;
}

function Workspace({ api, session, onChange }: { api: ApiClient; session: StoredSession; onChange: (s: StoredSession | null) => void }) {
  const [identity, setIdentity] = useState<Identity>();
  const [error, setError] = useState<unknown>();
  const [route, setRoute] = useState<Route>(() => parseRoute(location.pathname));
  const [identityTick, setIdentityTick] = useState(0);
  const mainRef = useRef<HTMLElement>(null);
  const sessionRef = useRef(session);
  sessionRef.current = session;

  useEffect(() => {
    let stop = false;
    Promise.all([api.get<WhoAmI>('/v1/auth/whoami'), api.get<Page<Project>>('/v1/projects?limit=200')])
      .then(([who, page]) => {
        if (stop) return;
        setIdentity({ who, projects: page.items });
        const s = sessionRef.current;
        const slug = pickProject(page.items, who.kind === 'token' ? who.project : s.project, loadLastProject(localStorage));
        if (slug !== (s.project ?? null)) onChange({ ...s, project: slug ?? undefined });
      })
      .catch((e) => !stop && setError(e));
    return () => {
      stop = true;
    };
    // Re-read identity when the credentials change (or a project was created), not when the project does.
  }, [api, session.token, identityTick]);

  // The project in use is remembered (its slug only) so the next visit opens on it.
  useEffect(() => {
    if (session.project && session.kind === 'login') saveLastProject(localStorage, session.project);
  }, [session.project, session.kind]);

  useEffect(() => {
    const onPop = () => setRoute(parseRoute(location.pathname));
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);

  const navigate = useCallback((r: Route) => {
    const path = routePath(r);
    if (path !== location.pathname) history.pushState(null, '', path);
    setRoute(r);
    // Move focus to the new page's heading so screen readers announce it.
    requestAnimationFrame(() => mainRef.current?.querySelector<HTMLElement>('h1')?.focus());
  }, []);

  const project = session.project ?? null;
  const state: AppState | null = useMemo(() => {
    if (!identity || !project) return null;
    const role = identity.projects.find((p) => p.slug === project)?.role ?? (identity.who.kind === 'token' ? identity.who.role : null);
    return {
      api,
      project,
      projects: identity.projects,
      role,
      can: permissionsFor(role, identity.projects),
      navigate,
      user: identity.who.kind === 'user',
      reloadProjects: () => setIdentityTick((t) => t + 1),
      switchProject: (slug: string) => onChange({ ...sessionRef.current, project: slug }),
    };
  }, [identity, project, api, navigate, onChange]);

  const signOut = () => onChange(null);

  if (error) {
    return (
      <main className="narrow" ref={mainRef}>
        <h1>Berth</h1>
        <ErrorBox error={error} title="Could not load your projects" />
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </main>
    );
  }
  if (!identity) return <p className="loading" role="status">Loading…</p>;
  if (!state) {
    return (
      <main className="narrow" ref={mainRef}>
        <h1>No project</h1>
        <p>You are not a member of any project yet. Ask an admin to add you.</p>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </main>
    );
  }

  const who = identity.who.kind === 'user' ? identity.who.email : `token ${identity.who.name}`;
  return (
    <AppContext.Provider value={state}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <div className="brand">Berth</div>
        <nav aria-label="Main">
          <ul>
            {(
              [
                [{ page: 'services' }, 'Services'],
                [{ page: 'images' }, 'Images'],
                [{ page: 'nodes' }, 'Nodes'],
                [{ page: 'projects' }, 'Projects'],
                [{ page: 'members' }, 'Members'],
                ...(state.role === 'admin' ? [[{ page: 'tokens' }, 'API tokens']] : []),
              ] as [Route, string][]
            ).map(([r, label]) => (
              <li key={label}>
                <Link to={r} className={route.page === r.page || (r.page === 'services' && route.page === 'service') ? 'current' : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="session">
          <label>
            <span className="label-text">Project</span>
            <select
              value={state.project}
              disabled={identity.projects.length < 2}
              onChange={(e) => {
                onChange({ ...session, project: e.target.value });
                navigate({ page: 'services' });
              }}
            >
              {identity.projects.map((p) => (
                <option key={p.slug} value={p.slug}>
                  {p.name === p.slug ? p.slug : `${p.name} (${p.slug})`}
                </option>
              ))}
            </select>
          </label>
          <span className="who" data-testid="who">
            {who} · <span data-testid="role">{state.role ?? 'no role'}</span>
          </span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={mainRef} key={state.project}>
        {route.page === 'services' && <ServicesPage />}
        {route.page === 'service' && <ServicePage name={route.name} tab={route.tab ?? 'overview'} />}
        {route.page === 'projects' && <ProjectsPage />}
        {route.page === 'members' && <MembersPage />}
        {route.page === 'tokens' && <TokensPage />}
        {route.page === 'images' && <ImagesPage />}
        {route.page === 'nodes' && <NodesPage />}
        {route.page === 'not-found' && (
          <>
            <h1 tabIndex={-1}>Not found</h1>
            <p>
              Nothing lives at <code>{route.path}</code>. <Link to={{ page: 'services' }}>Back to services</Link>
            </p>
          </>
        )}
      </main>
    </AppContext.Provider>
  );
}
