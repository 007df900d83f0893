/**
 * The command line's bundle (dist/bin/ckpt-cli.js), which the executable
 * (cli/loader.ts) compiles and runs: in this order, notes when start-up ended
 * (for -v), gives back NODE_EXTRA_CA_CERTS, and runs the command line.
 */
import './startup.js';
import './extra-ca-certs.js';
import './main.js';
