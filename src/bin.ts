#!/usr/bin/env node
// The executable: runs main() with the real process, sets the exit code (no process.exit: let
// stdout drain, as zx does). Output goes through quietWhenClosed: a closed pipe ends it quietly.

import { main } from './main.js';
import { quietWhenClosed } from './stdio.js';

const io = { stdout: quietWhenClosed(process.stdout), stderr: quietWhenClosed(process.stderr), env: process.env };
process.exitCode = await main(process.argv.slice(2), io);
