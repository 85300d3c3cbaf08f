#!/bin/sh
# Draws media/icon.png (128×128, the Marketplace icon) from a hand-written SVG, rendered by Chromium through
# playwright-core (already a dev dependency). Run once; the PNG is committed.
set -e
cd "$(dirname "$0")/.."
cat > /tmp/apl-icon.svg <<'SVG'
<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">
  <rect x="4" y="4" width="120" height="120" rx="22" fill="#1e3a5f"/>
  <g fill="#4fc3f7">
    <rect x="22" y="78" width="14" height="28" rx="2"/>
    <rect x="42" y="62" width="14" height="44" rx="2"/>
    <rect x="62" y="46" width="14" height="60" rx="2"/>
    <rect x="82" y="30" width="14" height="76" rx="2"/>
  </g>
  <path d="M18 40 L46 40 L46 26 L74 26" stroke="#ffb74d" stroke-width="6" fill="none" stroke-linejoin="round"/>
  <text x="104" y="112" font-family="DejaVu Sans, sans-serif" font-size="22" font-weight="bold" fill="#ffffff" text-anchor="middle">q</text>
</svg>
SVG
node -e "
const { chromium } = require('playwright-core');
(async () => {
  const b = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium' });
  const p = await b.newPage({ viewport: { width: 128, height: 128 } });
  await p.setContent('<body style=\"margin:0;background:transparent\">' + require('fs').readFileSync('/tmp/apl-icon.svg', 'utf8') + '</body>');
  await p.screenshot({ path: 'media/icon.png', omitBackground: true, clip: { x: 0, y: 0, width: 128, height: 128 } });
  await b.close();
})();
"
