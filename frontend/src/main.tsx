import '@livekit/components-styles';
import './styles.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { ConfigError, readConfig } from './config';

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

function page() {
  try {
    return <App config={readConfig(import.meta.env)} />;
  } catch (err) {
    if (err instanceof ConfigError) return renderConfigError(err);
    throw err;
  }
}

createRoot(root).render(<StrictMode>{page()}</StrictMode>);
