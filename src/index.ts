import { cancelOnSignals } from './cancel.js';
import { run } from './main.js';

await run(undefined, cancelOnSignals());
