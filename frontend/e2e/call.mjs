#!/usr/bin/env node
// One voice call through the voicefleet page in real Chromium, with a WAV file as microphone.
//
// Prints one JSON object on stdout with what the page showed (states, transcript, agent audio,
// timings, screenshots) and exits 0, or prints the same object with `ok: false` and `error`
// and exits 1 when a step does not happen in time. Progress goes to stderr. Every wait is
// bounded. Uses the system's Chromium through playwright-core; it never downloads a browser.

import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const USAGE = `usage: node e2e/call.mjs --url URL --screenshots DIR [options]
  --wav FILE               microphone input (16-bit PCM WAV; Chromium loops it)
  --mode call|token-error|signed-out|drop|full-reconnect
                           a whole call (default), a failing token request then retry, a
                           page with sign-in and no session: it must ask to sign in, a call
                           whose browser goes offline for --outage seconds mid-call, or one
                           whose LiveKit client reconnects fully mid-call (needs a page built
                           with VITE_E2E_HOOKS=true)
  --outage SECONDS         drop mode: how long the browser stays offline (default 5)
  --session FILE           JSON {"storageKey", "session"}: put the session in localStorage where
                           supabase-js keeps it before the page loads; the call then ends with
                           Sign out
  --pause-after STEP       after STEP, print "paused after STEP" on stderr and wait for a line
                           on stdin before going on (token-error mode: retry only if paused)
  --timeout SECONDS        limit of each wait (default 30)
  --pause-timeout SECONDS  limit of a pause (default 90)
  --viewport WxH           page size (default 375x800)
  --chromium PATH          browser (default /usr/bin/chromium)`;

const CHROMIUM_FLAGS = [
  '--no-sandbox', // tests run as root in containers
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--use-fake-ui-for-media-stream', // grant the microphone without a prompt
  '--use-fake-device-for-media-stream',
];

// Peak RMS of the agent's received audio above which it counts as heard speech (full scale 1).
const AUDIBLE_LEVEL = 0.01;

class StepError extends Error {}

