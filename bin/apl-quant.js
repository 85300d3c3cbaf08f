#!/usr/bin/env node

// `convert` loads its own, smaller bundle where the build made one (process start, issue 13), from V8's code cache
// where the build wrote one (bin/v8-cache.js); the rest dist/cli.js.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const own = join(__dirname, '../dist/cli-convert.js');
if (process.argv[2] === 'convert' && existsSync(own)) require('./v8-cache').load(own, module);
else require('../dist/cli.js');
