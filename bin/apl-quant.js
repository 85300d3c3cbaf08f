#!/usr/bin/env node

// `convert` loads its own, smaller bundle where the build made one (process start, issue 13); the rest dist/cli.js.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const own = join(__dirname, '../dist/cli-convert.js');
require(process.argv[2] === 'convert' && existsSync(own) ? own : '../dist/cli.js');