function options() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      wav: { type: 'string' },
      screenshots: { type: 'string' },
      mode: { type: 'string', default: 'call' },
      outage: { type: 'string', default: '5' },
      session: { type: 'string' },
      'pause-after': { type: 'string' },
      timeout: { type: 'string', default: '30' },
      'pause-timeout': { type: 'string', default: '90' },
      viewport: { type: 'string', default: '375x800' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
    },
  });
  const [width, height] = values.viewport.split('x').map(Number);
  const opts = {
    url: values.url,
    wav: values.wav,
    screenshots: values.screenshots,
    mode: values.mode,
    outageMs: Number(values.outage) * 1000,
    session: values.session,
    pauseAfter: values['pause-after'],
    timeoutMs: Number(values.timeout) * 1000,
    pauseTimeoutMs: Number(values['pause-timeout']) * 1000,
    viewport: { width, height },
    chromium: values.chromium,
  };
  const problems = [
    !opts.url && '--url is required',
    !opts.screenshots && '--screenshots is required',
    !['call', 'token-error', 'signed-out', 'drop', 'full-reconnect'].includes(opts.mode) &&
      '--mode must be call, token-error, signed-out, drop or full-reconnect',
    ['call', 'drop', 'full-reconnect'].includes(opts.mode) && !opts.wav && '--wav is required for a call',
    !(opts.outageMs > 0) && '--outage must be positive',
    !(opts.timeoutMs > 0 && opts.pauseTimeoutMs > 0) && '--timeout values must be positive',
    !(width > 0 && height > 0) && '--viewport must be WxH',
  ].filter(Boolean);
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n${USAGE}\n`);
    process.exit(2);
  }
  return opts;
}

// Runs inside the page before its own scripts: records every state the page shows and
// measures the loudness of the remote audio that the page plays.
function installMonitor(audibleLevel) {
  const record = {
    connection: [],
    agent: [],
    audio: { elements: 0, peak: 0, playingSince: null, audibleMs: 0 },
  };
  const SAMPLE_MS = 50;
  window.__voicefleetE2E = record;
  const note = (list, value) => {
    if (value && list.at(-1)?.state !== value) list.push({ state: value, at: Date.now() });
  };
  const readStates = () => {
    const get = (id) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-state');
    note(record.connection, get('connection-state'));
    note(record.agent, get('agent-state'));
  };
  const analysers = new Map();
  let context = null;
  const sampleAudio = () => {
    const elements = [...document.querySelectorAll('audio')];
    record.audio.elements = Math.max(record.audio.elements, elements.length);
    for (const element of elements) {
      const stream = element.srcObject;
      if (!(stream instanceof MediaStream) || analysers.has(stream)) continue;
      if (stream.getAudioTracks().length === 0) continue;
      // Created on the first remote track, after the Start click gave the page user activation.
      context ??= new AudioContext();
      void context.resume();
      const analyser = context.createAnalyser();
      analyser.fftSize = 2048;
      context.createMediaStreamSource(stream).connect(analyser);
      analysers.set(stream, { analyser, element, buffer: new Float32Array(analyser.fftSize) });
    }
    for (const { analyser, element, buffer } of analysers.values()) {
      analyser.getFloatTimeDomainData(buffer);
      const rms = Math.sqrt(buffer.reduce((sum, x) => sum + x * x, 0) / buffer.length);
      record.audio.peak = Math.max(record.audio.peak, rms);
      const playing = !element.paused && element.currentTime > 0;
      if (playing && rms > audibleLevel) {
        record.audio.playingSince ??= Date.now();
        record.audio.audibleMs += SAMPLE_MS;
      }
    }
  };
  document.addEventListener('DOMContentLoaded', () => {
    new MutationObserver(readStates).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-state'],
    });
    readStates();
    setInterval(sampleAudio, SAMPLE_MS);
  });
}

// Runs inside the page before its own scripts, once: stores the session as supabase-js would.
function storeSession({ storageKey, session }) {
  if (sessionStorage.getItem('voicefleet-e2e-session-stored') !== null) return;
  sessionStorage.setItem('voicefleet-e2e-session-stored', 'yes');
  localStorage.setItem(storageKey, JSON.stringify(session));
}

function lines(selector) {
  return [...document.querySelectorAll(selector)].map((li) => ({
    speaker: li.getAttribute('data-speaker'),
    final: li.getAttribute('data-final') === 'true',
    kind: li.getAttribute('data-kind'),
    text: li.querySelector('.line-text')?.textContent?.trim() ?? '',
  }));
}

function agentIdentity() {
  return (
    document.querySelector('[data-testid="participant"][data-role="agent"]')?.getAttribute('data-identity') ??
    null
  );
}

function agentLines() {
  return document.querySelectorAll('[data-testid="transcript-line"][data-speaker="agent"][data-final="true"]')
    .length;
}

function errorShown() {
  const node = document.querySelector('[data-testid="error-message"]');
  const text = (selector) => node.querySelector(selector)?.textContent.trim() ?? '';
  return { kind: node.getAttribute('data-error-kind'), title: text('h2'), message: text('p') };
}

class Call {
  constructor(opts, page, report) {
    this.opts = opts;
    this.page = page;
    this.report = report;
    this.started = Date.now();
    this.shot = 0;
  }

  elapsed() {
    return Number(((Date.now() - this.started) / 1000).toFixed(3));
  }

  async step(name) {
    this.shot += 1;
    const file = path.join(this.opts.screenshots, `${String(this.shot).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    this.report.steps.push({ name, atSeconds: this.elapsed(), screenshot: file });
    process.stderr.write(`call.mjs: ${name} after ${this.elapsed()}s\n`);
    if (this.opts.pauseAfter === name) await this.pause(name);
  }

  async pause(name) {
    process.stderr.write(`call.mjs: paused after ${name}; send a line on stdin to go on\n`);
    const input = createInterface({ input: process.stdin });
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new StepError(
                `nobody resumed the pause after ${name} within ${this.opts.pauseTimeoutMs / 1000}s`,
              ),
            ),
          this.opts.pauseTimeoutMs,
        );
        input.once('line', () => resolve(clearTimeout(timer)));
        input.once('close', () => resolve(clearTimeout(timer)));
      });
    } finally {
      input.close();
    }
  }

  // Waits until `predicate(arg)` holds in the page; `what` names the wait when it times out.
  async until(what, predicate, arg) {
    try {
      await this.page.waitForFunction(predicate, arg, { timeout: this.opts.timeoutMs, polling: 100 });
    } catch (error) {
      if (error?.name !== 'TimeoutError') throw error;
      throw new StepError(`timed out after ${this.opts.timeoutMs / 1000}s waiting for ${what}`);
    }
  }

  async testId(what, id, attributes = {}) {
    const selector = `[data-testid="${id}"]${Object.entries(attributes)
      .map(([name, value]) => `[${name}="${value}"]`)
      .join('')}`;
    await this.until(what, (s) => document.querySelector(s) !== null, selector);
  }

  async click(id) {
    await this.page.getByTestId(id).click({ timeout: this.opts.timeoutMs });
  }

  async open() {
    await this.page.goto(this.opts.url, { timeout: this.opts.timeoutMs });
    await this.testId('the Start button', 'start-button');
    if (this.opts.session) {
      this.report.signedInAs = await this.page.evaluate(() => {
        const node = document.querySelector('[data-testid="signed-in-as"]');
        return node && { text: node.textContent.trim(), userId: node.getAttribute('data-user-id') };
      });
    }
    await this.step('loaded');
  }

  // The page with sign-in configured and no session: it must say what to do and ask for nothing.
  async signedOut() {
    await this.page.goto(this.opts.url, { timeout: this.opts.timeoutMs });
    await this.testId('the sign-in form', 'sign-in-form');
    // Time for anything the page might still fetch on its own.
    await this.page.waitForTimeout(2000);
    this.report.signedOut = await this.page.evaluate(() => {
      const text = (id) => document.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null;
      return {
        heading: document.querySelector('#sign-in-title')?.textContent.trim() ?? null,
        notice: text('signed-out-notice'),
        startButton: document.querySelector('[data-testid="start-button"]') !== null,
        guestButton: document.querySelector('[data-testid="guest-button"]') !== null,
      };
    });
    await this.step('signed-out');
  }

  async signOut() {
    // The page clears the conversation on sign-out: keep what the call showed.
    this.report.transcript = await this.page.evaluate(lines, '[data-testid="transcript"] li');
    await this.click('sign-out-button');
    await this.testId('the sign-in form after signing out', 'sign-in-form');
    await this.step('signed-out');
  }

  // Clicks Start (or Retry) and waits until the page is connected and the agent has joined.
  async join(button) {
    await this.click(button);
    await this.testId('connection state "connected"', 'connection-state', { 'data-state': 'connected' });
    await this.step('connected');
    await this.until('the agent to join (agent state "listening")', () =>
      window.__voicefleetE2E.agent.some((s) => s.state === 'listening'),
    );
    this.report.participants = await this.page.evaluate(() =>
      [...document.querySelectorAll('[data-testid="participant"]')].map((li) => ({
        role: li.getAttribute('data-role'),
        identity: li.getAttribute('data-identity'),
        name: li.textContent.trim(),
      })),
    );
    await this.step('agent-joined');
  }

  async converse() {
    await this.until('a final transcript line of the user', () =>
      [
        ...document.querySelectorAll(
          '[data-testid="transcript-line"][data-speaker="user"][data-final="true"]',
        ),
      ].some((li) => li.querySelector('.line-text')?.textContent.trim()),
    );
    await this.step('user-transcribed');
    await this.until('a transcript line of the agent', () =>
      [...document.querySelectorAll('[data-testid="transcript-line"][data-speaker="agent"]')].some((li) =>
        li.querySelector('.line-text')?.textContent.trim(),
      ),
    );
    await this.until('the agent audio to play', () => window.__voicefleetE2E.audio.playingSince !== null);
    await this.step('agent-answering');
    // The agent's line grows with its audio and is final once the whole answer has played.
    await this.until(
      "the agent's answer to finish (a final agent line)",
      () =>
        document.querySelector('[data-testid="transcript-line"][data-speaker="agent"][data-final="true"]') !==
        null,
    );
    await this.step('agent-answered');
    this.report.transcriptDuringCall = await this.page.evaluate(lines, '[data-testid="transcript"] li');
  }

  async end() {
    await this.click('end-button');
    await this.testId('the call-ended notice', 'call-ended');
    await this.testId('connection state "disconnected"', 'connection-state', {
      'data-state': 'disconnected',
    });
    await this.testId('the Start button after the call', 'start-button');
    await this.step('ended');
  }

  async tokenError() {
    this.started = Date.now();
    await this.click('start-button');
    await this.testId('the error message', 'error-message');
    await this.testId('the Retry button', 'retry-button');
    this.report.error = await this.page.evaluate(() => {
      const node = document.querySelector('[data-testid="error-message"]');
      const text = (selector) => node.querySelector(selector)?.textContent.trim() ?? '';
      return { kind: node.getAttribute('data-error-kind'), title: text('h2'), message: text('p') };
    });
    await this.step('token-error');
    if (this.opts.pauseAfter !== 'token-error') return;
    // Whoever resumed the pause brought the token service back: Retry must now get through.
    await this.join('retry-button');
    await this.end();
  }

  // The connection breaks mid-call: the browser goes offline for --outage seconds (its signal
  // connection drops), or LiveKit's client runs its full-reconnect scenario (a new peer
  // connection and a new join as the same participant). The page must say it is
  // reconnecting; then either the same call goes on with the same agent, or, once the
  // client has given up, the call ends with a message saying so.
  async interrupt() {
    const agentBefore = await this.page.evaluate(agentIdentity);
    if (this.opts.mode === 'drop') {
      await this.page.context().setOffline(true);
    } else {
      await this.page.evaluate(() => window.__voicefleetRoom.simulateScenario('full-reconnect'));
    }
    await this.testId('connection state "reconnecting"', 'connection-state', {
      'data-state': 'reconnecting',
    });
    await this.step('reconnecting');
    if (this.opts.mode === 'drop') {
      await this.page.waitForTimeout(this.opts.outageMs);
      await this.page.context().setOffline(false);
      await this.step('online');
    }
    const outcome = await Promise.race([
      this.testId('connection state "connected"', 'connection-state', { 'data-state': 'connected' }).then(
        () => 'reconnected',
      ),
      this.testId('an error message', 'error-message').then(() => 'ended'),
    ]);
    this.report.interruption = { agentBefore, outcome };
    if (outcome === 'ended') {
      this.report.error = await this.page.evaluate(errorShown);
      await this.step('ended-by-outage');
      return;
    }
    await this.step('reconnected');
    // The agent answers again: Chromium's fake microphone loops the WAV, so the caller speaks.
    const answersBefore = await this.page.evaluate(agentLines);
    await this.until(
      'a new final agent line after reconnecting',
      (before) =>
        document.querySelectorAll('[data-testid="transcript-line"][data-speaker="agent"][data-final="true"]')
          .length > before,
      answersBefore,
    );
    this.report.interruption.agentAfter = await this.page.evaluate(agentIdentity);
    await this.step('answered-after-reconnecting');
    await this.end();
  }

  async run() {
    if (this.opts.mode === 'signed-out') {
      await this.signedOut();
      return;
    }
    await this.open();
    if (this.opts.mode === 'token-error') {
      await this.tokenError();
      return;
    }
    this.started = Date.now();
    await this.join('start-button');
    await this.converse();
    if (['drop', 'full-reconnect'].includes(this.opts.mode)) {
      await this.interrupt();
      return;
    }
    await this.end();
    if (this.opts.session) await this.signOut();
  }
}

