// The executable: runs main() with the real process, sets the exit code (no process.exit: let
// stdout drain, as zx does).

import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
