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
  --mode call|token-error|signed-out|drop|full-reconnect|invite
                           a whole call (default), a failing token request then retry, a
                           page with sign-in and no session: it must ask to sign in, a call
                           whose browser goes offline for --outage seconds mid-call, one
                           whose LiveKit client reconnects fully mid-call (needs a page built
                           with VITE_E2E_HOOKS=true), or a call whose caller invites a second
                           one: a second browser opens the invite link, joins and speaks
  --invitee-wav FILE       invite mode: the second caller's microphone input
  --invitee-session FILE   invite mode: the second caller's session, as --session
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

const MODES = ['call', 'token-error', 'signed-out', 'drop', 'full-reconnect', 'invite'];

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
      'invitee-wav': { type: 'string' },
      'invitee-session': { type: 'string' },
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
    inviteeWav: values['invitee-wav'],
    inviteeSession: values['invitee-session'],
    pauseAfter: values['pause-after'],
    timeoutMs: Number(values.timeout) * 1000,
    pauseTimeoutMs: Number(values['pause-timeout']) * 1000,
    viewport: { width, height },
    chromium: values.chromium,
  };
  const problems = [
    !opts.url && '--url is required',
    !opts.screenshots && '--screenshots is required',
    !MODES.includes(opts.mode) && `--mode must be one of ${MODES.join(', ')}`,
    ['call', 'drop', 'full-reconnect', 'invite'].includes(opts.mode) &&
      !opts.wav &&
      '--wav is required for a call',
    opts.mode === 'invite' && !opts.inviteeWav && '--invitee-wav is required in invite mode',
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
    // Every change of a participant's speaking mark in the participants list.
    speaking: [],
    audio: { elements: 0, peak: 0, playingSince: null, audibleMs: 0 },
  };
  const marks = new Map();
  const SAMPLE_MS = 50;
  window.__voicefleetE2E = record;
  const note = (list, value) => {
    if (value && list.at(-1)?.state !== value) list.push({ state: value, at: Date.now() });
  };
  const readStates = () => {
    const get = (id) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-state');
    note(record.connection, get('connection-state'));
    note(record.agent, get('agent-state'));
    for (const li of document.querySelectorAll('[data-testid="participant"]')) {
      const identity = li.getAttribute('data-identity');
      const speaking = li.getAttribute('data-speaking') === 'true';
      if (marks.get(identity) === speaking) continue;
      marks.set(identity, speaking);
      record.speaking.push({ identity, role: li.getAttribute('data-role'), speaking, at: Date.now() });
    }
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
      attributeFilter: ['data-state', 'data-speaking'],
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
    identity: li.getAttribute('data-speaker-identity'),
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

// Everyone the participants list shows, without the words only screen readers get.
function participantsShown() {
  const visible = (li) =>
    [...li.childNodes]
      .filter((node) => !(node instanceof Element && node.classList.contains('visually-hidden')))
      .map((node) => node.textContent)
      .join('')
      .trim();
  return [...document.querySelectorAll('[data-testid="participant"]')].map((li) => ({
    role: li.getAttribute('data-role'),
    identity: li.getAttribute('data-identity'),
    name: visible(li),
    speaking: li.getAttribute('data-speaking') === 'true',
  }));
}

// Whether a final agent line follows the newest line of `identity` in the transcript.
function answeredAfter(identity) {
  const items = [...document.querySelectorAll('[data-testid="transcript"] li')];
  const last = items.findLastIndex((li) => li.getAttribute('data-speaker-identity') === identity);
  return (
    last >= 0 &&
    items
      .slice(last + 1)
      .some((li) => li.getAttribute('data-speaker') === 'agent' && li.getAttribute('data-final') === 'true')
  );
}

class Call {
  // `label` prefixes the names of this page's steps and screenshots when two pages share one
  // list of steps (invite mode); `url` and `session` are the page's own.
  constructor(opts, page, report, { label = '', url = opts.url, session = opts.session, steps } = {}) {
    this.opts = opts;
    this.page = page;
    this.report = report;
    this.label = label;
    this.url = url;
    this.session = session;
    this.steps = steps ?? report.steps;
    this.started = Date.now();
  }

  elapsed() {
    return Number(((Date.now() - this.started) / 1000).toFixed(3));
  }

  async step(step) {
    const name = `${this.label}${step}`;
    const shot = String(this.steps.length + 1).padStart(2, '0');
    const file = path.join(this.opts.screenshots, `${shot}-${name}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    this.steps.push({ name, atSeconds: this.elapsed(), screenshot: file });
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
    await this.page.goto(this.url, { timeout: this.opts.timeoutMs });
    await this.testId('the Start button', 'start-button');
    if (this.session) {
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
    if (this.session) await this.signOut();
  }

  // Waits until the participants list shows `count` people and agents, and keeps it as `name`.
  async roster(name, count) {
    await this.until(
      `${this.label ? `the ${this.label.slice(0, -1)}'s page` : 'the page'} to list ${count} participants`,
      (n) => document.querySelectorAll('[data-testid="participant"]').length === n,
      count,
    );
    this.report.rosters = { ...this.report.rosters, [name]: await this.page.evaluate(participantsShown) };
  }

  // Mutes the microphone so that the next voice the agent hears is someone else's.
  async mute() {
    await this.click('mute-button');
    await this.testId('the microphone muted', 'mute-button', { 'data-muted': 'true' });
    await this.step('muted');
  }

  // Asks for an invite and reads the link as a caller would: from its box, and copied.
  async invite() {
    await this.click('invite-button');
    await this.testId('the invite link', 'invite-link');
    const link = await this.page.getByTestId('invite-link').inputValue({ timeout: this.opts.timeoutMs });
    await this.click('invite-copy');
    await this.until('the link to be copied', () =>
      document.querySelector('[data-testid="invite-expiry"] [role="status"]')?.textContent.includes('Copied'),
    );
    const copied = await this.page.evaluate(() => navigator.clipboard.readText());
    const expiresAt = await this.page.evaluate(
      () => document.querySelector('[data-testid="invite-expiry"] time')?.getAttribute('datetime') ?? null,
    );
    this.report.invite = { link, copied, expiresAt };
    await this.step('invite-link');
    return link;
  }

  // The page that opens an invite link says so before joining.
  async openInvited() {
    await this.open();
    this.report.invitedNotice = await this.page.evaluate(
      () => document.querySelector('[data-testid="invite-notice"]')?.textContent.trim() ?? null,
    );
    this.report.startButton = await this.page.getByTestId('start-button').textContent();
  }
}

// Invite mode: the first caller (page A) talks with the agent, mutes and invites; the second
// (page B, a browser of its own with its own microphone) opens the link from A's page and joins
// the same call. Both pages must list both callers and the one agent, A's page must mark B
// speaking, and the agent's answer to B must show on both pages after B's line.
class InvitedCall {
  constructor(inviter, invitee) {
    this.a = inviter;
    this.b = invitee;
  }

  async run() {
    const { a, b } = this;
    await a.open();
    a.started = Date.now();
    b.started = a.started;
    await a.join('start-button');
    await a.converse();
    await a.mute();
    b.url = await a.invite();
    await b.openInvited();
    await b.join('start-button');
    await b.roster('joined', 3);
    await a.roster('joined', 3);
    await a.step('invitee-listed');
    const invitee = b.report.rosters.joined.find((p) => p.role === 'you')?.identity;
    if (!invitee) throw new StepError("the invitee's page does not list its own caller");
    await this.heard(invitee);
    await b.end();
    await a.roster('left', 2);
    await a.step('invitee-left');
    await a.end();
  }

  // B speaks (its fake microphone loops its WAV): A's page marks B speaking, then shows B's
  // line and the agent speaking and answering; B's page shows the same answer.
  async heard(invitee) {
    const { a, b } = this;
    const since = Date.now();
    await a.until(
      "the invitee marked speaking on the inviter's page",
      (id) =>
        document.querySelector(`[data-testid="participant"][data-identity="${id}"][data-speaking="true"]`),
      invitee,
    );
    await a.step('invitee-speaking');
    await a.until(
      "a final line of the invitee on the inviter's page",
      (id) =>
        [
          ...document.querySelectorAll(
            `[data-testid="transcript-line"][data-speaker-identity="${id}"][data-final="true"]`,
          ),
        ].some((li) => li.querySelector('.line-text')?.textContent.trim()),
      invitee,
    );
    await a.step('invitee-transcribed');
    await a.until(
      "the agent marked speaking on the inviter's page",
      (t) => window.__voicefleetE2E.speaking.some((m) => m.role === 'agent' && m.speaking && m.at >= t),
      since,
    );
    await a.step('agent-speaking-to-invitee');
    await a.until("the agent's answer to the invitee on the inviter's page", answeredAfter, invitee);
    a.report.transcriptAtAnswer = await a.page.evaluate(lines, '[data-testid="transcript"] li');
    await a.step('invitee-answered');
    await b.until("the agent's answer on the invitee's page", answeredAfter, invitee);
    b.report.transcriptAtAnswer = await b.page.evaluate(lines, '[data-testid="transcript"] li');
    await b.roster('answered', 3);
    await b.step('answer-shown');
  }
}

async function observe(page, report, started) {
  const seen = await page.evaluate(() => window.__voicefleetE2E);
  const since = (at) => Number(((at - started) / 1000).toFixed(3));
  report.connectionStates = seen.connection.map((s) => ({ state: s.state, atSeconds: since(s.at) }));
  report.agentStates = seen.agent.map((s) => ({ state: s.state, atSeconds: since(s.at) }));
  report.speakingMarks = seen.speaking.map(({ at, ...mark }) => ({ ...mark, atSeconds: since(at) }));
  report.agentAudio = {
    audioElements: seen.audio.elements,
    peakLevel: Number(seen.audio.peak.toFixed(4)),
    audibleAtSeconds: seen.audio.playingSince === null ? null : since(seen.audio.playingSince),
    audibleSeconds: seen.audio.audibleMs / 1000,
  };
  report.transcript ??= await page.evaluate(lines, '[data-testid="transcript"] li');
}

// The names of the fields of a JSON request body, or null when it is not a JSON object.
function bodyFields(data) {
  try {
    const body = JSON.parse(data ?? '');
    return body !== null && typeof body === 'object' ? Object.keys(body) : null;
  } catch {
    return null;
  }
}

// A Chromium whose fake microphone plays `wav`; each caller of invite mode has one of their own.
async function launch(opts, wav) {
  const args = [...CHROMIUM_FLAGS];
  if (wav) args.push(`--use-file-for-fake-audio-capture=${wav}`);
  return chromium.launch({ executablePath: opts.chromium, args, timeout: opts.timeoutMs }).catch((error) => {
    process.stderr.write(`call.mjs: Chromium (${opts.chromium}) did not start: ${error.message}\n`);
    process.exit(1);
  });
}

// A page that records into `report` what it shows and every request its own code makes.
async function openPage(browser, opts, session, report) {
  const context = await browser.newContext({ viewport: opts.viewport });
  const clipboard = opts.mode === 'invite' ? ['clipboard-read', 'clipboard-write'] : [];
  await context.grantPermissions(['microphone', ...clipboard]);
  await context.addInitScript(installMonitor, AUDIBLE_LEVEL);
  if (session) {
    await context.addInitScript(storeSession, JSON.parse(await readFile(session, 'utf8')));
  }
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && report.console.push(m.text()));
  page.on('pageerror', (e) => report.console.push(`page error: ${e.message}`));
  page.on('response', (r) => r.status() >= 400 && report.httpErrors.push(`${r.status()} ${r.url()}`));
  // Every request the page's own code makes (token, sign-in), with the credentials it sent.
  page.on('request', (r) => {
    if (!['fetch', 'xhr'].includes(r.resourceType())) return;
    const entry = { method: r.method(), url: r.url(), authorization: null, fields: bodyFields(r.postData()) };
    report.requests.push(entry);
    r.allHeaders().then(
      (headers) => (entry.authorization = headers.authorization ?? null),
      () => undefined,
    );
  });
  return page;
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
  const browsers = [await launch(opts, opts.wav)];
  const pages = [];
  let call = null;
  try {
    report.browser = browsers[0].version();
    pages.push({
      page: await openPage(browsers[0], opts, opts.session, report),
      report,
      file: 'failure.png',
    });
    call = new Call(opts, pages[0].page, report);
    let run = () => call.run();
    if (opts.mode === 'invite') {
      // The second caller's page, in a browser of its own: Chromium has one fake microphone.
      browsers.push(await launch(opts, opts.inviteeWav));
      report.invitee = { console: [], httpErrors: [], requests: [] };
      const page = await openPage(browsers[1], opts, opts.inviteeSession, report.invitee);
      pages.push({ page, report: report.invitee, file: 'invitee-failure.png' });
      const invitee = new Call(opts, page, report.invitee, {
        label: 'invitee-',
        url: null,
        session: opts.inviteeSession,
        steps: report.steps,
      });
      const invited = new InvitedCall(call, invitee);
      run = () => invited.run();
    }
    try {
      await run();
      report.ok = true;
    } catch (error) {
      report.error = { ...report.error, failure: error instanceof StepError ? error.message : String(error) };
      for (const { page, report: shown, file } of pages) {
        const screenshot = path.join(opts.screenshots, file);
        await page.screenshot({ path: screenshot, fullPage: true }).catch(() => undefined);
        shown.failureScreenshot = screenshot;
      }
    }
    for (const { page, report: shown } of pages) {
      await observe(page, shown, call.started).catch((e) => shown.console.push(`observe: ${e.message}`));
    }
  } finally {
    for (const browser of browsers) await browser.close();
  }
  report.totalSeconds = call?.elapsed() ?? 0;
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!report.ok) {
    process.stderr.write(`call.mjs: FAILED: ${report.error.failure}\n`);
    process.exit(1);
  }
}

await main();