async function observe(page, report, started) {
  const seen = await page.evaluate(() => window.__voicefleetE2E);
  const since = (at) => Number(((at - started) / 1000).toFixed(3));
  report.connectionStates = seen.connection.map((s) => ({ state: s.state, atSeconds: since(s.at) }));
  report.agentStates = seen.agent.map((s) => ({ state: s.state, atSeconds: since(s.at) }));
  report.agentAudio = {
    audioElements: seen.audio.elements,
    peakLevel: Number(seen.audio.peak.toFixed(4)),
    audibleAtSeconds: seen.audio.playingSince === null ? null : since(seen.audio.playingSince),
    audibleSeconds: seen.audio.audibleMs / 1000,
  };
  report.transcript ??= await page.evaluate(lines, '[data-testid="transcript"] li');
}

async function main() {
  const opts = options();
  await mkdir(opts.screenshots, { recursive: true });
  const report = {
    ok: false,
    mode: opts.mode,
    url: opts.url,
    viewport: opts.viewport,
    steps: [],
    console: [],
    httpErrors: [],
    requests: [],
  };
  const args = [...CHROMIUM_FLAGS];
  if (opts.wav) args.push(`--use-file-for-fake-audio-capture=${opts.wav}`);
  const browser = await chromium
    .launch({ executablePath: opts.chromium, args, timeout: opts.timeoutMs })
    .catch((error) => {
      process.stderr.write(`call.mjs: Chromium (${opts.chromium}) did not start: ${error.message}\n`);
      process.exit(1);
    });
  let call = null;
  try {
    report.browser = browser.version();
    const context = await browser.newContext({ viewport: opts.viewport });
    await context.grantPermissions(['microphone']);
    await context.addInitScript(installMonitor, AUDIBLE_LEVEL);
    if (opts.session) {
      await context.addInitScript(storeSession, JSON.parse(await readFile(opts.session, 'utf8')));
    }
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && report.console.push(m.text()));
    page.on('pageerror', (e) => report.console.push(`page error: ${e.message}`));
    page.on('response', (r) => r.status() >= 400 && report.httpErrors.push(`${r.status()} ${r.url()}`));
    // Every request the page's own code makes (token, sign-in), with the credentials it sent.
    page.on('request', (r) => {
      if (!['fetch', 'xhr'].includes(r.resourceType())) return;
      const entry = { method: r.method(), url: r.url(), authorization: null };
      report.requests.push(entry);
      r.allHeaders().then(
        (headers) => (entry.authorization = headers.authorization ?? null),
        () => undefined,
      );
    });
    call = new Call(opts, page, report);
    try {
      await call.run();
      report.ok = true;
    } catch (error) {
      report.error = { ...report.error, failure: error instanceof StepError ? error.message : String(error) };
      const file = path.join(opts.screenshots, 'failure.png');
      await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      report.failureScreenshot = file;
    }
    await observe(page, report, call.started).catch((e) => report.console.push(`observe: ${e.message}`));
  } finally {
    await browser.close();
  }
  report.totalSeconds = call?.elapsed() ?? 0;
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!report.ok) {
    process.stderr.write(`call.mjs: FAILED: ${report.error.failure}\n`);
    process.exit(1);
  }
}

await main();
