import { useState, type FormEvent } from 'react';
import { ApiClient } from '../api/client';
import type { LoginResponse, WhoAmI } from '../api/types';
import { ErrorBox } from '../components/ui';
import type { StoredSession } from '../lib/session';

export function LoginPage({ api, notice, onLogin }: { api: ApiClient; notice: string | null; onLogin: (s: StoredSession) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState<'login' | 'token' | null>(null);
  const [error, setError] = useState<unknown>();

  const login = async (e: FormEvent) => {
    e.preventDefault();
    setBusy('login');
    setError(undefined);
    try {
      const r = await api.request<LoginResponse>('POST', '/v1/auth/login', { email, password }, { auth: false });
      onLogin({ token: r.accessToken, kind: 'login', email: r.user.email });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const useToken = async (e: FormEvent) => {
    e.preventDefault();
    setBusy('token');
    setError(undefined);
    const t = token.trim();
    try {
      // Check the token before keeping it, so a typo is reported here in the API's words.
      const who = await new ApiClient(() => ({ token: t, project: null })).get<WhoAmI>('/v1/auth/whoami');
      onLogin({ token: t, kind: 'api-token', project: who.kind === 'token' ? who.project : undefined, email: who.kind === 'user' ? who.email : undefined });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <main className="login" id="main">
      <h1>Berth</h1>
      {notice ? (
        <p className="notice" role="status">
          Your session ended: {notice}
        </p>
      ) : null}
      <ErrorBox error={error} />
      <form onSubmit={login} aria-labelledby="login-title" className="card">
        <h2 id="login-title">Sign in</h2>
        <label>
          <span className="label-text">Email</span>
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          <span className="label-text">Password</span>
          <input type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={busy !== null}>
          {busy === 'login' ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <form onSubmit={useToken} aria-labelledby="token-title" className="card">
        <h2 id="token-title">Use an API token</h2>
        <label>
          <span className="label-text">API token</span>
          <input type="password" name="token" autoComplete="off" spellCheck={false} required value={token} onChange={(e) => setToken(e.target.value)} />
        </label>
        <p className="hint">The token acts in its own project with its own role (for example a read-only viewer token). It is kept only in this browser tab.</p>
        <button type="submit" disabled={busy !== null}>
          {busy === 'token' ? 'Checking…' : 'Use token'}
        </button>
      </form>
    </main>
  );
}
