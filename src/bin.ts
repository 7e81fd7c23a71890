import { cancelOnSignals } from './cancel.js';
import { cli } from './cli.js';

const io = { out: (s: string) => process.stdout.write(s), err: (s: string) => process.stderr.write(s), cwd: process.cwd(), signal: cancelOnSignals() };
process.exitCode = await cli(process.argv.slice(2), process.env, io);
