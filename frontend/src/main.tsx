import '@livekit/components-styles';
import './styles.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { ConfigError, readConfig } from './config';
import type { AuthService } from './lib/auth';

const root = document.getElementById('root');
if (root === null) throw new Error('index.html lacks the #root element');

function renderConfigError(err: ConfigError) {
  return (
    <main className="app">
      <section className="error-panel" role="alert" data-testid="error-message" data-error-kind="config">
        <h1>This page is misconfigured</h1>
        <p>{err.message}. Fix it in the environment (see .env.example) and rebuild.</p>
      </section>
    </main>
  );
}

async function page() {
  try {
    const config = readConfig(import.meta.env);
    let auth: AuthService | null = null;
    if (config.auth !== null) {
      // supabase-js is a chunk of its own, loaded only by pages with sign-in.
      const { supabaseAuth } = await import('./lib/supabaseAuth');
      auth = supabaseAuth(config.auth);
    }
    return <App config={config} auth={auth} />;
  } catch (err) {
    if (err instanceof ConfigError) return renderConfigError(err);
    throw err;
  }
}

const reactRoot = createRoot(root);
void page().then((content) => reactRoot.render(<StrictMode>{content}</StrictMode>));
